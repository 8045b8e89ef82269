"""Wire-level pieces shared by every API the fake serves.

:class:`RecordedRequest` (what the fake received), :class:`Reply` (what it decided to answer),
:class:`Call` (what an endpoint handler gets), :class:`Route` (one endpoint and its template)
and the request-body decoding every route shares (``Content-Encoding: gzip``). Nothing here
knows an API's rules; ``_fake.py`` wires these together and the ``_fake_*`` modules judge.
"""

from __future__ import annotations

import dataclasses
import json
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aiohttp import web

# Who may call a route: Track Basic site_id:api_key, App Bearer key, nothing, or the
# Pipelines write key (judged by the Pipelines handler itself: strict mode decides 401 or 200).
Auth = Literal["track", "app", "none", "pipelines"]
# Error body shape: v1 meta.error(s), v2 errors[], App meta.error, Pipelines meta.errors.
Envelope = Literal["v1", "v2", "app", "pipelines"]

JSON_HEADERS: Final[Mapping[str, str]] = {"Content-Type": "application/json"}
# aiohttp answers bodies above client_max_size (1 MiB by default) with its own 413 before
# any handler runs. The fake must see, record and judge large bodies itself (v2 answers
# 413 with the contract's envelope; v1 has no documented cap, §10 U1), so the cap is far
# above every contract limit. Decoded (gunzipped) bodies get the same cap.
MAX_REQUEST_BYTES: Final = 64 * 1024 * 1024
GZIP: Final = "gzip"
_IDENTITY: Final = frozenset({"", "identity"})


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One HTTP request as the fake received it.

    Example::

        request = fake.requests[-1]
        assert (request.method, request.path) == ("POST", "/api/v2/batch")

    Attributes:
        method: HTTP method.
        path: Raw path as received, still percent-encoded (``"/api/v1/customers/a%2Fb"``).
        segments: The path without its leading ``/``, split on ``/`` and then each segment
            percent-decoded: ``("api", "v1", "customers", "a/b")``. ``@`` and ``%40``
            both decode to ``@``.
        query: Decoded query parameters (the last value wins for repeated names).
        headers: Request headers with lower-cased names (the last value wins).
        body: Raw body exactly as it came over the wire (still gzip-compressed when the
            request said ``Content-Encoding: gzip``; :meth:`json` decodes it); ``b""`` when
            none was sent or it was never read (``reset_before_body``).
        status: The status the fake answered, or None if it cut the connection (or the
            client went away first). Also None while the request is still in flight; use
            :meth:`FakeCustomerIO.wait_for_requests` to wait for final records.
        received_at: ``time.monotonic()`` when the request arrived.
    """

    method: str
    path: str
    segments: tuple[str, ...]
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int | None
    received_at: float

    def json(self) -> Any:
        """Decode the body as JSON, gunzipping it first when it was sent gzip-encoded.

        Example::

            batch = fake.requests[-1].json()["batch"]

        Returns:
            The decoded value, or None when the body is empty.

        Raises:
            ValueError: The body is not JSON (or not valid gzip).
        """
        body = self.body
        if self.headers.get("content-encoding", "").strip().lower() == GZIP and body:
            try:
                body = gunzip(body, limit=MAX_REQUEST_BYTES)
            except BodyDecodingError as exc:
                raise ValueError(exc.message) from None
        return json.loads(body) if body else None

    def __repr__(self) -> str:
        """Summarise without headers (they carry credentials) or the full body."""
        return (
            f"RecordedRequest({self.method} {self.path} -> {self.status}, "
            f"{len(self.body)} body bytes)"
        )


@dataclass(frozen=True)
class Reply:
    """A response decided by the fake, before it goes on the wire."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def with_headers(self, extra: Mapping[str, str]) -> Reply:
        """Return a copy with ``extra`` headers added, replacing same-named ones."""
        if not extra:
            return self
        replaced = {name.lower() for name in extra}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in replaced}
        headers.update(extra)
        return dataclasses.replace(self, headers=headers)


def json_reply(status: int, payload: Any) -> Reply:
    """A JSON response with ``payload`` compactly encoded."""
    return Reply(status, json.dumps(payload).encode(), JSON_HEADERS)


OK: Final = json_reply(200, {})


@dataclass(frozen=True)
class Call:
    """What an endpoint handler gets: path parameters, query, headers, body and bookkeeping.

    Attributes:
        params: Path parameters captured by the route template.
        query: Decoded query parameters.
        headers: Request headers (case-insensitive lookups).
        body: The request body; already decoded from ``Content-Encoding`` unless the route
            asked for the raw bytes (:attr:`Route.raw_body`).
        request_index: Index of the request in :attr:`FakeCustomerIO.requests`.
        record: False when :meth:`FakeCustomerIO.clear` ran after the request arrived: the
            request is still answered, but nothing it applies may land in the new history.
        reject_indexes: Batch indexes a ``reject_indexes`` fault rejects.
    """

    params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    request_index: int
    record: bool
    reject_indexes: frozenset[int] = frozenset()


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path template (``{name}`` captures a segment), auth, handler.

    Attributes:
        raw_body: Hand the handler the body as it came over the wire (it decodes
            ``Content-Encoding`` itself, under its own size limit).
    """

    method: str
    template: tuple[str, ...]
    auth: Auth
    envelope: Envelope
    handler: Handler
    raw_body: bool = False

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        """Return the captured parameters if the decoded ``segments`` fit the template."""
        if len(segments) != len(self.template):
            return None
        params: dict[str, str] = {}
        for pattern, segment in zip(self.template, segments, strict=True):
            if pattern.startswith("{"):
                params[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return params


def cut(request: web.BaseRequest) -> web.Response:
    """Abort the connection so the client sees a reset instead of a response."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # aiohttp still writes whatever the handler returns; on an aborted transport that
    # write fails with a ConnectionError, which aiohttp treats as a client disconnect and
    # swallows without logging, so no response ever reaches the wire.
    return web.Response()


# --------------------------------------------------------------------------- body decoding


class BodyDecodingError(Exception):
    """A request body the fake cannot decode.

    Attributes:
        message: What is wrong (no body content in it).
        status: 400 (not valid gzip), 413 (decodes to more than the limit) or 415 (an
            encoding the fake does not speak).
    """

    def __init__(self, message: str, status: int) -> None:
        """Create the error; see the class docstring."""
        super().__init__(message)
        self.message = message
        self.status = status


def gunzip(data: bytes, *, limit: int) -> bytes:
    """Decompress gzip ``data`` (one or more members), refusing more than ``limit`` bytes.

    Decompression stops one byte past ``limit``, so a small "gzip bomb" never inflates in
    memory.

    Raises:
        BodyDecodingError: 400 when ``data`` is not complete gzip; 413 past ``limit``.
    """
    out = bytearray()
    while data:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header and trailer
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
        except zlib.error:
            raise BodyDecodingError("request body is not valid gzip", 400) from None
        if len(out) > limit:
            raise BodyDecodingError(f"decompressed body is larger than {limit} bytes", 413)
        if not inflater.eof:
            raise BodyDecodingError("request body is truncated gzip", 400)
        data = inflater.unused_data
    return bytes(out)


def decode_body(body: bytes, content_encoding: str | None, *, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (none, ``identity`` or ``gzip``) on a request body.

    Raises:
        BodyDecodingError: see :func:`gunzip`; 415 for any other encoding.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in _IDENTITY:
        return body
    if encoding == GZIP:
        return gunzip(body, limit=limit) if body else body
    raise BodyDecodingError(f"Content-Encoding {encoding!r} is not supported", 415)
