"""Generate "Configuration at a glance" from the code, so the page never drifts.

Every constructor argument of the clients and every field of the configuration dataclasses,
with its type, its default and the object it lives in, read from the signatures, the
dataclass fields (defaults live in ``customerio_async/_config.py``) and the Google-style
``Args:``/``Attributes:`` sections of their docstrings.

Two ways to run it:

* ``mkdocs build`` loads this file as a hook (``hooks:`` in ``mkdocs.yml``): the marker
  ``<!-- configuration-tables -->`` in ``guides/configuration.md`` is replaced by the tables;
* ``python docs/gen_config.py`` prints the tables (``tests/test_docs.py`` checks them).
"""

from __future__ import annotations

import dataclasses
import enum
import html
import inspect
import re
from collections.abc import Iterator
from typing import Any

import customerio_async as cio
from customerio_async.webhooks import WebhookReceiver

MARKER = "<!-- configuration-tables -->"
TREE_MARKER = "<!-- exception-tree -->"

# The objects whose constructor arguments are configuration, in reading order.
CLIENTS: tuple[type, ...] = (
    cio.CustomerIO,
    cio.RegionalCustomerIO,
    cio.APIClient,
    cio.Metrics,
    WebhookReceiver,
)
# The frozen configuration dataclasses (``customerio_async/_config.py``).
CONFIGS: tuple[type, ...] = (
    cio.BatchConfig,
    cio.RetryPolicy,
    cio.RateLimit,
    cio.Timeouts,
    cio.PoolLimits,
    cio.DedupConfig,
    cio.AppRateLimits,
)

_SECTION = re.compile(r"^(\s*)(Args|Attributes):\s*$")
_ROLE = re.compile(r":\w+:`~?([^`]+)`")
_ENTRY = re.compile(r"^(\*{0,2}\w+)(?: \([^)]*\))?:\s*(.*)$")


def described(obj: Any, section: str) -> dict[str, str]:
    """``name -> description`` from the ``Args:``/``Attributes:`` section of a docstring."""
    lines = (inspect.getdoc(obj) or "").splitlines()
    entries: dict[str, str] = {}
    inside, current, indent = False, "", 0
    for line in lines:
        header = _SECTION.match(line)
        if header:
            inside = header.group(2) == section
            indent = len(header.group(1)) + 4
            continue
        if not inside:
            continue
        if line.strip() and len(line) - len(line.lstrip()) < indent:
            inside = False  # the next section or paragraph
            continue
        entry = _ENTRY.match(line[indent:]) if line[indent : indent + 1] != " " else None
        if entry:
            current = entry.group(1).lstrip("*")
            entries[current] = entry.group(2)
        elif current and line.strip():
            entries[current] += " " + line.strip()
    return entries


def show_default(value: Any) -> str:
    """A default as a reader would write it: ``BatchConfig()`` for the default instance."""
    if value is inspect.Parameter.empty:
        return "required"
    if isinstance(value, enum.Enum):
        return f"`{value.value!r}`"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        try:
            if value == cls():
                return f"`{cls.__name__}()`"
        except TypeError:  # pragma: no cover - every config class has defaults
            pass
        return f"`{value!r}`"
    if isinstance(value, bool) or value is None:
        return f"`{value}`"
    if isinstance(value, int) and abs(value) >= 10_000:
        return f"`{value:_}`"
    if callable(value):
        return f"`{getattr(value, '__qualname__', repr(value))}`"
    return f"`{value!r}`"


def _code(text: str) -> str:
    # HTML, not backticks: a "|" inside a Markdown table cell cannot be escaped in a code span.
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _type(annotation: Any) -> str:
    return _code(
        annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    )


