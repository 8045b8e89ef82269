"""The skip-or-fail rule for tests that validate against a vendor OpenAPI document.

README's test command must pass in a fresh clone with no ``shared/`` beside it (the spec
tests skip there), while CI, which always has ``shared/``, must never skip them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _openapi import PIPELINES_SPEC_PATH, SPEC_PATH, ci_forbids_skipping, require_document


@pytest.mark.parametrize(
    ("value", "forbids"),
    [("true", True), ("TRUE", True), (" true ", True), ("", False), ("false", False), ("1", False)],
)
def test_only_ci_true_forbids_skipping(
    monkeypatch: pytest.MonkeyPatch, value: str, forbids: bool
) -> None:
    monkeypatch.setenv("CI", value)
    assert ci_forbids_skipping() is forbids


def test_an_absent_document_skips_with_a_one_line_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CI", raising=False)
    absent = tmp_path / "shared" / "openapi" / "absent.json"
    with pytest.raises(pytest.skip.Exception) as skipped:
        require_document(absent)
    assert str(skipped.value) == f"vendor OpenAPI document absent: {absent}"
    assert "\n" not in str(skipped.value)


def test_an_absent_document_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: spec tests must run"):
        require_document(tmp_path / "absent.json")


def test_a_present_document_lets_the_test_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CI", "true")
    present = tmp_path / "doc.json"
    present.write_text("{}")
    require_document(present)  # neither skips nor fails


def test_documents_are_looked_up_beside_the_clone() -> None:
    repo = Path(__file__).resolve().parents[2]
    for path in (SPEC_PATH, PIPELINES_SPEC_PATH):
        assert path.parent == repo.parent / "shared" / "openapi"
