"""From an error response to what the user sees: parsed error details and typed exceptions.

This is the one place where HTTP status codes become exception classes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._exceptions import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    UnprocessableEntityError,
)

__all__ = ["ErrorDetail", "make_status_error", "parse_error_body"]


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One error the API reported, usually for one operation of a ``/api/v2/batch`` body.

    Example::

        result = await cio.batch(ops)
        for detail in result.errors:
            print(detail.batch_index, detail.reason, detail.message)

    Attributes:
        message: The API's human-readable text (or its ``reason`` when it sent no message).
        reason: Machine-readable reason, when given.
        field: The field at fault, when given.
        batch_index: Zero-based index of the operation inside the batch, when given.
    """

    message: str
    reason: str | None = None
    field: str | None = None
    batch_index: int | None = None


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: RequestTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def parse_error_body(body: bytes) -> list[ErrorDetail]:
    """Parse any of Customer.io's error envelopes into :class:`ErrorDetail` values.

    Understood shapes (contract §2.6, §3.4, §4.3): ``{"meta": {"error": str}}``,
    ``{"meta": {"errors": [str]}}``, ``{"errors": [{"batch_index", "reason", "field",
    "message"}]}``, JSON:API ``{"errors": [{"detail", "status", "source"}]}`` and
    ``{"errors": [str]}``. Anything else (plain text, HTML, garbage) yields no errors
    rather than raising: the status code alone is still meaningful.

    Example::

        parse_error_body(b'{"meta": {"error": "name cannot be blank"}}')
        # [ErrorDetail(message='name cannot be blank')]
    """
    try:
        doc = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        return []
    if not isinstance(doc, dict):
        return []
    out: list[ErrorDetail] = []
    meta = doc.get("meta")
    if isinstance(meta, dict):
        if isinstance(meta.get("error"), str):
            out.append(ErrorDetail(message=meta["error"]))
        errs = meta.get("errors")
        if isinstance(errs, list):
            out.extend(ErrorDetail(message=str(e)) for e in errs if isinstance(e, str))
    errors = doc.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, str):
                out.append(ErrorDetail(message=item))
            elif isinstance(item, dict):
                out.append(_detail_from_dict(item))
    return out


def _detail_from_dict(item: Mapping[str, Any]) -> ErrorDetail:
    reason = item.get("reason")
    field = item.get("field")
    message = item.get("message") or item.get("detail") or reason or "unspecified error"
    index = item.get("batch_index")
    if field is None and isinstance(item.get("source"), dict):
        field = item["source"].get("pointer")
    return ErrorDetail(
        message=str(message),
        reason=str(reason) if reason is not None else None,
        field=str(field) if field is not None else None,
        batch_index=index if isinstance(index, int) and not isinstance(index, bool) else None,
    )


def make_status_error(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    endpoint: str,
    retry_after: float | None = None,
) -> APIStatusError:
    """Map an HTTP error status to the matching :class:`APIStatusError` subclass.

    5xx statuses become :class:`ServerError`; any other unexpected status (408, an unlisted
    4xx, a 3xx without a usable ``Location``) the base :class:`APIStatusError`.

    Args:
        status: The HTTP status code.
        body: The raw response body, parsed for the API's error text.
        headers: Response headers (lower-cased names).
        endpoint: The endpoint *template* (never a concrete identifier), for the message.
        retry_after: Parsed ``Retry-After`` seconds, for 429.

    Returns:
        The exception to raise.
    """
    errors = parse_error_body(body)
    detail = "; ".join(e.message for e in errors[:3])
    message = f"{endpoint} answered HTTP {status}" + (f": {detail}" if detail else "")
    cls = _STATUS_CLASSES.get(status, ServerError if 500 <= status <= 599 else APIStatusError)
    if cls is RateLimitError:
        return RateLimitError(
            message, status_code=status, errors=errors, headers=headers, retry_after=retry_after
        )
    return cls(message, status_code=status, errors=errors, headers=headers)