def _cell(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    return text.replace("|", "\\|").replace("\n", " ")


def constructor_rows(cls: type) -> Iterator[tuple[str, str, str, str]]:
    """``(name, type, default, description)`` for each constructor argument of ``cls``."""
    docs = described(cls, "Args")
    for param in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        yield (
            param.name,
            _type(param.annotation),
            show_default(param.default),
            docs.get(param.name, ""),
        )


def field_rows(cls: type) -> Iterator[tuple[str, str, str, str]]:
    """``(name, type, default, description)`` for each field of a config dataclass."""
    docs = described(cls, "Attributes")
    for field in dataclasses.fields(cls):
        yield field.name, _type(field.type), show_default(field.default), docs.get(field.name, "")


def takers(config: type) -> list[str]:
    """Where a config class is passed: ``CustomerIO(batch=...)``, ``AppRateLimits(general=...)``."""
    found = []
    pattern = re.compile(rf"\b{config.__name__}\b")
    for owner in CLIENTS:
        for name, annotation, _default, _doc in constructor_rows(owner):
            if pattern.search(annotation):
                found.append(f"`{owner.__name__}({name}=…)`")
    for owner in CONFIGS:
        for name, annotation, _default, _doc in field_rows(owner):
            if owner is not config and pattern.search(annotation):
                found.append(f"`{owner.__name__}({name}=…)`")
    return found


def _table(owner: str, rows: Iterator[tuple[str, str, str, str]]) -> list[str]:
    out = ["| Lives in | Type | Default | What it does |", "|---|---|---|---|"]
    for name, annotation, default, doc in rows:
        out.append(f"| `{owner}({name}=…)` | {annotation} | {default} | {_cell(doc)} |")
    return out


def render() -> str:
    """The Markdown that replaces :data:`MARKER`."""
    out: list[str] = [
        "## Which argument takes which object",
        "",
        "| Object | Passed as |",
        "|---|---|",
    ]
    out += [f"| `{cls.__name__}` | {', '.join(takers(cls))} |" for cls in CONFIGS]
    out += ["", "## Constructors", ""]
    for cls in CLIENTS:
        module = "customerio_async.webhooks" if cls is WebhookReceiver else "customerio_async"
        out += [f"### `{cls.__name__}`", "", f"`from {module} import {cls.__name__}`", ""]
        out += _table(cls.__name__, constructor_rows(cls))
        out.append("")
    out += ["## Configuration objects", ""]
    out += [
        "Frozen, keyword-only dataclasses: build one, share it, derive variants with "
        "`dataclasses.replace()`. Their defaults live in `customerio_async/_config.py`.",
        "",
    ]
    for cls in CONFIGS:
        passed = ", ".join(takers(cls)) or "—"
        out += [f"### `{cls.__name__}`", "", f"Passed as {passed}.", ""]
        out += _table(cls.__name__, field_rows(cls))
        out.append("")
    return "\n".join(out)


def exception_tree() -> str:
    """The public exception hierarchy under ``CustomerIOError``, drawn from the classes."""
    public = {name for name in cio.__all__ if isinstance(getattr(cio, name), type)}
    lines: list[str] = []

    def walk(cls: type, prefix: str, last: bool, depth: int) -> None:
        builtins = [b.__name__ for b in cls.__bases__ if b.__module__ == "builtins"]
        extra = f" (+ {', '.join(builtins)})" if builtins and depth else ""
        paragraph = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        summary = paragraph.split(". ")[0].split("; ")[0].rstrip(".").replace("``", "")
        branch = "" if depth == 0 else ("└── " if last else "├── ")
        lines.append(f"{prefix}{branch}{cls.__name__}{extra}: {summary}")
        children = [c for c in cls.__subclasses__() if c.__name__ in public]
        inner = prefix + ("" if depth == 0 else ("    " if last else "│   "))
        for i, child in enumerate(children):
            walk(child, inner, i == len(children) - 1, depth + 1)

    walk(cio.CustomerIOError, "", True, 0)
    return "\n".join(["```text", *lines, "```"])


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """mkdocs hook: fill the configuration page's and the errors page's markers."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, render())
    if TREE_MARKER in markdown:
        markdown = markdown.replace(TREE_MARKER, exception_tree())
    return markdown


if __name__ == "__main__":
    print(render())  # noqa: T201 - the script's output
