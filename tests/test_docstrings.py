"""Every public name has a docstring with a short ``Example::`` block.

Public names: what ``customerio_async.__all__``, ``customerio_async.webhooks``,
``customerio_async.testing``, ``customerio_async.pytest_plugin``, ``customerio_async.sync`` and
``customerio_async.fleet`` export. Checked: the
classes and functions among them, and the public methods (plain, class and static) of those
classes, inherited ones included when they are ours. Type aliases, constants and properties
are documented but not required to carry an example. The reference documentation renders
these docstrings (``docs/``; the ``Example::`` block becomes its example box).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from typing import Any

PACKAGES = (
    "customerio_async",
    "customerio_async.webhooks",
    "customerio_async.testing",
    "customerio_async.pytest_plugin",
    "customerio_async.sync",
    "customerio_async.fleet",
)


def _key(obj: Any, public_path: str) -> str:
    if inspect.isclass(obj):
        return public_path
    function = inspect.unwrap(obj)
    return f"{function.__module__}.{function.__qualname__}"


def _methods(cls: type) -> Iterator[tuple[str, Any]]:
    """The public methods of ``cls`` defined by our classes (its own and inherited)."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("customerio_async"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if isinstance(member, (staticmethod, classmethod)):
                yield name, member.__func__
            elif inspect.isfunction(member):
                yield name, member


def public_callables() -> dict[str, tuple[str, Any]]:
    """``key -> (public path, object)`` for every class, function and method to check."""
    found: dict[str, tuple[str, Any]] = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not inspect.isclass(obj) and hasattr(obj, "__wrapped__"):
                obj = inspect.unwrap(obj)  # a pytest fixture's definition object
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # modules, type aliases, constants
            path = f"{package}.{name}"
            found.setdefault(_key(obj, path), (path, obj))
            if inspect.isclass(obj):
                for method_name, method in _methods(obj):
                    found.setdefault(_key(method, path), (f"{path}.{method_name}", method))
    return found


def _has_example(obj: Any) -> bool:
    doc = inspect.getdoc(obj) if inspect.isclass(obj) else inspect.unwrap(obj).__doc__
    return isinstance(doc, str) and "Example::" in doc


def test_every_public_name_has_an_example() -> None:
    missing = sorted(
        f"{path} ({key})"
        for key, (path, obj) in public_callables().items()
        if not _has_example(obj)
    )
    assert not missing, "no docstring with an `Example::` block:\n" + "\n".join(missing)


def test_the_check_sees_inherited_methods_and_skips_aliases() -> None:
    found = {path for path, _ in public_callables().values()}
    assert "customerio_async.CustomerIO.track" in found  # defined on the TrackAPI mixin
    assert "customerio_async.Person.identify" in found  # a staticmethod
    assert "customerio_async.pytest_plugin.customerio_fake" in found  # a fixture
    assert "customerio_async.HTTPMiddleware" not in found  # a type alias
    assert "customerio_async.webhooks.SIGNATURE_HEADER" not in found  # a constant
