"""Rules every API of the fake shares: the violation type, JSON bodies, Basic auth, paths.

Pure functions, no I/O. :mod:`._rules` (Track), :mod:`._rules_track_extra` and
:mod:`._rules_pipelines` build on these; :mod:`._rules` re-exports them under their old names.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any, Final, NoReturn
from urllib.parse import unquote

# The documented limits say "KB"; the fake reads it as 1024 bytes everywhere (Track v2 and
# Pipelines alike) and allows a body of exactly the limit.
KB: Final = 1024

# v2 ``reason`` values the fake uses. The vendor's vocabulary is undocumented (TS only
# says "string"); these are stable so client tests can assert on them.
REASON_REQUIRED: Final = "required"
REASON_INVALID: Final = "invalid"
REASON_TOO_LONG: Final = "too_long"
REASON_TOO_LARGE: Final = "too_large"


class RuleViolation(Exception):
    """A request (or one batch operation) breaks a contract rule.

    Attributes:
        message: Human-readable text, vendor wording where the contract quotes it.
        field: The offending field (v2 ``field``); ``""`` when the whole body is at fault.
        reason: A short machine-readable cause (v2 ``reason``).
        status: The HTTP status when this fails a whole request (400, or 413 for size).
    """

    def __init__(
        self, message: str, *, field: str = "", reason: str = REASON_INVALID, status: int = 400
    ) -> None:
        """Create the violation; see the class docstring for the fields."""
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason
        self.status = status


def _fail(message: str, *, field: str = "", reason: str = REASON_INVALID) -> NoReturn:
    raise RuleViolation(message, field=field, reason=reason)


# --------------------------------------------------------------------------- encoding helpers


def utf8_len(text: str) -> int:
    """Return the UTF-8 byte length of ``text`` (lone surrogates count as 3 bytes)."""
    # JSON may carry "\ud800" escapes; surrogatepass measures them instead of crashing.
    return len(text.encode("utf-8", "surrogatepass"))


def json_size(value: Any) -> int:
    """Return the byte size of ``value`` as compact JSON (no spaces, UTF-8, non-ASCII kept).

    This is the smallest faithful encoding, so measuring it never rejects a value that
    the client could have sent within the limit.
    """
    return utf8_len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN/Infinity; real JSON (and the real service) does not.
    raise ValueError(f"{name} is not valid JSON")


def parse_json_object(body: bytes, *, allow_empty: bool) -> dict[str, Any]:
    """Parse a request body that must be a JSON object.

    Args:
        body: The raw request body.
        allow_empty: Treat an empty (or all-whitespace) body as ``{}``. True for the
            bodyless endpoints (DELETE, suppress, unsuppress), which some SDKs call with
            no body and others with ``{}`` (§1.3).

    Returns:
        The decoded object.

    Raises:
        RuleViolation: The body is missing, is not strict JSON, or is not an object.
    """
    if not body.strip():
        if allow_empty:
            return {}
        _fail("request body must be a JSON object", reason=REASON_REQUIRED)
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        _fail("request body is not valid JSON")
    if not isinstance(value, dict):
        _fail("request body must be a JSON object")
    return value


# --------------------------------------------------------------------------- auth and paths


def _b64decode(token: str, altchars: bytes | None) -> bytes | None:
    try:
        return base64.b64decode(token, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def parse_basic_credentials(header: str | None) -> tuple[str, str] | None:
    """Decode an ``Authorization: Basic`` header into ``(username, password)``.

    The standard base64 alphabet is tried first, then the URL-safe one, because the
    official Go SDK encodes with ``-``/``_`` (§1.2).

    Args:
        header: The raw header value, or None when absent.

    Returns:
        The credentials, or None when the header is absent or malformed.
    """
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic" or not token:
        return None
    raw = _b64decode(token, None)
    if raw is None:
        raw = _b64decode(token, b"-_")
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    username, colon, password = text.partition(":")
    if not colon:
        return None
    return username, password


def credentials_match(header: str | None, username: str, password: str) -> bool:
    """Return True when ``header`` carries exactly ``username:password`` as Basic auth."""
    credentials = parse_basic_credentials(header)
    if credentials is None:
        return False
    # Compare both halves in constant time so the fake is not a timing oracle either.
    user_ok = hmac.compare_digest(credentials[0].encode(), username.encode())
    password_ok = hmac.compare_digest(credentials[1].encode(), password.encode())
    return user_ok and password_ok


def split_path(raw_path: str) -> tuple[str, ...]:
    """Split a raw (still percent-encoded) path into decoded segments.

    The leading ``/`` is dropped, the rest is split on ``/`` and only then is each
    segment percent-decoded, so ``%2F`` stays inside its segment and ``%40`` equals
    ``@`` (§1.4, §9 rule 1). ``"/api/v1/customers/a%2Fb"`` gives
    ``("api", "v1", "customers", "a/b")``.
    """
    trimmed = raw_path[1:] if raw_path.startswith("/") else raw_path
    return tuple(unquote(segment) for segment in trimmed.split("/"))
