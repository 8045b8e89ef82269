"""Static checks of a package's layout, read from its source with :mod:`ast` (nothing is
imported): module sizes, function sizes, what each module imports, and docstring examples.

The App API and webhooks packages hold themselves to these in their ``test_package.py``.
"""

from __future__ import annotations

import ast
import io
import itertools
import tokenize
from collections.abc import Iterator
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "customerio_async"


def modules(package: str) -> list[Path]:
    """The ``.py`` files of ``customerio_async.<package>``."""
    return sorted((PACKAGE_ROOT / package).glob("*.py"))


def _code_lines(source: str) -> set[int]:
    """Line numbers that hold code: not blank, not only a comment, not a docstring."""
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
            tokenize.ENDMARKER,
        ):
            lines.update(range(token.start[0], token.end[0] + 1))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            lines.difference_update(range(body[0].lineno, (body[0].end_lineno or 0) + 1))
    return lines


def _string_literal(node: ast.stmt) -> str | None:
    """The text of a bare string statement (a docstring), else ``None``."""
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
        value = node.value.value
        return value if isinstance(value, str) else None
    return None


def _is_docstring(node: ast.stmt) -> bool:
    return _string_literal(node) is not None


def function_sizes(path: Path) -> Iterator[tuple[str, int]]:
    """``(qualified name, lines of logic)`` of every function in ``path``; nested functions
    count toward their parent as well as on their own."""
    source = path.read_text()
    code = _code_lines(source)

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                span = range(child.lineno, (child.end_lineno or child.lineno) + 1)
                yield name, len(code.intersection(span))
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")

    yield from walk(ast.parse(source), "")


def imports(path: Path, package: str) -> set[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved against
    ``customerio_async.<package>``), at any depth, ``TYPE_CHECKING`` blocks included."""
    here = f"customerio_async.{package}".split(".")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            if node.module is None:  # `from . import x`: x is a module of the package
                found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def attribute_docstrings(path: Path) -> dict[str, str]:
    """Module-level ``NAME = ...`` (or annotated) assignments followed by a string literal:
    the docstrings Sphinx shows for constants and type aliases."""
    body = ast.parse(path.read_text()).body
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        target = (
            node.targets[0]
            if isinstance(node, ast.Assign) and len(node.targets) == 1
            else node.target
            if isinstance(node, ast.AnnAssign)
            else None
        )
        text = _string_literal(following)
        if isinstance(target, ast.Name) and text is not None:
            docs[target.id] = text
    return docs


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 50  # lines of logic: docstrings, comments and blank lines left out


def oversized(path: Path) -> list[str]:
    """What in ``path`` is over the size limits: the module itself, or its functions."""
    lines = len(path.read_text().splitlines())
    found = [f"{path.name}: {lines} lines"] if lines > MAX_MODULE_LINES else []
    found += [f"{name}: {n} lines" for name, n in function_sizes(path) if n > MAX_FUNCTION_LINES]
    return found


def outside_layers(path: Path, package: str, allowed: tuple[str, ...]) -> set[str]:
    """The SDK modules ``path`` imports that are neither in its package nor ``allowed``."""
    own = f"customerio_async.{package}"
    return {
        module
        for module in imports(path, package)
        if module.startswith("customerio_async") and not module.startswith((own, *allowed))
    }


def missing_examples(docs: dict[str, str | None]) -> list[str]:
    """The names whose docstring has no ``Example::`` block."""
    return [name for name, doc in docs.items() if "Example::" not in (doc or "")]
