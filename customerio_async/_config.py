"""Configuration value objects and every default, named in one place.

All config objects are frozen, slotted, keyword-only dataclasses: build one, share it, and
derive variants with :func:`dataclasses.replace`. Durations are float seconds.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from ._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_APP_RATE_LIMITS",
    "DEFAULT_BATCH",
    "DEFAULT_PIPELINES_RATE_LIMIT",
    "DEFAULT_POOL",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUTS",
    "ENV_API_KEY",
    "ENV_APP_API_KEY",
    "ENV_PIPELINES_WRITE_KEY",
    "ENV_SITE_ID",
    "AppRateLimits",
    "BatchConfig",
    "DedupConfig",
    "OverflowPolicy",
    "PoolLimits",
    "RateLimit",
    "Region",
    "RegionName",
    "RetryPolicy",
    "Timeouts",
    "resolve_app_origin",
    "resolve_pipelines_origin",
    "resolve_region",
    "resolve_track_origin",
]

# ----------------------------------------------------------------------------- environment
ENV_SITE_ID = "CUSTOMERIO_SITE_ID"
ENV_API_KEY = "CUSTOMERIO_API_KEY"
ENV_APP_API_KEY = "CUSTOMERIO_APP_API_KEY"
ENV_PIPELINES_WRITE_KEY = "CUSTOMERIO_PIPELINES_WRITE_KEY"

# ----------------------------------------------------------------------------- API limits
# From the contract (§1.4, §2.1, §3.3, §7). The SDK enforces them before any I/O.
MAX_IDENTIFIER_BYTES = 150
MAX_ATTRIBUTES = 300
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
# "< 32 KB" per /api/v2/entity request and per batch operation. We read "KB" as 1000 bytes:
# the stricter reading can never be refused by a server that means 1024.
MAX_ENTITY_BYTES = 32_000
MAX_OP_BYTES = 32_000
# "< 500 KB" per /api/v2/batch request, envelope included; same stricter reading.
MAX_BATCH_BYTES = 500_000
MAX_SEGMENT_IDS = 1000
# Unix seconds at or above this are almost certainly milliseconds (the Ruby SDK's rule).
MAX_TIMESTAMP_SECONDS = 100_000_000_000

# App API (contract §4, §7). "MB" is read as 1,000,000 bytes, the stricter reading, except
# where noted.
MAX_SEND_RECIPIENTS = 15  # to + cc + bcc of one transactional email
# "< 2 MB" total attachments, measured on the decoded file bytes (the natural reading of
# "attachment size"; a server measuring base64 text would answer 413, which we surface).
MAX_ATTACHMENT_BYTES = 2_000_000
MAX_TRANSACTIONAL_BYTES = 1_000_000  # one send body, attachments excluded
MAX_SEND_AT_AHEAD = 90 * 86_400  # send_at may be at most 90 days in the future
MAX_BROADCAST_RECIPIENTS = 10_000  # ids, emails or per_user_data entries per trigger
MAX_BROADCAST_DATA_BYTES = 50_000  # the trigger's ``data`` object, serialised
MAX_BROADCAST_BODY_BYTES = 25_000_000  # the whole trigger body

# Data Pipelines (contract §5, §7 "Pipelines" rows, §10 U12): "a request is limited to 32KB; a
# batch request is limited to 500KB total and 32KB per call", and over-limit requests are
# answered 200 and silently dropped. Read as 1000-byte KB, like the Track limits: the stricter
# reading can never be dropped by a server that means 1024. Measured on the JSON, before gzip.
MAX_PIPELINES_MESSAGE_BYTES = 32_000
MAX_PIPELINES_BATCH_BYTES = 500_000
# gzip of /v1/batch bodies (README "Data Pipelines API", benchmarks/results/cdp.md): level 1
# costs ~1.5 µs of CPU per ~330-byte message and sends ~7.5x fewer bytes; higher levels
# double the CPU for ~20 % fewer bytes. Smaller bodies are sent as they are (header overhead).
PIPELINES_GZIP = True
PIPELINES_GZIP_LEVEL = 1
PIPELINES_GZIP_MIN_BYTES = 1024

# Reporting webhooks (contract §6, §10 U10). Customer.io gives up on a delivery after 4 s
# and backlogs later events behind it, so receivers answer well before that.
WEBHOOK_TOLERANCE = 300.0  # accepted |now - X-CIO-Timestamp|, seconds
WEBHOOK_DEDUP_SIZE = 10_000  # event ids remembered (LRU)
WEBHOOK_DEDUP_TTL = 86_400.0  # seconds an event id is remembered
WEBHOOK_MAX_CONCURRENCY = 64  # user callbacks running at once per receiver
WEBHOOK_BUSY_TIMEOUT = 2.0  # longest wait for a callback slot before answering 503
WEBHOOK_MAX_BODY_BYTES = 8 * 1024 * 1024  # larger bodies are refused with 413


class Region(str, enum.Enum):
    """A Customer.io data-centre region; its hosts are data, not code paths.

    Members compare equal to their string values, so ``Region.EU == "eu"``.

    Example::

        cio = CustomerIO(site_id, api_key, region=Region.EU)     # or region="eu"
        assert Region.EU == "eu"
        Region.EU.track_origin                  # 'https://track-eu.customer.io'
    """

    US = "us"
    EU = "eu"

    @property
    def track_origin(self) -> str:
        """Origin of the Track API (``/api/v1`` and ``/api/v2`` are appended)."""
        return "https://track.customer.io" if self is Region.US else "https://track-eu.customer.io"

    @property
    def app_origin(self) -> str:
        """Origin of the App API (``/v1`` is appended)."""
        return "https://api.customer.io" if self is Region.US else "https://api-eu.customer.io"

    @property
    def pipelines_origin(self) -> str:
        """Origin of the Data Pipelines API (``/v1`` is appended)."""
        return "https://cdp.customer.io" if self is Region.US else "https://cdp-eu.customer.io"


RegionName = Literal["us", "eu"]


def resolve_region(region: Region | str) -> Region:
    """Turn ``"us"``/``"eu"`` (any case) or a :class:`Region` into a :class:`Region`.

    Raises:
        ConfigurationError: For anything else.
    """
    if isinstance(region, Region):
        return region
    if isinstance(region, str):
        try:
            return Region(region.strip().lower())
        except ValueError:
            pass
    raise ConfigurationError(f"region must be 'us' or 'eu', got {region!r}")


def resolve_track_origin(region: Region, track_url: str | None) -> str:
    """Return the Track API origin: ``track_url`` when given, else the region's host.

    ``track_url`` is an origin such as ``http://127.0.0.1:8080`` (a trailing ``/api/v1`` or
    ``/api/v2`` is tolerated and removed, so both spellings of the official SDKs work).

    Raises:
        ConfigurationError: When ``track_url`` is not an absolute http(s) URL.
    """
    if track_url is None:
        return region.track_origin
    return normalise_origin(track_url, "track_url", strip_suffixes=("/api/v1", "/api/v2"))


def resolve_app_origin(region: Region, api_url: str | None) -> str:
    """Return the App API origin: ``api_url`` when given, else the region's host.

    ``api_url`` is an origin such as ``http://127.0.0.1:8080``; a trailing ``/v1`` is
    tolerated and removed, like the official SDK's ``url`` (which has none).

    Raises:
        ConfigurationError: When ``api_url`` is not an absolute http(s) URL.
    """
    if api_url is None:
        return region.app_origin
    return normalise_origin(api_url, "api_url", strip_suffixes=("/v1",))


def resolve_pipelines_origin(region: Region, host: str | None) -> str:
    """Return the Data Pipelines origin: ``host`` when given, else the region's host.

    ``host`` is an origin such as ``http://127.0.0.1:8080`` (analytics-python's ``host``); a
    trailing ``/v1`` is tolerated and removed.

    Raises:
        ConfigurationError: When ``host`` is not an absolute http(s) URL.
    """
    if host is None:
        return region.pipelines_origin
    return normalise_origin(host, "host", strip_suffixes=("/v1",))


def normalise_origin(url: str, name: str, *, strip_suffixes: tuple[str, ...] = ()) -> str:
    """Validate an absolute http(s) base URL and return it without a trailing slash.

    Raises:
        ConfigurationError: When the URL is not absolute http(s) or carries credentials,
            a query or a fragment.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an absolute http(s) URL, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError(f"{name} must not contain credentials, a query or a fragment")
    base = url.rstrip("/")
    for suffix in strip_suffixes:
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base


