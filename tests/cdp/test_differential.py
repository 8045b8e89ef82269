"""Differential test: the same calls through analytics-python (``customerio-cdp-analytics``,
the official library) and through :class:`PipelinesClient`, compared field by field as the
fake received them.

Ignored: ``messageId`` and ``timestamp`` (generated; the timestamps are compared as instants
where both were given) and ``context.library`` (each library names itself). analytics-python
also sends ``null`` for every argument left out (``"anonymousId": null``, a page's
``"category": null``…); the vendor document types those fields as strings, so the fake drops
such messages (strict mode would refuse them), and we leave them out instead: nulls are
removed from analytics-python's messages before comparing.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from customerio_async import PipelinesClient
from customerio_async.testing import FakeCustomerIO

from .conftest import fast

analytics = pytest.importorskip("customerio.analytics.client", reason="customerio-cdp-analytics")

WHEN = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc)

# (method, args, kwargs): each call made through both libraries.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("identify", ("42", {"email": "ada@example.com", "plan": "pro"}), {}),
    ("identify", (), {"anonymous_id": "anon-1", "traits": {"plan": "free"}}),
    ("track", ("42", "Order Completed", {"total": 42.5, "items": [{"sku": "a", "n": 2}]}), {}),
    (
        "track",
        ("42", "Signed Up", {"plan": "pro"}),
        {
            "context": {"ip": "8.8.8.8", "locale": "en-US"},
            "timestamp": WHEN,
            "anonymous_id": "anon-1",
            "integrations": {"All": True, "Salesforce": False},
        },
    ),
    ("track", (7, "Integer ids"), {"anonymous_id": 8}),
    ("track", ("42", "With an id"), {"message_id": "fixed-message-id"}),
    ("page", ("42", "Docs", "Quickstart", {"url": "https://example.com/qs"}), {}),
    ("page", (), {"anonymous_id": "anon-2", "name": "Home"}),
    ("screen", (), {"anonymous_id": "anon-2", "name": "Feed", "properties": {"tab": "new"}}),
    ("group", ("42", "acme", {"name": "Acme", "object_type_id": "1"}), {"timestamp": WHEN}),
    ("alias", ("anon-1", "42"), {}),
]


def normalise(message: dict[str, Any]) -> dict[str, Any]:
    """The message without what the comparison ignores (see the module docstring)."""
    out = {k: v for k, v in message.items() if v is not None}
    for key in ("messageId", "timestamp"):
        out.pop(key, None)
    context = dict(out.get("context", {}))
    context.pop("library", None)
    out["context"] = context
    return out


def received(fake: FakeCustomerIO, user_agent: str) -> list[dict[str, Any]]:
    """Every message the fake received from the library whose User-Agent starts so."""
    messages: list[dict[str, Any]] = []
    for req in fake.requests:
        if req.headers.get("user-agent", "").startswith(user_agent):
            body = req.json()
            messages.extend(body.get("batch", [body]))
    return messages


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def send_with_analytics_python(url: str, key: str) -> list[tuple[Any, ...]]:
    """The calls through the official library, in sync mode (one request per call)."""
    client = analytics.Client(key, host=url, sync_mode=True, max_retries=0)
    results = []
    for method, args, kwargs in copy.deepcopy(CALLS):  # it adds its library to `context`
        call: Callable[..., Any] = getattr(client, method)
        results.append(call(*args, **kwargs))
    return results


# analytics-python calls datetime.utcnow(), deprecated since Python 3.12.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_the_same_calls_make_the_same_messages(fake: FakeCustomerIO) -> None:
    theirs_results = await asyncio.to_thread(
        send_with_analytics_python, fake.url, fake.pipelines_write_key
    )
    assert all(ok for ok, _ in theirs_results)
    async with PipelinesClient(fake.pipelines_write_key, fake.url, **fast()) as client:
        for method, args, kwargs in copy.deepcopy(CALLS):
            await getattr(client, method)(*args, **kwargs)
    theirs = received(fake, "analytics-python/")
    ours = received(fake, "customerio-async/")
    assert len(theirs) == len(ours) == len(CALLS)
    # Ours travel in fewer requests (batched, in call order), the alias in one of its own.
    for index, (mine, official) in enumerate(zip(_call_order(ours), theirs, strict=True)):
        assert normalise(mine) == normalise(official), CALLS[index]
        assert mine["context"]["library"]["name"] == "customerio-async"
        assert official["context"]["library"]["name"] == "analytics-python"
        given = CALLS[index][2].get("timestamp")
        if given is not None:
            assert instant(mine["timestamp"]) == instant(official["timestamp"]) == given
    for side in (ours, theirs):  # a given message id is sent as it is
        assert sum(m["messageId"] == "fixed-message-id" for m in side) == 1
    # Everything we sent was accepted; only analytics-python's nulls (and its alias inside a
    # /v1/batch, which the vendor document does not list) were dropped.
    ours_requests = {
        i for i, r in enumerate(fake.requests) if r.headers["user-agent"].startswith("customerio")
    }
    assert fake.pipelines_drops
    assert not any(drop.request_index in ours_requests for drop in fake.pipelines_drops)
    libraries = [m.context["library"]["name"] for m in fake.pipelines_messages]
    assert libraries.count("customerio-async") == len(CALLS)


def _call_order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our messages in call order: the alias (its own request) moved back to its place."""
    types = [method for method, _, _ in CALLS]
    aliases = [m for m in messages if m["type"] == "alias"]
    rest = [m for m in messages if m["type"] != "alias"]
    ordered = []
    for kind in types:
        ordered.append(aliases.pop(0) if kind == "alias" else rest.pop(0))
    return ordered
