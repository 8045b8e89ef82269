"""The package as a whole: its public surface and documentation."""

from __future__ import annotations

import inspect
import typing

from customerio_async import webhooks


def test_public_surface_is_documented() -> None:
    for name in webhooks.__all__:
        obj = getattr(webhooks, name)
        alias = typing.get_origin(obj) is not None  # Callable[...] is a "class" on 3.10
        if (inspect.isclass(obj) and not alias) or inspect.isfunction(obj):
            assert obj.__doc__, name
            for member_name, member in inspect.getmembers(obj):
                if not member_name.startswith("_") and inspect.isfunction(member):
                    assert member.__doc__, f"{name}.{member_name}"
