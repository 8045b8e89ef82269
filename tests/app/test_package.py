"""The package as a whole: every public name is documented with an example, and the
layout holds (module and function sizes, imports only from the layers below)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _layout import missing_examples, modules, outside_layers, oversized

import customerio_async
import customerio_async._app
from customerio_async import (
    APIClient,
    SendEmailRequest,
    SendInAppRequest,
    SendInboxMessageRequest,
    SendPushRequest,
    SendSMSRequest,
    SendWhatsAppRequest,
)


def test_public_methods_have_docstrings() -> None:
    import inspect

    classes = (
        APIClient,
        SendEmailRequest,
        SendPushRequest,
        SendSMSRequest,
        SendWhatsAppRequest,
        SendInboxMessageRequest,
        SendInAppRequest,
    )
    for cls in classes:
        assert cls.__doc__
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and callable(member):
                assert member.__doc__, f"{cls.__name__}.{name}"


PACKAGE = "_app"
# What the App API package may import from the rest of the SDK: the HTTP stack, the shared
# pieces and the leaves; never the Track client or its pipeline.
ALLOWED = tuple(
    f"customerio_async.{name}"
    for name in ("_http", "_common", "_config", "_exceptions", "_identifiers", "_metrics")
)


def _public_docs() -> dict[str, str | None]:
    """The docstring of every public App API name, and of each public method or property."""
    docs: dict[str, str | None] = {}
    for name in customerio_async._app.__all__:
        obj = getattr(customerio_async, name)
        docs[name] = obj.__doc__
        for cls in obj.__mro__:
            if cls.__module__.startswith("customerio_async"):
                for member_name, member in vars(cls).items():
                    if member_name.startswith("_"):
                        continue
                    if isinstance(member, property) or callable(member):
                        docs.setdefault(f"{name}.{member_name}", member.__doc__)
    return docs


def test_every_public_name_has_an_example() -> None:
    docs = _public_docs()
    assert {"SendResult", "SendEmailRequest.attach", "APIClient.region"} <= set(docs)
    assert {"SendSMSRequest.to_dict", "APIClient.trigger_broadcast"} <= set(docs)
    assert missing_examples(docs) == []


def test_public_names_keep_their_public_module() -> None:
    for name in customerio_async._app.__all__:
        assert getattr(customerio_async, name).__module__ == "customerio_async", name


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: p.name)
def test_modules_and_functions_stay_small(path: Path) -> None:
    assert oversized(path) == []


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: p.name)
def test_imports_stay_in_their_layer(path: Path) -> None:
    assert outside_layers(path, PACKAGE, ALLOWED) == set()
