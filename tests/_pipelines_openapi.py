"""Request-body validation against the vendor's Pipelines (CDP) OpenAPI document.

The sibling of ``tests/_openapi.py`` (which holds the shared :class:`BodyValidator`, the
document lookup beside the clone and the skip-or-fail rule): the document
``shared/openapi/customer-io-pipelines-api-openapi.json`` is loaded once, its defects that
valid Segment-spec traffic hits are patched IN MEMORY (each a named function saying why),
and its ``format: date-time`` is checked by our own RFC 3339 reading.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from _openapi import (
    PIPELINES_SPEC_PATH,
    BodyValidator,
    Spec,
    _expect,
    _one_of_to_any_of,
    _pointer,
    build_contract,
    make_format_checker,
)
from jsonschema import FormatChecker

__all__ = [
    "PIPELINES_SPEC_PATCHES",
    "batch_item_pointer",
    "is_rfc3339",
    "load_pipelines_contract",
]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def is_rfc3339(instance: object) -> bool:
    """An RFC 3339 ``date-time`` (a second reading, independent of the fake's): the shape by
    regex, the calendar and clock by ``datetime``."""
    if not isinstance(instance, str) or _RFC3339.fullmatch(instance) is None:
        return False
    text = instance.upper().replace("Z", "+00:00")
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _format_checker() -> FormatChecker:
    checker = make_format_checker()
    checker.checks("date-time")(is_rfc3339)
    return checker


def _schemas(spec: Spec) -> dict[str, Any]:
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def patch_pipelines_user_one_of(spec: Spec) -> None:
    """``identify``, ``page``, ``screen`` and ``group`` are a ``oneOf`` of a "Known User"
    (``userId``) and an "Anonymous User" (``anonymousId``) branch, neither forbidding the
    other's id; a Segment-spec message carrying both (an identified person with their earlier
    anonymous id) is "valid under each of" them. ``group``'s branches require nothing at all,
    so every group fails. Treat these ``oneOf`` as ``anyOf``."""
    for name in ("identify", "page", "screen", "group"):
        _one_of_to_any_of(_schemas(spec)[name], f"schemas.{name}")


def patch_pipelines_context_one_of(spec: Spec) -> None:
    """``context`` is a ``oneOf`` of ``context_non_mobile`` and ``context_mobile``, which
    share ``context_common`` and forbid no keys, so EVERY context object (even ``{}``) is
    valid under both and fails. Treat it as ``anyOf`` wherever it is used: the common
    fields, the batch level and the standalone ``context`` component."""
    schemas = _schemas(spec)
    common = schemas["all_common_fields"]["allOf"][1]["properties"]["context"]
    _one_of_to_any_of(common, "all_common_fields.context")
    _one_of_to_any_of(schemas["batch"]["properties"]["context"], "batch.context")
    _one_of_to_any_of(schemas["context"], "schemas.context")


def patch_pipelines_track_one_of(spec: Spec) -> None:
    """``track`` is a ``oneOf`` of the custom event (itself a ``oneOf`` of Known User,
    Anonymous User and Group branches) and the semantic events; a semantic event such as
    ``User Deleted`` with a ``userId`` is also a valid custom event, and a custom event with
    both ids matches two branches. Treat both ``oneOf`` as ``anyOf``."""
    track = _schemas(spec)["track"]
    _one_of_to_any_of(track["oneOf"][0], "track custom event")
    _one_of_to_any_of(track, "schemas.track")


def patch_pipelines_track_type_optional(spec: Spec) -> None:
    """The custom-event branches of ``track`` require ``type``, yet ``type`` is redundant on
    ``POST /track`` (the path says it) and the vendor's own curl example for that path omits
    it; required only inside ``/batch``, whose own item schema keeps requiring it."""
    # Works with or without patch_pipelines_track_one_of applied first.
    track = _schemas(spec)["track"]
    custom = track.get("anyOf", track.get("oneOf"))[0]
    for branch in custom.get("anyOf", custom.get("oneOf")):
        first = branch["allOf"][0]
        _expect("type" in first["required"], f"track {branch['title']} required")
        first["required"] = [r for r in first["required"] if r != "type"]


def patch_pipelines_batch_one_of(spec: Spec) -> None:
    """The ``/batch`` item branches Track, Page, Screen and Group are each a ``oneOf`` of
    Known/Anonymous User; the Anonymous Track branch does not even require ``anonymousId``, so
    every identified track matches both. Treat them as ``anyOf``."""
    for branch in _schemas(spec)["batch"]["properties"]["batch"]["items"]["anyOf"]:
        if branch.get("title") != "Identify":
            _one_of_to_any_of(branch, f"batch item {branch.get('title')}")


PIPELINES_SPEC_PATCHES: tuple[Callable[[Spec], None], ...] = (
    patch_pipelines_user_one_of,
    patch_pipelines_context_one_of,
    patch_pipelines_track_one_of,
    patch_pipelines_track_type_optional,
    patch_pipelines_batch_one_of,
)


def build_pipelines_contract(patches: tuple[Callable[[Spec], None], ...]) -> BodyValidator:
    """A validator over the Pipelines document with ``patches`` applied."""
    return build_contract(patches, PIPELINES_SPEC_PATH, _format_checker())


@lru_cache(maxsize=1)
def load_pipelines_contract() -> BodyValidator:
    """The document with every :data:`PIPELINES_SPEC_PATCHES` applied; built once."""
    return build_pipelines_contract(PIPELINES_SPEC_PATCHES)


def batch_item_pointer() -> str:
    """Pointer to the schema of one ``/v1/batch`` element."""
    # The path's schema is only a $ref to the component.
    return _pointer("components", "schemas", "batch", "properties", "batch", "items")