def env_or(value: str | None, env_name: str, what: str) -> str:
    """Return ``value``, or the environment variable ``env_name``, or raise.

    Raises:
        ConfigurationError: When neither is a non-empty string.
    """
    if value is None:
        value = os.environ.get(env_name)
    if not value:
        raise ConfigurationError(f"{what} is required: pass it or set ${env_name}")
    if not isinstance(value, str):
        raise ConfigurationError(f"{what} must be a string")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Per-request time limits, in seconds (never aiohttp's 300 s default).

    Example::

        cio = CustomerIO(site_id, api_key, timeouts=Timeouts(total=10, connect=3))

    Attributes:
        total: The whole request, connection included.
        connect: Acquiring a pooled connection or establishing a new one.
        sock_read: Maximum gap between two reads of the response.
    """

    total: float = 15.0
    connect: float = 5.0
    sock_read: float = 10.0

    def __post_init__(self) -> None:
        for name in ("total", "connect", "sock_read"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"Timeouts.{name} must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolLimits:
    """Connection-pool settings for the client's ``aiohttp.TCPConnector``.

    Example::

        pool = PoolLimits(max_connections=32, keepalive_timeout=15)
        cio = CustomerIO(site_id, api_key, pool=pool)

    Attributes:
        max_connections: Open connections across all hosts.
        max_connections_per_host: Open connections to one host.
        keepalive_timeout: Seconds an idle connection is kept for reuse. Below typical
            load-balancer idle timeouts (60 s) so we close first rather than reuse a socket
            the far end is dropping.
        dns_cache_ttl: Seconds a DNS answer is reused.
    """

    max_connections: int = 32
    max_connections_per_host: int = 32
    keepalive_timeout: float = 30.0
    dns_cache_ttl: int = 300

    def __post_init__(self) -> None:
        if self.max_connections < 1 or self.max_connections_per_host < 1:
            raise ConfigurationError("PoolLimits connection limits must be >= 1")
        if self.keepalive_timeout <= 0 or self.dns_cache_ttl < 0:
            raise ConfigurationError("PoolLimits timeouts must be positive")


DEFAULT_TIMEOUTS = Timeouts()
DEFAULT_POOL = PoolLimits()


OverflowPolicy = Literal["block", "drop_newest", "drop_oldest", "raise"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchConfig:
    """How the send pipeline buffers, packs and sends operations.

    Example::

        cio = CustomerIO(
            site_id,
            api_key,
            batch=BatchConfig(linger=0.1, max_buffer_ops=100_000, overflow="drop_oldest"),
        )

    Attributes:
        max_batch_ops: Operations per ``/api/v2/batch`` request (no documented limit; bytes
            are what matter, this bounds the damage of one bad response).
        max_batch_bytes: Body size cap, envelope included; must stay below 500,000.
        linger: Seconds a batch may wait for more operations after its first one.
        max_concurrent_requests: Requests in flight at once; fire-and-forget batches hold
            half of them at most, so a batch someone waits for always finds a slot
            (per-person order does not depend on it: an operation waits only for its own
            person's undecided batch).
        max_buffer_bytes: Memory budget for admitted-but-unfinished operations (buffered,
            in flight and retrying all count).
        max_buffer_ops: Operation-count budget, counted the same way.
        overflow: What admission does when the budget is exhausted: ``"block"`` (wait up to
            ``enqueue_timeout``, FIFO, then apply ``overflow_fallback``), ``"drop_newest"``,
            ``"drop_oldest"`` or ``"raise"`` (:class:`BufferFullError`).
        enqueue_timeout: Longest ``"block"`` wait, in seconds.
        overflow_fallback: What ``"block"`` does after ``enqueue_timeout``.
        ordering: ``"per_identifier"`` keeps each person's/object's operations in admission
            order (an operation waits only for earlier undecided operations that touch the
            same person or object); ``"none"`` ignores order (every batch goes as soon as it
            can).
        drain_timeout: Default deadline of ``aclose()``.
        flush_timeout: Default deadline of ``flush()``.
    """

    max_batch_ops: int = 5000
    max_batch_bytes: int = 450_000
    linger: float = 0.5
    max_concurrent_requests: int = 16
    max_buffer_bytes: int = 32 * 1024 * 1024
    max_buffer_ops: int = 40_000
    overflow: OverflowPolicy = "block"
    enqueue_timeout: float = 1.0
    overflow_fallback: Literal["drop_newest", "raise"] = "drop_newest"
    ordering: Literal["per_identifier", "none"] = "per_identifier"
    drain_timeout: float = 10.0
    flush_timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.max_batch_ops >= 1:
            raise ConfigurationError("BatchConfig.max_batch_ops must be >= 1")
        if not MAX_OP_BYTES + 13 <= self.max_batch_bytes <= MAX_BATCH_BYTES:
            raise ConfigurationError(
                f"BatchConfig.max_batch_bytes must be between {MAX_OP_BYTES + 13} "
                f"and {MAX_BATCH_BYTES}"
            )
        if self.max_concurrent_requests < 1:
            raise ConfigurationError("BatchConfig.max_concurrent_requests must be >= 1")
        if self.max_buffer_ops < 1 or self.max_buffer_bytes < MAX_OP_BYTES:
            raise ConfigurationError(
                f"BatchConfig buffer must hold at least one operation ({MAX_OP_BYTES} bytes)"
            )
        if self.overflow not in ("block", "drop_newest", "drop_oldest", "raise"):
            raise ConfigurationError(f"unknown overflow policy {self.overflow!r}")
        if self.overflow_fallback not in ("drop_newest", "raise"):
            raise ConfigurationError(f"unknown overflow_fallback {self.overflow_fallback!r}")
        if self.ordering not in ("per_identifier", "none"):
            raise ConfigurationError(f"unknown ordering {self.ordering!r}")
        for name in ("linger", "enqueue_timeout", "drain_timeout", "flush_timeout"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"BatchConfig.{name} must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When and how failed requests are retried.

    408, 429, 5xx and transport errors are retried with full-jitter exponential backoff
    (``uniform(0, min(backoff_cap, backoff_base * 2**attempt))``). A ``Retry-After`` is a
    floor, capped at ``max_retry_after``; a 429 pauses every sender of the workspace.

    Example::

        cio = CustomerIO(site_id, api_key, retry=RetryPolicy(delivery_timeout=60, backoff_cap=10))

    Attributes:
        backoff_base: First backoff ceiling, seconds.
        backoff_cap: Largest backoff ceiling, seconds.
        max_retry_after: Largest server-requested wait honoured, seconds.
        delivery_timeout: Per-operation deadline from admission; after it the operation is
            dropped with reason ``delivery_timeout``.
        max_attempts: Safety net on attempts per request.
        budget: Retry-budget tokens (each failed attempt costs one, each success earns
            ``budget_refill`` back); below half, senders probe only every ``backoff_cap``
            seconds instead of retrying at will, so a fleet cannot storm a struggling API.
        budget_refill: Tokens earned per successful request.
        auth_pause: Seconds sending pauses after a 401/403 before probing again.
        direct_attempts: Attempts per call in direct (unbatched) mode.
    """

    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0
    delivery_timeout: float = 300.0
    max_attempts: int = 12
    budget: float = 100.0
    budget_refill: float = 0.1
    auth_pause: float = 30.0
    direct_attempts: int = 3

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.direct_attempts < 1:
            raise ConfigurationError("RetryPolicy attempts must be >= 1")
        for name in ("backoff_base", "backoff_cap", "max_retry_after", "delivery_timeout"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"RetryPolicy.{name} must be >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """Client-side token bucket per workspace, to stay under the fair-use limit.

    Example::

        cio = CustomerIO(site_id, api_key, rate_limit=RateLimit(requests_per_second=200, burst=50))

    Attributes:
        requests_per_second: Sustained request rate (Customer.io's documented soft limits
            have ranged from 100 to 1000 req/s; 100 is the conservative default).
        burst: Requests that may go out back to back.
    """

    requests_per_second: float = 100.0
    burst: int = 20

    def __post_init__(self) -> None:
        if self.requests_per_second <= 0 or self.burst < 1:
            raise ConfigurationError("RateLimit needs requests_per_second > 0 and burst >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class AppRateLimits:
    """Client-side rate limits of :class:`~customerio_async.APIClient`, one bucket per class.

    The documented App API limits (contract §7, §10 U11): transactional sends 100 req/s,
    everything else 10 req/s, API-triggered broadcasts 1 request per 10 s. A call waits for
    its token (FIFO) rather than being refused; ``None`` disables a bucket.

    Example::

        limits = AppRateLimits(transactional=RateLimit(requests_per_second=50, burst=5))
        api = APIClient(app_key, rate_limits=limits)

    Attributes:
        transactional: ``/v1/send/*``.
        general: Other App API calls (reading trigger errors; triggers also take one).
        broadcast: ``POST /v1/campaigns/{id}/triggers``.
    """

    transactional: RateLimit | None = RateLimit(requests_per_second=100.0, burst=10)
    general: RateLimit | None = RateLimit(requests_per_second=10.0, burst=5)
    broadcast: RateLimit | None = RateLimit(requests_per_second=0.1, burst=1)


DEFAULT_APP_RATE_LIMITS = AppRateLimits()
DEFAULT_BATCH = BatchConfig()
DEFAULT_RETRY = RetryPolicy()
DEFAULT_RATE_LIMIT = RateLimit()
# Data Pipelines: "3000 requests per 3 seconds" (PS, soft), the documented figure itself.
DEFAULT_PIPELINES_RATE_LIMIT = RateLimit(requests_per_second=1000.0, burst=100)


@dataclass(frozen=True, slots=True, kw_only=True)
class DedupConfig:
    """De-duplication settings (defaults from the seed recipe).

    Example::

        cio = CustomerIO(site_id, api_key, dedup=DedupConfig(identify_ttl=300))   # None: off

    Attributes:
        identify_size: People whose last identify is remembered.
        identify_ttl: Seconds an identify fingerprint stays valid.
        event_size: Caller-supplied event ids remembered.
        event_ttl: Seconds an event id stays remembered.
    """

    identify_size: int = 10_000
    identify_ttl: float = 60.0
    event_size: int = 50_000
    event_ttl: float = 5.0

    def __post_init__(self) -> None:
        if self.identify_size < 1 or self.event_size < 1:
            raise ConfigurationError("DedupConfig sizes must be >= 1")
        if self.identify_ttl <= 0 or self.event_ttl <= 0:
            raise ConfigurationError("DedupConfig TTLs must be > 0")


DEFAULT_DEDUP = DedupConfig()
