"""MkDocs hook: fill the reference pages' generated blocks from the code, so they cannot drift.

A page asks for a block with an HTML comment on a line of its own::

    <!-- generated: settings -->

and the hook replaces it with Markdown built from the named model when the
site is built. An unknown block name fails the build. The settings tables
read the pydantic-settings models (``algajobs.Settings`` and the dashboard's
options): field, environment variable, type, default, and the attribute
docstring written under each field.
"""

from __future__ import annotations

import ast
import enum
import inspect
import re
import textwrap
import types
import typing
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pydantic
from mkdocs.exceptions import PluginError
from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

_BLOCK = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Replace every ``<!-- generated: NAME -->`` line with the block NAME renders."""

    def render(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise PluginError(f"unknown generated block {name!r}; known: {', '.join(sorted(BLOCKS))}")
        return BLOCKS[name]()

    return _BLOCK.sub(render, markdown)


def settings_table() -> str:
    """The ``algajobs.Settings`` fields as a Markdown table."""
    from algajobs.settings import Settings

    return model_table(Settings)


def dashboard_table() -> str:
    """The dashboard's ``DashboardOptions`` fields as a Markdown table."""
    from algajobs.dashboard.options import DashboardOptions

    return model_table(DashboardOptions)


def model_table(model: type[pydantic.BaseModel]) -> str:
    """One row per field: environment variable (and aliases), keyword, type, default, meaning."""
    docs = field_docstrings(model)
    rows = ["| Environment variable | Keyword | Type | Default | Meaning |", "| --- | --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        variables = environment_names(name, field)
        variable = f"`{variables[0]}`" + "".join(f"<br>(or `{alias}`)" for alias in variables[1:])
        meaning = _markdown(docs.get(name) or _NO_DOCSTRING_YET.get(name, ""), variables) or "—"
        cells = [variable, f"`{name}`", _type(field.annotation), _default(field), meaning]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def environment_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variables that set a field: its aliases other than the keyword itself."""
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias or name]
    return [str(choice) for choice in choices if str(choice) != name] or [name.upper()]


def field_docstrings(model: type) -> dict[str, str]:
    """Each field's attribute docstring (the string literal right under it), read from the source."""
    source = textwrap.dedent(inspect.getsource(model))
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    found: dict[str, str] = {}
    for statement, following in zip(body.body, body.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.target.id] = inspect.cleandoc(following.value.value)
    return found


def _markdown(doc: str, variables: list[str]) -> str:
    """A docstring as one Markdown line: reST literals to backticks, the variable's own name dropped."""
    text = " ".join(doc.split())
    for variable in variables:  # the Variable column already names it
        text = (
            text.replace(f" (``{variable}``)", "").replace(f"(``{variable}``; ", "(").replace(f"(``{variable}``, ", "(")
        )
    text = re.sub(r":(?:class|func|meth|attr):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _type(annotation: Any) -> str:
    """A reader's name for a field's type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _type(args[0])
    if typing.get_origin(annotation) is tuple:
        return "comma-separated list"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(f"`{member.value}`" for member in annotation)
    names = {timedelta: "seconds", bool: "boolean", int: "integer", str: "text", pydantic.SecretStr: "secret text"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: FieldInfo) -> str:
    """The default as a reader would type it in the environment."""
    value = field.default
    if value is PydanticUndefined or value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{value.total_seconds():g}`"
    if isinstance(value, enum.Enum):
        return f"`{value.value}`"
    return f"`{value}`"


# Fields that have no docstring in the code yet; a docstring, once written, wins.
_NO_DOCSTRING_YET = {
    "temporal_address": "Temporal frontend, `host:port`.",
    "temporal_namespace": "Temporal namespace the workflows and schedules live in.",
    "temporal_task_queue": "Task queue the workers poll and the workflows start on.",
}

BLOCKS: dict[str, Callable[[], str]] = {
    "settings": settings_table,
    "dashboard-settings": dashboard_table,
}
