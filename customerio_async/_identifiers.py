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
from typing import Any, NamedTuple, TypeAlias

import orjson

from ._config import MAX_IDENTIFIER_BYTES
from ._exceptions import LimitExceededError, ValidationError

__all__ = [
    "Identifier",
    "IdentifierLike",
    "OrderingKey",
    "PersonRef",
    "check_identifier",
    "json_size",
    "person_ref",
]

IdentifierLike: TypeAlias = "str | int | Mapping[str, str]"
"""A bare identifier (inferred like the v1 server does) or an explicit one-key object."""

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
PERSON_KEYS = ("id", "email", "cio_id", "phone")
MERGE_KEYS = ("id", "email", "cio_id")


def json_size(text: str, field: str) -> int:
    """The bytes ``text`` occupies inside a JSON string (escapes counted, quotes not): what
    the server measures a limit against. Printable ASCII without quotes or backslashes —
    nearly every identifier — is answered without serialising.

    Raises:
        ValidationError: For a lone surrogate (not valid UTF-8).
    """
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text)
    return _escaped(text, field)


def _escaped(text: str, field: str) -> int:
    try:
        return len(orjson.dumps(text)) - 2
    except TypeError:  # orjson.JSONEncodeError: "str is not valid UTF-8: surrogates…"
        raise ValidationError(
            f"{field} contains a lone surrogate, which is not valid UTF-8", field=field
        ) from None


def check_identifier(value: Any, field: str) -> str:
    """Validate a person/object/device identifier and return it as ``str``.

    ``int`` is accepted (the official SDK allows numeric ids) and converted.

    Raises:
        ValidationError: When empty, not a str/int, or over 150 bytes as JSON (escapes
            counted, what the server measures).
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
    size = json_size(text, field)
    if size > MAX_IDENTIFIER_BYTES:
        raise LimitExceededError(
            f"{field} is {size} bytes; the limit is {MAX_IDENTIFIER_BYTES}",
            size=size,
            limit=MAX_IDENTIFIER_BYTES,
            field=field,
        )
    return text


class Identifier(NamedTuple):
    """A typed person identifier (what a region resolver receives).

    Example::

        async def lookup_region(person: Identifier) -> str | None:
            if person.type == "email":
                return await db.region_by_email(person.value)
            return None

    Attributes:
        type: ``"id"``, ``"email"``, ``"cio_id"`` or ``"phone"``.
        value: The value (a ``cio_id`` without its ``cio_`` prefix).
    """

    type: str
    value: str


class OrderingKey(NamedTuple):
    """What an operation touches, for ordering: operations with equal keys are delivered in
    the order they were admitted.

    Example::

        OrderingKey("person", "id", "42") != OrderingKey("person", "cio_id", "42")

    Attributes:
        kind: ``"person"``, ``"object"``, ``"anonymous"`` or ``"delivery"``.
        id_type: The identifier's type (``id``, ``email``, ``cio_id``, ``phone``; an
            object's type id or ``cio_object_id``; ``anonymous_id``; ``delivery_id``).
        value: The identifier's value.
    """

    kind: str
    id_type: str
    value: str


_new_key = tuple.__new__


class PersonRef:
    """A validated person reference.

    Attributes:
        identifiers: The v2 identifier object (exactly one key).
        v1_path_id: The value for a v1 ``/customers/{identifier}`` path, or ``None`` when
            the v1 server could misread it (an ``id`` containing ``@``, a phone number);
            such people travel through v2 in every mode.
        key: The ordering key (type and value: ``id`` 42 and ``cio_id`` 42 differ).
    """

    __slots__ = ("identifiers", "key", "v1_path_id")

    def __init__(self, identifiers: dict[str, str], v1_path_id: str | None) -> None:
        self.identifiers = identifiers
        self.v1_path_id = v1_path_id
        ((id_type, value),) = identifiers.items()
        # tuple.__new__ skips the namedtuple's Python-level __new__ (a new person per call
        # is common: high-cardinality ids).
        self.key = _new_key(OrderingKey, ("person", id_type, value))

    def __repr__(self) -> str:
        # Identifiers are personal data: keep them out of reprs that end up in logs.
        return f"PersonRef(kind={self.key.id_type!r})"

    @property
    def id_type(self) -> str:
        """``id``, ``email``, ``cio_id`` or ``phone``."""
        return self.key.id_type

    @property
    def value(self) -> str:
        """The identifier's value (without the ``cio_`` prefix for a cio_id)."""
        return self.key.value


def infer_key(value: str) -> str:
    """Return the identifier type the v1 server infers for a bare value."""
    if value.startswith("cio_"):
        return "cio_id"
    if "@" in value and _EMAIL.fullmatch(value):  # the regex only for candidates
        return "email"
    return "id"


def _v1_path(id_type: str, value: str) -> str | None:
    """The v1 path form of a typed identifier, or ``None`` when the v1 server could read it
    as another type: the server infers the type from the value's shape, so an ``id`` that
    contains ``@`` (``a@b@c``, ``ada lovelace@x.com``) might be taken for an email, and a
    phone number is only addressable through v2."""
    if id_type == "cio_id":
        return "cio_" + value
    if id_type == "email":
        return value if _EMAIL.fullmatch(value) else None
    if id_type == "id":
        return value if "@" not in value and not value.startswith("cio_") else None
    return None


# Bare identifiers repeat (the same people act again and again): validating and building
# their reference once saves most of the per-call identifier cost. Bounded; cleared whole.
REF_CACHE: dict[str, PersonRef] = {}
REF_CACHE_MAX = 8192  # ~3 MB at most


def person_ref(
    value: Any, field: str = "customer_id", *, v2_keys: tuple[str, ...] = PERSON_KEYS
) -> PersonRef:
    """Validate a bare or explicit person identifier.

    One rule for every mode: a bare value's type is inferred (``cio_…`` → cio_id, an email
    shape → email, else id), and whenever the v1 path could be misread the person is
    addressed through v2.

    Args:
        value: A bare ``str``/``int`` or a one-key mapping.
        field: Argument name for error messages.
        v2_keys: Identifier types accepted in an explicit object.

    Raises:
        ValidationError: Blank, too long, wrong type, or an object without exactly one
            accepted key.
    """
    if type(value) is str:
        ref = REF_CACHE.get(value)
        if ref is not None:
            return ref
    elif isinstance(value, Mapping):
        return _explicit_ref(value, field, v2_keys)
    text = check_identifier(value, field)
    key = infer_key(text)
    if key == "cio_id":
        bare = text[4:]
        if not bare or bare.isspace():
            raise ValidationError(f"{field} 'cio_' needs a value after the prefix", field=field)
        ref = PersonRef({"cio_id": bare}, text)
    else:
        ref = PersonRef({key: text}, _v1_path(key, text))
    if type(value) is str:
        if len(REF_CACHE) >= REF_CACHE_MAX:
            REF_CACHE.clear()
        REF_CACHE[value] = ref
    return ref


def _explicit_ref(value: Mapping[Any, Any], field: str, v2_keys: tuple[str, ...]) -> PersonRef:
    if len(value) != 1:
        raise ValidationError(
            f"{field} must have exactly one identifier key ({', '.join(v2_keys)})", field=field
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
    return PersonRef({key: text}, _v1_path(key, text))


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
