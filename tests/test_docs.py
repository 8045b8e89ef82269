"""The reference documentation stays true to the code.

* ``docs/gen_config.py`` (run by ``mkdocs build`` as a hook) covers every constructor
  argument and configuration field, each with its default and a description;
* every public name is rendered on a reference page, and every page is in the nav;
* the files shown in ``docs/guides/testing.md`` work as a user's test suite: they are copied
  into a fresh directory and run by an inner pytest, with the pytest-asyncio settings the
  page tells users to set.

The strict build itself (``mkdocs build --strict``) runs in ``nox -s docs`` and ``nox -s
tests``; it needs the ``docs`` extra, which this suite does not.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

import customerio_async
import customerio_async.pytest_plugin
import customerio_async.testing
import customerio_async.webhooks

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _gen_config() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config", DOCS / "gen_config.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _gen_config()


# ----------------------------------------------------------------------- configuration page


def test_every_constructor_argument_is_in_the_configuration_tables() -> None:
    page = GEN.render()
    for cls in GEN.CLIENTS:
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        for name in params:
            assert f"`{cls.__name__}({name}=…)`" in page, f"{cls.__name__}({name}=) missing"


def test_every_config_field_is_in_the_tables_with_its_default() -> None:
    page = GEN.render()
    for cls in GEN.CONFIGS:
        for field in dataclasses.fields(cls):
            row = next(
                line
                for line in page.splitlines()
                if line.startswith(f"| `{cls.__name__}({field.name}=…)` |")
            )
            assert GEN.show_default(field.default) in row


def test_every_row_has_a_description_and_every_config_a_taker() -> None:
    # An argument added without a line in its docstring's Args:/Attributes: shows up here.
    for cls in GEN.CLIENTS:
        for name, _type, _default, doc in GEN.constructor_rows(cls):
            assert doc, f"{cls.__name__}({name}=) has no description in its docstring"
    for cls in GEN.CONFIGS:
        for name, _type, _default, doc in GEN.field_rows(cls):
            assert doc, f"{cls.__name__}.{name} has no description in its docstring"
        assert GEN.takers(cls), f"no constructor takes {cls.__name__}"


def test_every_config_dataclass_of_config_module_has_a_table() -> None:
    from customerio_async import _config

    configs = {
        getattr(_config, name)
        for name in _config.__all__
        if isinstance(getattr(_config, name), type)
        and dataclasses.is_dataclass(getattr(_config, name))
    }
    assert configs == set(GEN.CONFIGS)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (customerio_async.BatchConfig(), "`BatchConfig()`"),
        (customerio_async.RateLimit(burst=1), "`RateLimit(requests_per_second=100.0, burst=1)`"),
        (customerio_async.Region.EU, "`'eu'`"),
        (None, "`None`"),
        (True, "`True`"),
        (32 * 1024 * 1024, "`33_554_432`"),
        (0.5, "`0.5`"),
        (len, "`len`"),
        (inspect.Parameter.empty, "required"),
    ],
)
def test_defaults_are_shown_as_a_reader_writes_them(value: object, shown: str) -> None:
    assert GEN.show_default(value) == shown


def test_markers_are_filled_and_other_pages_left_alone() -> None:
    page = f"a\n{GEN.MARKER}\nb\n{GEN.TREE_MARKER}\n"
    filled = GEN.on_page_markdown(page)
    assert "| `BatchConfig(linger=…)` |" in filled
    assert "├── ValidationError (+ ValueError)" in filled
    assert GEN.on_page_markdown("plain") == "plain"


def test_exception_tree_names_every_public_exception() -> None:
    tree = GEN.exception_tree()
    for name in customerio_async.__all__:
        obj = getattr(customerio_async, name)
        if isinstance(obj, type) and issubclass(obj, customerio_async.CustomerIOError):
            assert re.search(rf"\b{name}\b", tree), name


# ----------------------------------------------------------------------- reference pages


def _directives() -> set[str]:
    found: set[str] = set()
    for page in (DOCS / "reference").glob("*.md"):
        found |= set(re.findall(r"^::: ([\w.]+)$", page.read_text(), flags=re.MULTILINE))
    return found


def test_every_public_name_is_rendered_on_a_reference_page() -> None:
    directives = _directives()
    # The public packages are rendered whole (their __all__ decides the members).
    for package in ("webhooks", "testing", "pytest_plugin", "sync", "fleet"):
        assert f"customerio_async.{package}" in directives
    missing = [
        name
        for name in customerio_async.__all__
        if name not in ("__version__", "webhooks") and f"customerio_async.{name}" not in directives
    ]
    assert not missing, (
        f"add `::: customerio_async.NAME` for {missing} to a page under docs/reference/ "
        "(a new area: a new page there plus one line in mkdocs.yml's nav)"
    )


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = [p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")]
    assert pages
    for page in pages:
        assert re.search(rf"^\s+- (?:[^:\n]+: )?{re.escape(page)}$", nav, re.MULTILINE), page


# ----------------------------------------------------------------------- the testing guide

_BLOCK = re.compile(r'^```\w+ title="([^"]+)"\n(.*?)^```$', re.MULTILINE | re.DOTALL)


def _guide_files() -> dict[str, str]:
    """``title -> content`` of every titled code block of the testing guide."""
    text = (DOCS / "guides" / "testing.md").read_text()
    return dict(_BLOCK.findall(text))


GUIDE = _guide_files()

# Each run: which titled blocks make up the user's project, and what pytest should report.
RUNS = {
    "auto mode": (["pyproject.toml", "tests/test_signup.py", "tests/test_faults.py"], 3),
    "direct mode": (["pyproject.toml", "tests/conftest.py", "tests/test_direct.py"], 1),
    "strict mode": (["pytest.ini", "tests/test_strict.py"], 1),
    "session loop": (["pyproject.toml (one loop per session)", "tests/test_signup.py"], 1),
}


def test_the_guide_shows_every_file_the_runs_use() -> None:
    used = {title for files, _ in RUNS.values() for title in files}
    assert used == set(GUIDE)


@pytest.mark.parametrize("run", sorted(RUNS))
def test_the_testing_guide_works_as_a_users_suite(pytester: pytest.Pytester, run: str) -> None:
    files, passed = RUNS[run]
    for title in files:
        path = pytester.path / title.split(" ")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(GUIDE[title])
    # -W error: the settings shown must not leave pytest-asyncio warning about its config.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=passed)


def test_mismatched_loop_scopes_fail_as_the_guide_says(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nasyncio_mode = "auto"\n'
        'asyncio_default_fixture_loop_scope = "function"\n'
        'asyncio_default_test_loop_scope = "session"\n'
    )
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_signup.py").write_text(GUIDE["tests/test_signup.py"])
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ClientStateError: this client was opened in another event loop*"]
    )
