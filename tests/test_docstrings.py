"""Every public name has a docstring with a short ``Example::`` block.

Public names: what ``customerio_async.__all__``, ``customerio_async.webhooks``,
``customerio_async.testing`` and ``customerio_async.pytest_plugin`` export. Checked: the
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
)

# Public names still without an example, defined in modules other engineers were editing
# while this test was written (customerio_async/_track/client.py, api.py, regional.py,
# admission.py, dedup.py) or likely to touch (_track/operations.py). Fill them in after
# merging and delete each line: the test fails on an entry that has an example by now, so
# this list only ever shrinks. Keys are ``module.qualname`` of the function as defined (or
# the public path of a class).
PENDING_EXAMPLES = frozenset(
    {
        # _track/client.py
        "customerio_async.CustomerIO",
        "customerio_async._track.client.CustomerIO.open",
        "customerio_async._track.client.CustomerIO.aclose",
        "customerio_async._track.client.CustomerIO.flush",
        "customerio_async._track.client.CustomerIO.statistics",
        "customerio_async._track.client.CustomerIO.metric_families",
        "customerio_async._track.client.CustomerIO.observables",
        "customerio_async._track.client.CustomerIO.batch",
        # _track/api.py (the Track calls, shared by CustomerIO and RegionalCustomerIO)
        "customerio_async._track.api.TrackAPI.send",
        "customerio_async._track.api.TrackAPI.delete",
        "customerio_async._track.api.TrackAPI.track",
        "customerio_async._track.api.TrackAPI.track_anonymous",
        "customerio_async._track.api.TrackAPI.delete_device",
        "customerio_async._track.api.TrackAPI.suppress",
        "customerio_async._track.api.TrackAPI.unsuppress",
        "customerio_async._track.api.TrackAPI.merge_customers",
        "customerio_async._track.api.TrackAPI.add_to_segment",
        "customerio_async._track.api.TrackAPI.remove_from_segment",
        # _track/regional.py
        "customerio_async.RegionalCustomerIO",
        "customerio_async._track.regional.RegionalCustomerIO.aclose",
        "customerio_async._track.regional.RegionalCustomerIO.client",
        "customerio_async._track.regional.RegionalCustomerIO.using",
        "customerio_async._track.regional.RegionalCustomerIO.region_for",
        "customerio_async._track.regional.RegionalCustomerIO.flush",
        "customerio_async._track.regional.RegionalCustomerIO.statistics",
        # _track/admission.py
        "customerio_async._track.admission.AdmissionMiddleware.wants",
        # _track/operations.py
        "customerio_async._track.operations.Operation.event",
        "customerio_async._track.operations.Operation.v2_bytes",
    }
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
        if key not in PENDING_EXAMPLES and not _has_example(obj)
    )
    assert not missing, "no docstring with an `Example::` block:\n" + "\n".join(missing)


def test_pending_examples_are_still_pending() -> None:
    found = public_callables()
    unknown = sorted(PENDING_EXAMPLES - set(found))
    assert not unknown, f"PENDING_EXAMPLES names what is no longer public: {unknown}"
    done = sorted(key for key in PENDING_EXAMPLES if _has_example(found[key][1]))
    assert not done, f"these have an example now; delete them from PENDING_EXAMPLES: {done}"


def test_the_check_sees_inherited_methods_and_skips_aliases() -> None:
    found = {path for path, _ in public_callables().values()}
    assert "customerio_async.CustomerIO.track" in found  # defined on the TrackAPI mixin
    assert "customerio_async.Person.identify" in found  # a staticmethod
    assert "customerio_async.pytest_plugin.customerio_fake" in found  # a fixture
    assert "customerio_async.HTTPMiddleware" not in found  # a type alias
    assert "customerio_async.webhooks.SIGNATURE_HEADER" not in found  # a constant
