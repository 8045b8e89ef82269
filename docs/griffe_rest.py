"""A griffe extension: read the package's reST-flavoured docstrings as Markdown.

The docstrings are Google style (``Args:``, ``Raises:``, ``Attributes:``), but their prose
uses two reST habits that Markdown renders literally:

* ``Example::`` (or any paragraph ending in ``::``) followed by an indented block: a literal
  block. It becomes a fenced ``python`` block; ``Example::`` itself becomes griffe's
  ``Example:`` admonition, so every example renders in the same box.
* Sphinx roles (``:class:`~customerio_async.Receipt```, ``:meth:`flush```): they become code
  spans, linked (``<autoref optional>``) to the public object when one with that name is
  documented; an optional cross-reference that finds no target stays plain text, so a role
  naming a private helper never fails the strict build.

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import griffe

PUBLIC_PACKAGES = (
    "customerio_async",
    "customerio_async.testing",
    "customerio_async.webhooks",
    "customerio_async.pytest_plugin",
    "customerio_async.sync",
    "customerio_async.fleet",
)
_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj):`(~?)([^`]+)`")
_LINK = re.compile(r"`([^`<]+?)\s*<(https?://[^>]+)>`_")
_EXPLICIT = re.compile(r"(.+?)\s*<([^>]+)>$")
_SECTION = re.compile(r"^(Example|Examples)$")


def _public_names() -> dict[str, frozenset[str]]:
    """Each public package's ``__all__``, read from its source: importing the pytest plugin
    would need pytest, which the docs build does not install."""
    names = {}
    root = Path(__file__).resolve().parent.parent
    for package in PUBLIC_PACKAGES:
        path = root / package.replace(".", "/")
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                names[package] = frozenset(ast.literal_eval(node.value))
    return names


PUBLIC = _public_names()


def public_identifier(target: str, home: str) -> str | None:
    """The documented identifier a role's ``target`` most likely means, or ``None``.

    ``home`` is the public package of the docstring's object, searched first, so
    ``:class:`Region``` in the fake's docstrings means ``customerio_async.testing.Region``.
    """
    parts = target.lstrip(".").split(".")
    if parts and parts[0] == "customerio_async":
        parts = parts[1:]
    order = sorted(PUBLIC, key=lambda package: package != home)
    for start in range(len(parts)):
        for package in order:
            if parts[start] in PUBLIC[package]:
                return ".".join([package, *parts[start:]])
    return None


def _role(match: re.Match[str], home: str) -> str:
    short, target = match.group(1), match.group(2)
    title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
    explicit = _EXPLICIT.match(target)  # :meth:`Title <target>`
    if explicit is not None:
        title, target = explicit.group(1), explicit.group(2)
    identifier = public_identifier(target, home)
    if identifier is None:
        return f"`{title}`"
    return f'<autoref identifier="{identifier}" optional><code>{title}</code></autoref>'


def _inline(line: str, home: str) -> str:
    return _ROLE.sub(lambda m: _role(m, home), line)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _literal_block(lines: list[str], start: int, indent: int) -> tuple[int, int] | None:
    """The ``[first, end)`` lines of the indented block after line ``start - 1``."""
    first = start
    while first < len(lines) and not lines[first].strip():
        first += 1
    if first == len(lines) or _indent(lines[first]) <= indent:
        return None
    end = first
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    while not lines[end - 1].strip():
        end -= 1
    return first, end


def to_markdown(text: str, home: str = "customerio_async") -> str:
    """Rewrite one docstring's literal blocks, roles and links as Markdown."""
    lines = _LINK.sub(r"[\1](\2)", text).split("\n")  # a link may span two lines
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        indent = _indent(line)
        block = _literal_block(lines, i + 1, indent) if stripped.endswith("::") else None
        if block is None:
            out.append(_inline(line, home))
            i += 1
            continue
        first, end = block
        head = stripped[:-2].rstrip()
        if _SECTION.match(head.strip()):
            # Griffe's "Example:" admonition: its content follows at once, indented.
            out.append(head + ":")
            fence, dedent = " " * _indent(lines[first]), 0
        else:
            if head.strip():
                out += [_inline(head, home) + ":", ""]
            fence, dedent = " " * indent, _indent(lines[first]) - indent
        out.append(f"{fence}```python")
        out += [code[dedent:] if code.strip() else "" for code in lines[first:end]]
        out += [f"{fence}```", ""]
        i = end
    return "\n".join(out)


def _home(path: str) -> str:
    for package in sorted(PUBLIC_PACKAGES, key=len, reverse=True):
        if path == package or path.startswith(package + "."):
            return package
    return "customerio_async"


class RestToMarkdown(griffe.Extension):
    """Convert each docstring once, when griffe creates its object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite ``obj``'s docstring in place (see the module docstring)."""
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value, _home(obj.path))
