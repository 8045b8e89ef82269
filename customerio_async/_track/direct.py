"""Track requests a caller awaits: direct-mode calls, the explicit ``batch()``, the region
lookup. They share the client's HTTP stack (``call`` mode: bounded attempts, typed errors).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .._common.wire import check_size
from .._config import MAX_BATCH_BYTES, MAX_ENTITY_BYTES, resolve_region
from .._exceptions import CustomerIOError, ValidationError
from .._http.errors import make_status_error, parse_error_body
from .._http.messages import HTTPRequest, HTTPResponse
from .._http.stack import HTTPStack
from .._pipeline.receipt import DELIVERED, Receipt
from .operations import Operation, from_mapping
from .results import BatchResult, RegionInfo

__all__ = ["DirectSender", "adopt", "parse_json"]

REGION_PATH = "/api/v1/accounts/region"


def parse_json(body: bytes) -> Any:
    """A 2xx body as JSON; ``{}`` for an empty or unparseable one (still a success)."""
    if not body:
        return {}
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}


def adopt(operations: Iterable[Operation | Mapping[str, Any]]) -> list[Operation]:
    """The explicit ``batch()`` input as operations (dicts are checked and serialised)."""
    return [
        item if isinstance(item, Operation) else from_mapping(item, index)
        for index, item in enumerate(operations)
    ]


class DirectSender:
    """Sends one Track request per call and raises on errors.

    Args:
        http: The client's HTTP stack.
        region: A callable giving the current region label (it may be discovered at open).
    """

    def __init__(self, http: HTTPStack, region: Any) -> None:
        self._http = http
        self._region = region

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        endpoint: str,
        *,
        authenticated: bool = True,
    ) -> HTTPResponse:
        """One request; a 2xx response or a typed error."""
        request = HTTPRequest(
            method, path, body, endpoint, region=self._region(), authenticated=authenticated
        )
        return await self._http.call_ok(request)

    async def send(self, op: Operation) -> Receipt:
        """Direct mode: official-style calls keep the official SDK's v1 request when the v1
        server can address the person; typed v2 operations and people it could misread go
        through ``/api/v2/entity``; v1-only operations send their own request."""
        single = op.single
        if single is not None:
            body = op.data if single.has_body else None
            response = await self.request(
                single.method,
                single.path,
                body,
                single.endpoint,
                authenticated=single.authenticated,
            )
        elif (v1 := op.v1) is not None:
            response = await self.request(v1.method, v1.path(), v1.encode_body(), v1.endpoint)
        else:
            check_size(len(op.data), MAX_ENTITY_BYTES, "/api/v2/entity body")
            response = await self.request("POST", "/api/v2/entity", op.data, "/api/v2/entity")
        return Receipt(op, outcome=DELIVERED, response=parse_json(response.body))

    async def batch(self, operations: list[Operation]) -> BatchResult:
        """One explicit ``/api/v2/batch`` request (see ``CustomerIO.batch``)."""
        parts = [op.v2_bytes() for op in operations]
        if not parts:
            raise ValidationError("operations cannot be empty in batch", field="operations")
        body = b'{"batch":[' + b",".join(parts) + b"]}"
        check_size(len(body), MAX_BATCH_BYTES, "/api/v2/batch body")
        response = await self.request("POST", "/api/v2/batch", body, "/api/v2/batch")
        return BatchResult(status=response.status, errors=tuple(parse_error_body(response.body)))

    async def region(self) -> RegionInfo:
        """``GET /api/v1/accounts/region`` (also the cheapest authenticated request)."""
        response = await self.request("GET", REGION_PATH, None, REGION_PATH)
        doc = parse_json(response.body)
        try:
            return RegionInfo(
                region=resolve_region(doc["region"]),
                url=str(doc["url"]),
                environment_id=int(doc["environment_id"]),
            )
        except (KeyError, TypeError, ValueError, CustomerIOError) as exc:
            raise make_status_error(
                502, b"", response.headers, endpoint=f"{REGION_PATH} (unexpected body)"
            ) from exc
