"""The package as a whole: its public surface and documentation, and its layout (module
and function sizes, imports, no cycles, aiohttp only where it is used)."""

from __future__ import annotations

import asyncio
import inspect
import sys
import typing
from pathlib import Path

import pytest
from _layout import (
    attribute_docstrings,
    imports,
    missing_examples,
    modules,
    outside_layers,
    oversized,
)

from customerio_async import webhooks

PACKAGE = "webhooks"
PREFIX = "customerio_async.webhooks"
# What the webhooks package may import from the rest of the SDK: the leaves and _common.
ALLOWED = ("customerio_async._config", "customerio_async._exceptions", "customerio_async._common")


def test_public_surface_is_documented() -> None:
    for name in webhooks.__all__:
        obj = getattr(webhooks, name)
        alias = typing.get_origin(obj) is not None  # Callable[...] is a "class" on 3.10
        if (inspect.isclass(obj) and not alias) or inspect.isfunction(obj):
            assert obj.__doc__, name
            for member_name, member in inspect.getmembers(obj):
                if not member_name.startswith("_") and inspect.isfunction(member):
                    assert member.__doc__, f"{name}.{member_name}"


def _public_docs() -> dict[str, str | None]:
    """Every public name's docstring, and every public method's, by dotted name."""
    attributes: dict[str, str] = {}
    for path in modules(PACKAGE):
        attributes.update(attribute_docstrings(path))
    docs: dict[str, str | None] = {}
    for name in webhooks.__all__:
        obj = getattr(webhooks, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)) or name in attributes:
            docs[name] = attributes.get(name)  # constants and type aliases
            continue
        docs[name] = obj.__doc__
        for member_name, member in vars(obj).items() if inspect.isclass(obj) else ():
            if not member_name.startswith("_") and callable(member):
                docs[f"{name}.{member_name}"] = member.__doc__
    return docs


def test_every_public_name_has_an_example() -> None:
    docs = _public_docs()
    assert {"SIGNATURE_HEADER", "EventCallback", "WebhookReceiver.handle"} <= set(docs)
    assert missing_examples(docs) == []


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: p.name)
def test_modules_and_functions_stay_small(path: Path) -> None:
    assert oversized(path) == []


@pytest.mark.parametrize("path", modules(PACKAGE), ids=lambda p: p.name)
def test_imports_stay_in_their_layer(path: Path) -> None:
    assert outside_layers(path, PACKAGE, ALLOWED) == set()
    uses_aiohttp = any(m == "aiohttp" or m.startswith("aiohttp.") for m in imports(path, PACKAGE))
    assert uses_aiohttp == (path.name == "aiohttp.py")


def test_no_import_cycle_between_the_modules() -> None:
    graph = {
        f"{PREFIX}.{path.stem}": {m for m in imports(path, PACKAGE) if m.startswith(PREFIX + ".")}
        for path in modules(PACKAGE)
        if path.stem != "__init__"
    }

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    assert [name for name in graph if reaches(name, name, set())] == []


async def test_importing_the_package_does_not_load_aiohttp_web() -> None:
    # A fresh interpreter: this one has long imported aiohttp.web for the tests.
    probe = (
        "import sys, customerio_async.webhooks as w\n"
        "print('aiohttp.web' in sys.modules, 'customerio_async.webhooks.aiohttp' in sys.modules)\n"
        "w.aiohttp_handler(lambda event: None, signing_key='k')\n"
        "print('aiohttp.web' in sys.modules, 'customerio_async.webhooks.aiohttp' in sys.modules)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", probe, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    assert out.decode().split() == ["False", "False", "True", "True"]
