"""``customerio_async.sync.PipelinesClient``: the Data Pipelines client for threads.

Same constructor and call names as :class:`customerio_async.PipelinesClient` (which are
analytics-python's), as plain functions. A call validates and serialises its message in your
thread (bad input raises there), hands it to the background loop and returns a
:class:`SyncReceipt` at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._cdp import messages as m
from .._cdp.api import _flag
from .._cdp.client import PipelinesClient as AsyncPipelinesClient
from .._cdp.messages import PipelinesCall
from .._config import (
    DEFAULT_BATCH,
    DEFAULT_PIPELINES_RATE_LIMIT,
    DEFAULT_POOL,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUTS,
    PIPELINES_GZIP,
    BatchConfig,
    PoolLimits,
    RateLimit,
    Region,
    RetryPolicy,
    Timeouts,
)
from .._http.gate import Limiter
from .._http.messages import HTTPMiddleware
from .._metrics import Metrics
from .._pipeline.receipt import OutcomeCallback
from ._facade import SyncClient
from ._receipt import SyncReceipt

__all__ = ["PipelinesClient"]

Traits = Mapping[str, Any]


class PipelinesClient(SyncClient[AsyncPipelinesClient]):
    """Customer.io's Data Pipelines API for synchronous code (analytics-python's calls).

    Every call returns in microseconds: the message is validated in your thread and handed
    to a background event loop (a daemon thread) that batches it like the async client does.
    Create one client per process and share it between threads. Open clients are drained at
    interpreter exit; a forked child builds its own loop on first use.

    Example::

        analytics = PipelinesClient(write_key)
        analytics.identify("42", {"email": "ada@example.com"})
        analytics.track("42", "Order Completed", {"total": 42.5}).wait(timeout=5)

    The arguments are those of :class:`customerio_async.PipelinesClient`; ``wait=True`` on a
    call blocks until the outcome and raises unless delivered.

    Raises:
        ConfigurationError: A missing write key, an unknown region or a bad ``host``.
    """

    def __init__(
        self,
        write_key: str | None = None,
        host: str | None = None,
        *,
        region: Region | str = Region.US,
        gzip: bool = PIPELINES_GZIP,
        batch: BatchConfig = DEFAULT_BATCH,
        retry: RetryPolicy = DEFAULT_RETRY,
        rate_limit: RateLimit | None = DEFAULT_PIPELINES_RATE_LIMIT,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        pool: PoolLimits = DEFAULT_POOL,
        user_agent: str | None = None,
        on_outcome: OutcomeCallback | None = None,
        on_drop: OutcomeCallback | None = None,
        metrics: Metrics | None = None,
        http_middleware: Sequence[HTTPMiddleware] = (),
        limiter: Limiter | None = None,
    ) -> None:
        shared = metrics if metrics is not None else Metrics()

        def build() -> AsyncPipelinesClient:
            return AsyncPipelinesClient(
                write_key,
                host,
                region=region,
                gzip=gzip,
                batch=batch,
                retry=retry,
                rate_limit=rate_limit,
                timeouts=timeouts,
                pool=pool,
                user_agent=user_agent,
                on_outcome=on_outcome,
                on_drop=on_drop,
                metrics=shared,
                http_middleware=http_middleware,
                limiter=limiter,
            )

        super().__init__(build, batch=batch, retry=retry, name="customerio-async-sync-pipelines")
        self.metrics: Metrics = shared

    def __repr__(self) -> str:
        # Never the write key: reprs end up in logs and tracebacks.
        client = self._client
        return (
            f"<customerio_async.sync.PipelinesClient region={client.region.value!r} "
            f"origin={client.origin!r} state={self._state.value!r}>"
        )

    def _retire(self, client: AsyncPipelinesClient) -> None:
        self.metrics.detach(client)

    def send(
        self, message: PipelinesCall | Mapping[str, Any], *, wait: bool = False
    ) -> SyncReceipt:
        """Send a prebuilt :class:`PipelinesCall` or a Segment-spec message dict.

        Example::

            analytics.send({"type": "track", "userId": "42", "event": "Signed Up"})
        """
        call = message if isinstance(message, PipelinesCall) else m.from_dict(message)
        return self._put(call, _flag(wait))

    def identify(
        self,
        user_id: str | int | None = None,
        traits: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> SyncReceipt:
        """Identify a person and set their traits (see the async ``identify``).

        Example::

            analytics.identify("42", {"email": "ada@example.com", "plan": "pro"})
        """
        args = (context, timestamp, anonymous_id, integrations, message_id)
        return self._put(m.identify(user_id, traits, *args), _flag(wait))

    def track(
        self,
        user_id: str | int | None = None,
        event: str | None = None,
        properties: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        group_id: str | int | None = None,
        wait: bool = False,
    ) -> SyncReceipt:
        """Record an event (see the async ``track``).

        Example::

            analytics.track("42", "Order Completed", {"total": 42.5})
        """
        args = (context, timestamp, anonymous_id, integrations, message_id)
        call = m.track(user_id, event, properties, *args, group_id=group_id)
        return self._put(call, _flag(wait))

    def page(
        self,
        user_id: str | int | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> SyncReceipt:
        """Record a page view (see the async ``page``).

        Example::

            analytics.page("42", "Docs", "Quickstart", {"url": "https://example.com/qs"})
        """
        args = (context, timestamp, anonymous_id, integrations, message_id)
        return self._put(m.page(user_id, category, name, properties, *args), _flag(wait))

    def screen(
        self,
        user_id: str | int | None = None,
        category: str | None = None,
        name: str | None = None,
        properties: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> SyncReceipt:
        """Record a mobile screen view (see the async ``screen``).

        Example::

            analytics.screen("42", name="Feed", properties={"tab": "new"})
        """
        args = (context, timestamp, anonymous_id, integrations, message_id)
        return self._put(m.screen(user_id, category, name, properties, *args), _flag(wait))

    def group(
        self,
        user_id: str | int | None = None,
        group_id: str | int | None = None,
        traits: Traits | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        anonymous_id: str | int | None = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> SyncReceipt:
        """Associate a person with a group (see the async ``group``).

        Example::

            analytics.group("42", "acme", {"name": "Acme", "object_type_id": "1"})
        """
        args = (context, timestamp, anonymous_id, integrations, message_id)
        return self._put(m.group(user_id, group_id, traits, *args), _flag(wait))

    def alias(
        self,
        previous_id: str | int | None = None,
        user_id: str | int | None = None,
        context: Traits | None = None,
        timestamp: Any = None,
        integrations: Mapping[str, bool] | None = None,
        message_id: Any = None,
        *,
        wait: bool = False,
    ) -> SyncReceipt:
        """Merge ``previous_id`` into ``user_id`` (see the async ``alias``).

        Example::

            analytics.alias("anon-7f3a", "42")
        """
        call = m.alias(previous_id, user_id, context, timestamp, integrations, message_id)
        return self._put(call, _flag(wait))

    def check_credentials(self) -> None:
        """Check the write key now (one empty strict-mode batch; blocks).

        Example::

            analytics.check_credentials()   # AuthenticationError if wrong
        """
        self._run(self._client.check_credentials, timeout=self._wait_timeout)
