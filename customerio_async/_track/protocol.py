"""What is Track-specific about sending: retry rules, the batch envelope, reading answers."""

from __future__ import annotations

from types import MappingProxyType

from .._config import MAX_BATCH_BYTES, RateLimit
from .._http.errors import parse_error_body
from .._http.messages import HTTPRequest, HTTPResponse
from .._http.rules import APIRules
from .._pipeline.protocol import BatchFormat, Settlement
from .._pipeline.receipt import DELIVERED, Outcome

__all__ = ["BATCH_PATH", "batch_accepted", "settle_batch", "track_format", "track_rules"]

BATCH_PATH = "/api/v2/batch"


def track_rules(rate_limit: RateLimit | None) -> APIRules:
    """Track's rules: the default retry rule (408, 425, 429, network errors, 5xx except 501
    and 505), every request repeatable (events carry ULID ids, the rest is idempotent), one
    rate-limit class per workspace."""
    return APIRules(
        api="track",
        buckets=MappingProxyType({"default": rate_limit}),
        credentials="the site id and API key",
    )


def batch_accepted(request: HTTPRequest, response: HTTPResponse) -> bool:
    """Whether a 2xx batch answer can be settled. One whose errors cannot be mapped to its
    operations (no index, an index out of range, a 207 without errors) is retried like a
    server error: settling it would report rejected operations as delivered (Customer.io's
    own integrations treat it as a 502)."""
    if request.endpoint != BATCH_PATH:
        return True
    if response.status != 207 and response.body in (b"{}", b""):
        return True
    errors = parse_error_body(response.body)
    if response.status == 207 and not errors:
        return False
    return all(e.batch_index is not None and 0 <= e.batch_index < request.ops for e in errors)


def settle_batch(response: HTTPResponse, ops: int) -> Settlement:
    """A 2xx ``/api/v2/batch`` answer: everything delivered, except the operations a 207
    lists by ``batch_index`` (rejected with the API's reason, field and message)."""
    if response.status == 200 and response.body in (b"{}", b""):
        return DELIVERED, None
    rejected: dict[int, Outcome] = {}
    for err in parse_error_body(response.body):
        if err.batch_index is not None and 0 <= err.batch_index < ops:
            rejected[err.batch_index] = Outcome(
                "rejected", err.reason or "invalid", err.message, response.status, err.field
            )
    return DELIVERED, rejected or None


def track_format(max_batch_ops: int) -> BatchFormat:
    """``POST /api/v2/batch`` with ``{"batch":[...]}``, < 500,000 bytes."""
    return BatchFormat(
        api="track",
        path=BATCH_PATH,
        head=b'{"batch":[',
        tail=b"]}",
        max_batch_bytes=MAX_BATCH_BYTES,
        max_batch_ops=max_batch_ops,
        settle=settle_batch,
        accept=batch_accepted,
    )
