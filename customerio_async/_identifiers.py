"""Person identifiers: bare values, explicit identifier objects, and how each maps.

The rule (documented in the README):

* A **bare** identifier (a ``str`` or ``int``, as the official SDK takes) is interpreted the
  way Customer.io's v1 server interprets a path identifier: a value starting with ``cio_`` is
  a ``cio_id`` (the prefix is dropped inside JSON bodies), a value shaped like an email
  address (``local@domain``, no spaces) is an ``email``, anything else is an ``id``.
  The v1 path carries the bare value unchanged; v2 operations carry the inferred object.
* An **explicit** identifier object — ``{"id": ...}``, ``{"email": ...}``, ``{"cio_id": ...}``
  or, for v2 only, ``{"phone": ...}`` — is used as given, for callers whose ids look like
  emails or start with ``cio_``. Exactly one key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeAlias

from ._config import MAX_IDENTIFIER_BYTES
from ._exceptions import LimitExceededError, ValidationError

__all__ = ["IdentifierLike", "PersonRef", "check_identifier", "person_ref"]

IdentifierLike: TypeAlias = "str | int | Mapping[str, str]"
"""A bare identifier (inferred like the v1 server does) or an explicit one-key object."""

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
PERSON_KEYS = ("id", "email", "cio_id", "phone")
MERGE_KEYS = ("id", "email", "cio_id")


def check_identifier(value: Any, field: str) -> str:
    """Validate a person/object/device identifier and return it as ``str``.

    ``int`` is accepted (the official SDK allows numeric ids) and converted.

    Raises:
        ValidationError: When empty, not a str/int, or over 150 UTF-8 bytes.
    """
    if type(value) is str:
        text = value
    elif isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(
            f"{field} must be a string or an integer, got {type(value).__name__}", field=field
        )
    elif isinstance(value, int) and value.bit_length() > 600:  # > 180 digits; str() may fail
        digits = value.bit_length() * 3 // 10
        raise LimitExceededError(
            f"{field} has over {digits} digits; the limit is {MAX_IDENTIFIER_BYTES} bytes",
            size=digits,
            limit=MAX_IDENTIFIER_BYTES,
            field=field,
        )
    else:
        text = str(value)
    if not text or text.isspace():
        raise ValidationError(f"{field} cannot be blank", field=field)
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise ValidationError(
            f"{field} contains a lone surrogate, which is not valid UTF-8", field=field
        ) from None
    if size > MAX_IDENTIFIER_BYTES:
        raise LimitExceededError(
            f"{field} is {size} bytes; the limit is {MAX_IDENTIFIER_BYTES}",
            size=size,
            limit=MAX_IDENTIFIER_BYTES,
            field=field,
        )
    return text


class PersonRef:
    """A validated person reference.

    Attributes:
        identifiers: The v2 identifier object (exactly one key).
        v1_path_id: The value for a v1 ``/customers/{identifier}`` path, or ``None`` when
            the v1 server would misread it (an explicit ``id`` that looks like an email,
            a phone number); such people travel through v2.
        lane: A stable key for per-person ordering and de-duplication.
    """

    __slots__ = ("identifiers", "lane", "v1_path_id")

    def __init__(self, identifiers: dict[str, str], v1_path_id: str | None) -> None:
        self.identifiers = identifiers
        self.v1_path_id = v1_path_id
        ((key, value),) = identifiers.items()
        self.lane = f"person:{key}:{value}"

    def __repr__(self) -> str:
        # Identifiers are personal data: keep them out of reprs that end up in logs.
        return f"PersonRef(kind={next(iter(self.identifiers))!r})"


def infer_key(value: str) -> str:
    """Return the identifier type the v1 server infers for a bare value."""
    if value.startswith("cio_"):
        return "cio_id"
    if "@" in value and _EMAIL.fullmatch(value):  # the regex only for candidates
        return "email"
    return "id"


def person_ref(
    value: Any, field: str = "customer_id", *, v2_keys: tuple[str, ...] = PERSON_KEYS
) -> PersonRef:
    """Validate a bare or explicit person identifier.

    Args:
        value: A bare ``str``/``int`` or a one-key mapping.
        field: Argument name for error messages.
        v2_keys: Identifier types accepted in an explicit object.

    Raises:
        ValidationError: Blank, too long, wrong type, or an object without exactly one
            accepted key.
    """
    if type(value) is not str and isinstance(value, Mapping):  # str first: the hot path
        if len(value) != 1:
            raise ValidationError(
                f"{field} must have exactly one identifier key ({', '.join(v2_keys)})",
                field=field,
            )
        ((key, raw),) = value.items()
        if key not in v2_keys:
            raise ValidationError(
                f"{field} identifier type must be one of {', '.join(v2_keys)}", field=field
            )
        text = check_identifier(raw, f"{field}.{key}")
        if key == "cio_id":
            text = text.removeprefix("cio_")
            if not text or text.isspace():
                raise ValidationError(f"{field}.cio_id cannot be blank", field=field)
            return PersonRef({"cio_id": text}, "cio_" + text)
        v1 = text if key != "phone" and infer_key(text) == key else None
        return PersonRef({key: text}, v1)
    text = check_identifier(value, field)
    key = infer_key(text)
    if key == "cio_id":
        bare = text[4:]
        if not bare or bare.isspace():
            raise ValidationError(f"{field} 'cio_' needs a value after the prefix", field=field)
        return PersonRef({"cio_id": bare}, text)
    return PersonRef({key: text}, text)


def merge_identifier(id_type: Any, value: Any, field: str) -> dict[str, str]:
    """Build a merge ``primary``/``secondary`` object (exactly one of id, email, cio_id).

    Raises:
        ValidationError: For an unknown type or an invalid value.
    """
    if id_type not in MERGE_KEYS:
        raise ValidationError(
            f"{field} id type must be one of {', '.join(MERGE_KEYS)}", field=field
        )
    text = check_identifier(value, field)
    if id_type == "cio_id":
        text = text.removeprefix("cio_")
        if not text or text.isspace():
            raise ValidationError(f"{field} cio_id cannot be blank", field=field)
    return {id_type: text}
