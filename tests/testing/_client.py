"""A tiny raw-HTTP client for the fake (plain aiohttp; the SDK is deliberately not used)."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import yarl

from customerio_async.testing import FakeCustomerIO

_NO_BODY: Any = object()


def basic(user: str, password: str) -> str:
    """A Basic auth header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass(frozen=True)
class Reply:
    """A response as the test client saw it."""

    status: int
    headers: Mapping[str, str]
    raw: bytes

    def json(self) -> Any:
        """Decode the body; None when empty."""
        return json.loads(self.raw) if self.raw else None


class Raw:
    """Sends pre-encoded paths to a started fake and returns :class:`Reply`."""

    def __init__(self, fake: FakeCustomerIO, session: aiohttp.ClientSession) -> None:
        """Bind to a started fake and an open session."""
        self.fake = fake
        self.session = session

    async def post(
        self,
        path: str,
        payload: Any = _NO_BODY,
        *,
        raw: bytes | None = None,
        auth: str | None = None,
        headers: Mapping[str, str] | None = None,
        gzipped: bool = False,
        content_type: str | None = "application/json",
    ) -> Reply:
        """POST ``payload`` as compact JSON (or ``raw`` bytes), optionally gzip-encoded."""
        data = raw
        if payload is not _NO_BODY:
            data = json.dumps(payload, separators=(",", ":")).encode()
        all_headers = dict(headers or {})
        if auth is not None:
            all_headers["Authorization"] = auth
        if content_type is not None:
            all_headers.setdefault("Content-Type", content_type)
        if gzipped and data is not None:
            data = gzip.compress(data)
            all_headers["Content-Encoding"] = "gzip"
        url = yarl.URL(self.fake.url + path, encoded=True)
        # skip_auto_headers: aiohttp would otherwise add a Content-Type of its own.
        async with self.session.post(
            url, data=data, headers=all_headers, skip_auto_headers=("Content-Type",)
        ) as resp:
            return Reply(resp.status, resp.headers, await resp.read())
