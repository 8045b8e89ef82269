"""The sync package's public surface: every public callable documented with an example,
and the same method names and call signatures (minus ``async``) as the async client."""

from __future__ import annotations

import inspect

from _layout import missing_examples

from customerio_async import CustomerIO as AsyncCustomerIO
from customerio_async import sync

ASYNC_ONLY = {"open", "aclose", "metric_families", "observables"}  # lifecycle / metrics plumbing


def _public_docs() -> dict[str, str | None]:
    docs: dict[str, str | None] = {}
    for name in sync.__all__:
        obj = getattr(sync, name)
        docs[name] = obj.__doc__
        for member_name, member in inspect.getmembers(obj):
            if not member_name.startswith("_") and inspect.isfunction(member):
                docs[f"{name}.{member_name}"] = member.__doc__
    return docs


def test_every_public_callable_has_a_docstring_with_an_example() -> None:
    assert missing_examples(_public_docs()) == []


def test_the_calls_mirror_the_async_client_minus_async() -> None:
    for name, method in inspect.getmembers(AsyncCustomerIO, inspect.iscoroutinefunction):
        if name.startswith("_") or name in ASYNC_ONLY:
            continue
        ours = getattr(sync.CustomerIO, name)
        assert not inspect.iscoroutinefunction(ours), name
        theirs = inspect.signature(method).parameters
        mine = inspect.signature(ours).parameters
        assert list(mine)[: len(theirs)] == list(theirs), name
    constructor = inspect.signature(sync.CustomerIO.__init__).parameters
    assert list(constructor) == list(inspect.signature(AsyncCustomerIO.__init__).parameters)


def test_public_names_carry_the_public_module() -> None:
    assert sync.CustomerIO.__module__ == "customerio_async.sync"
    assert sync.SyncReceipt.__module__ == "customerio_async.sync"
