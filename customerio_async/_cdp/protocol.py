"""What is Pipelines-specific about sending: credentials, retry rules, the batch envelope.

* **Auth**: HTTP Basic with the source write key as the username and an EMPTY password,
  ``base64("KEY:")`` (PS ``Basic-Auth``, contract §1.2).
* **Strict mode**: every request carries ``X-Strict-Mode: 1``. Without it Pipelines answers
  200 to an invalid, over-limit or unauthenticated request and silently drops it (PS); with
  it the answer is a real 400 or 401, so nothing is lost silently: a 401 pauses sending and
  is retried (``auth_failed`` at the deadline), a 400 splits the batch until the bad message
  stands alone and is ``rejected`` with the API's reason while the rest is delivered.
* **Batch**: ``POST /v1/batch`` with ``{"batch":[...]}``, at most 500,000 bytes before
  compression, each message at most 32,000 (checked at the call site). A 200 delivers every
  message of the batch (the API reports nothing per message).
* **gzip**: batch bodies of 1 KB and more are sent with ``Content-Encoding: gzip`` at level 1
  unless the client was built with ``gzip=False`` (measured in ``benchmarks/results/cdp.md``).
* **Retries**: the default rule (408, 425, 429, network errors, 5xx but 501/505); every
  request may be repeated, since each message carries its ``messageId``.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from types import MappingProxyType

from .._config import (
    MAX_PIPELINES_BATCH_BYTES,
    PIPELINES_GZIP_LEVEL,
    PIPELINES_GZIP_MIN_BYTES,
    RateLimit,
)
from .._http.messages import HTTPRequest, HTTPResponse
from .._http.rules import APIRules
from .._pipeline.protocol import BatchFormat, Settlement
from .._pipeline.receipt import DELIVERED

__all__ = [
    "BATCH_PATH",
    "STRICT_MODE",
    "basic_auth",
    "gzip_body",
    "pipelines_format",
    "pipelines_rules",
]

BATCH_PATH = "/v1/batch"
STRICT_MODE = {"X-Strict-Mode": "1"}
_GZIP = MappingProxyType({"Content-Encoding": "gzip"})
_PLAIN: Mapping[str, str] = MappingProxyType({})


def basic_auth(write_key: str) -> str:
    """``Basic base64("<write key>:")``: the key is the username, the password is empty."""
    token = base64.b64encode(f"{write_key}:".encode()).decode("ascii")
    return f"Basic {token}"


def pipelines_rules(rate_limit: RateLimit | None) -> APIRules:
    """The default retry rule, every request repeatable (``messageId``), one rate-limit
    class per source."""
    return APIRules(
        api="pipelines",
        buckets=MappingProxyType({"default": rate_limit}),
        credentials="the write key",
    )


def gzip_body(body: bytes) -> tuple[bytes, Mapping[str, str]]:
    """``body`` gzipped at level 1 with ``Content-Encoding: gzip``; bodies under 1 KB are
    sent as they are (the gzip framing would eat what they save)."""
    if len(body) < PIPELINES_GZIP_MIN_BYTES:
        return body, _PLAIN
    # wbits 31: the gzip container (header + CRC), what Content-Encoding: gzip names.
    packer = zlib.compressobj(PIPELINES_GZIP_LEVEL, zlib.DEFLATED, 31)
    return packer.compress(body) + packer.flush(), _GZIP


def settle_batch(response: HTTPResponse, ops: int) -> Settlement:
    """A 2xx answer delivers every message of the batch (Pipelines reports nothing per
    message; in strict mode a bad one gets a 400 instead)."""
    return DELIVERED, None


def accept_any(request: HTTPRequest, response: HTTPResponse) -> bool:
    """Every 2xx answer is final: its body carries nothing to check."""
    return True


def pipelines_format(max_batch_ops: int, *, gzip: bool) -> BatchFormat:
    """``POST /v1/batch`` with ``{"batch":[...]}``, ≤500,000 bytes before compression."""
    return BatchFormat(
        api="pipelines",
        path=BATCH_PATH,
        head=b'{"batch":[',
        tail=b"]}",
        max_batch_bytes=MAX_PIPELINES_BATCH_BYTES,
        max_batch_ops=max_batch_ops,
        settle=settle_batch,
        accept=accept_any,
        # 413 too: a proxy in front may count bytes differently.
        split_statuses=frozenset({400, 413}),
        headers=dict(STRICT_MODE),
        encode=gzip_body if gzip else None,
    )
