"""House rules of the whole package (docs/architecture.md), checked from the source: no
module over 500 lines, no function over 50 lines of logic. Import layers and cycles are
checked by import-linter (``lint-imports``, run by ``nox -s tests``)."""

from __future__ import annotations

import pytest
from _layout import PACKAGE_ROOT, oversized


@pytest.mark.parametrize(
    "path",
    sorted(PACKAGE_ROOT.rglob("*.py")),
    ids=lambda p: str(p.relative_to(PACKAGE_ROOT)),
)
def test_module_and_function_sizes(path: object) -> None:
    from pathlib import Path

    assert isinstance(path, Path)
    assert oversized(path) == []
