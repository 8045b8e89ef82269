"""Task runner: ``nox -s tests`` (this interpreter), ``tests_matrix`` (3.10–3.13), ``lint``,
``typecheck``, ``demo`` and ``bench``.

``tests`` runs on the interpreter nox itself runs on, so it passes on a machine with a single
Python even under ``CI=true`` (where nox treats a missing interpreter as an error);
``tests_matrix`` is for machines that have more.
"""

from __future__ import annotations

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
    """Lint, type-check, then run the test suite with coverage on this interpreter."""
    session.install("-e", ".[test,lint,typecheck]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    _tests(session)


@nox.session(python=PYTHONS)
def tests_matrix(session: nox.Session) -> None:
    """The test suite on every supported Python that is installed."""
    _tests(session)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (with the ASYNC rules) and the formatter check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package and the tests."""
    session.install("-e", ".[test,typecheck]")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """Run the SDK against the embedded fake server (README's first command)."""
    session.install(".")
    session.run("python", "-m", "customerio_async", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (opt-in; not part of CI)."""
    session.install("-e", ".[test]", "orjson")
    session.run("python", "benchmarks/run.py", *session.posargs)
