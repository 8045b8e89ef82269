"""Task runner: ``nox -s tests`` (this interpreter), ``tests_matrix`` (3.10–3.13), ``lint``,
``typecheck``, ``docs``, ``demo``, ``bench`` and ``soak``.

``tests`` runs on the interpreter nox itself runs on, so it passes on a machine with a single
Python even under ``CI=true`` (where nox treats a missing interpreter as an error);
``tests_matrix`` is for machines that have more.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def _tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "--cov=customerio_async",
        "--cov-report=term-missing:skip-covered",
        *session.posargs,
    )


@nox.session
def tests(session: nox.Session) -> None:
    """Lint, type-check, run the test suite with coverage on this interpreter, then build
    the documentation strictly (CI runs exactly this session)."""
    session.install("-e", ".[test,lint,typecheck,docs]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    _layers(session)
    _tests(session)
    _docs(session)


def _layers(session: nox.Session) -> None:
    # The import layers and contracts of pyproject.toml (docs/architecture.md), and
    # declared dependencies == used dependencies.
    session.run("lint-imports")
    session.run("deptry", ".")


@nox.session(python=PYTHONS)
def tests_matrix(session: nox.Session) -> None:
    """The test suite on every supported Python that is installed."""
    _tests(session)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (with the ASYNC rules) and the formatter check."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    _layers(session)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    session.install("-e", ".[test,typecheck]")
    session.run("mypy")


def _docs(session: nox.Session) -> None:
    # --strict: a warning (a broken link, an unresolved reference, a docstring griffe cannot
    # read) fails the build. Offline: mkdocs.yml fetches no fonts or inventories.
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--quiet",
        "--site-dir",
        str(session.create_tmp() + "/site"),
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the reference documentation (mkdocs, strict) into ``site/``; ``nox -s docs --
    serve`` serves it on http://127.0.0.1:8000 instead."""
    session.install("-e", ".[docs]")
    if session.posargs == ["serve"]:
        session.run("mkdocs", "serve", env={"NO_MKDOCS_2_WARNING": "1"})
        return
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session
def demo(session: nox.Session) -> None:
    """Run the SDK against the embedded fake server (README's first command)."""
    session.install(".")
    session.run("python", "-m", "customerio_async", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (opt-in; not part of CI). The peers (official ``customerio``,
    ``async-customerio``) come from the ``bench`` extra: benchmark-only, never runtime."""
    session.install("-e", ".[test,bench]")
    session.run("python", "benchmarks/run.py", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """Bounded soak (opt-in): steady load with 1 % faults for $CIO_SOAK_SECONDS (300 s default);
    checks flat RSS, tasks and file descriptors and the accounting at every sample. The
    normal suite runs a 20 s version of the same scenario."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "tests/reliability/test_soak.py",
        "-m",
        "slow",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        env={"CIO_SOAK_SECONDS": os.environ.get("CIO_SOAK_SECONDS", "300")},
    )
