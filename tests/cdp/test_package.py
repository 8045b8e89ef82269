"""The Pipelines package as a whole: every public name documented with an example, the
layout (module and function sizes, imports only from the layers below), and analytics-python's
call signatures mirrored exactly."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from _layout import missing_examples, modules, outside_layers, oversized

import customerio_async
import customerio_async._cdp
from customerio_async import PipelinesClient

PACKAGE = "_cdp"
# The send pipeline, the HTTP stack, the shared pieces and the leaves; never the Track or
# App clients.
ALLOWED = tuple(
    f"customerio_async.{name}"
    for name in (
        "_pipeline",
        "_http",
        "_common",
        "_config",
        "_exceptions",
        "_metrics",
        "_version",
    )
)


def _public_docs() -> dict[str, str | None]:
    docs: dict[str, str | None] = {}
    for name in customerio_async._cdp.__all__:
        obj = getattr(customerio_async, name)
        docs[name] = obj.__doc__
        for cls in obj.__mro__:
            if cls.__module__.startswith("customerio_async"):
                for member_name, member in vars(cls).items():
                    if isinstance(member, classmethod):
                        member = member.__func__
                    if not member_name.startswith("_") and (
                        isinstance(member, property) or callable(member)
                    ):
                        docs.setdefault(f"{name}.{member_name}", member.__doc__)
    return docs


def test_every_public_name_has_an_example() -> None:
    docs = _public_docs()
    assert {"PipelinesClient.track", "PipelinesClient.flush", "PipelinesCall.from_dict"} <= set(
        docs
    )
    assert missing_examples(docs) == []


def test_public_names_keep_their_public_module() -> None:
    for name in customerio_async._cdp.__all__:
        assert getattr(customerio_async, name).__module__ == "customerio_async", name


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: p.name)
def test_modules_and_functions_stay_small(path: Path) -> None:
    assert oversized(path) == []


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: p.name)
def test_imports_stay_in_their_layer(path: Path) -> None:
    assert outside_layers(path, PACKAGE, ALLOWED) == set()


def test_calls_take_analytics_pythons_arguments_in_its_order() -> None:
    client = pytest.importorskip("customerio.analytics.client", reason="customerio-cdp-analytics")
    for name in ("identify", "track", "page", "screen", "group", "alias"):
        theirs = list(inspect.signature(getattr(client.Client, name)).parameters)[1:]
        ours = inspect.signature(getattr(PipelinesClient, name)).parameters.values()
        positional = [p.name for p in ours if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD][1:]
        assert positional == theirs, name
