"""The docs' reference pages stay true to the code: API names, tables, settings and the nav."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

import algajobs
from algajobs.settings import Settings
from algajobs.sql import QUERIES, migration_files

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

_COLUMN_OPTION = re.compile(r"\s+(?:NOT NULL|NULL|DEFAULT|PRIMARY KEY|REFERENCES|UNIQUE|CHECK|GENERATED)\b", re.I)
_CONSTRAINT_WORD = r"(?:CONSTRAINT|PRIMARY|UNIQUE|FOREIGN|CHECK|EXCLUDE)\b"
_ADD_COLUMN = re.compile(rf"ADD (?:COLUMN )?(?:IF NOT EXISTS )?(?!{_CONSTRAINT_WORD})(.*)$", re.I)
_CONSTRAINT = re.compile(r"^(?:PRIMARY KEY|UNIQUE|FOREIGN KEY|CONSTRAINT|CHECK|EXCLUDE)\b", re.I)


def _statements(sql: str) -> list[str]:
    """The statements of a SQL script, without comments and function bodies."""
    sql = re.sub(r"\$\$.*?\$\$", "''", sql, flags=re.S)
    sql = re.sub(r"--[^\n]*", "", sql)
    return [" ".join(s.split()) for s in sql.split(";") if s.strip()]


def _column(definition: str) -> tuple[str, str, bool]:
    """``(name, type, nullable)`` of a column definition such as ``queue text NOT NULL DEFAULT 'x'``."""
    name, _, rest = definition.strip().partition(" ")
    kind = _COLUMN_OPTION.split(rest)[0]
    nullable = not re.search(r"\bNOT NULL\b|\bPRIMARY KEY\b", rest, re.I)
    return name.strip('"'), kind.strip().lower(), nullable


def _split_columns(body: str) -> list[str]:
    """Split a CREATE TABLE body on the commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in body:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def migrated_columns() -> dict[str, dict[str, tuple[str, bool]]]:
    """Every table and column the migrations (and the migration ledger) leave, with type and nullability."""
    tables: dict[str, dict[str, tuple[str, bool]]] = {}
    scripts = [sql for _, _, sql in migration_files()] + [QUERIES["create_migration_ledger"]]
    for statement in (s for script in scripts for s in _statements(script)):
        if m := re.match(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+) \((.*)\)$", statement, re.I):
            columns = tables.setdefault(m.group(1), {})
            for definition in _split_columns(m.group(2)):
                if definition.strip() and not _CONSTRAINT.match(definition.strip()):
                    name, kind, nullable = _column(definition)
                    columns[name] = (kind, nullable)
        elif m := re.match(r"ALTER TABLE (?:ONLY )?(\w+) (.*)$", statement, re.I):
            for action in _split_columns(m.group(2)):
                _alter(tables[m.group(1)], action.strip())
        elif m := re.match(r"DROP TABLE (?:IF EXISTS )?(\w+)", statement, re.I):
            tables.pop(m.group(1), None)
    return tables


def _alter(table: dict[str, tuple[str, bool]], action: str) -> None:
    """Apply one ``ALTER TABLE`` action that changes columns to ``table``."""
    if a := _ADD_COLUMN.match(action):
        name, kind, nullable = _column(a.group(1))
        table[name] = (kind, nullable)
    elif a := re.match(r"DROP COLUMN (?:IF EXISTS )?(\w+)", action, re.I):
        del table[a.group(1)]
    elif a := re.match(r"RENAME COLUMN (\w+) TO (\w+)", action, re.I):
        table[a.group(2)] = table.pop(a.group(1))
    elif a := re.match(r"ALTER COLUMN (\w+) (?:SET DATA )?TYPE (\S+)", action, re.I):
        table[a.group(1)] = (a.group(2).lower(), table[a.group(1)][1])
    elif a := re.match(r"ALTER COLUMN (\w+) (SET|DROP) NOT NULL", action, re.I):
        table[a.group(1)] = (table[a.group(1)][0], a.group(2).upper() == "DROP")


def documented_columns() -> dict[str, dict[str, tuple[str, bool]]]:
    """The tables and columns docs/reference/tables.md lists, under its ``## `table` `` headings."""
    tables: dict[str, dict[str, tuple[str, bool]]] = {}
    current: dict[str, tuple[str, bool]] | None = None
    for line in (DOCS / "reference" / "tables.md").read_text(encoding="utf-8").splitlines():
        if heading := re.match(r"^## `(\w+)`$", line):
            current = tables.setdefault(heading.group(1), {})
        elif line.startswith("## "):
            current = None
        elif current is not None and (row := re.match(r"^\| `(\w+)` \| `([^`]+)` \| (yes|no) \|", line)):
            current[row.group(1)] = (row.group(2).lower(), row.group(3) == "yes")
    return tables


def test_the_migration_parser_reads_the_jobs_table() -> None:
    """The parser the table check relies on finds the fixed columns of ``jobs`` with their types."""
    jobs = migrated_columns()["jobs"]
    assert jobs["tenant"] == ("text", False)
    assert jobs["metadata"] == ("jsonb", False)
    assert jobs["user_id"] == ("text", True)
    assert jobs["status"] == ("job_status", False)


def test_every_migrated_column_is_documented_with_its_type() -> None:
    """docs/reference/tables.md lists exactly the tables and columns the migrations create, typed alike."""
    migrated, documented = migrated_columns(), documented_columns()
    for table, columns in migrated.items():
        assert table in documented, f"table {table!r} is missing from docs/reference/tables.md"
        for column, (kind, nullable) in columns.items():
            where = f"{table}.{column}"
            assert column in documented[table], f"{where} ({kind}) is missing from docs/reference/tables.md"
            assert documented[table][column] == (kind, nullable), f"{where}: the migrations say {(kind, nullable)}"
        stale = set(documented[table]) - set(columns)
        assert not stale, f"docs/reference/tables.md lists {table} columns no migration creates: {sorted(stale)}"
    assert not set(documented) - set(migrated), "docs/reference/tables.md lists tables no migration creates"


def test_every_status_is_explained() -> None:
    """Each job status has its row in the statuses table."""
    text = (DOCS / "reference" / "tables.md").read_text(encoding="utf-8")
    for status in algajobs.JobStatus:
        assert f"| `{status.value}` |" in text, f"status {status.value!r} is not explained in tables.md"


def test_every_public_name_has_an_api_entry() -> None:
    """Each name in ``algajobs.__all__`` is rendered by its own ``::: algajobs.NAME`` in the API page."""
    text = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    entries = set(re.findall(r"^::: algajobs\.(\w+)$", text, re.MULTILINE))
    missing = sorted(set(algajobs.__all__) - entries)
    assert not missing, f"add '::: algajobs.NAME' for these to docs/reference/api.md: {missing}"


def test_api_entries_name_public_things() -> None:
    """The API page renders no top-level name that ``algajobs`` does not export (submodules aside)."""
    text = (DOCS / "reference" / "api.md").read_text(encoding="utf-8")
    for name in re.findall(r"^::: algajobs\.(\w+)$", text, re.MULTILINE):
        assert name in algajobs.__all__ or importlib.util.find_spec(f"algajobs.{name}"), name


def _hook() -> ModuleType:
    """The MkDocs hook that generates the settings tables, loaded from its file as MkDocs loads it."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed")
    spec = importlib.util.spec_from_file_location("docs_hook_generated", DOCS / "hooks" / "generated.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_settings_table_names_every_variable() -> None:
    """The settings page, as built, has a row for every ``Settings`` field and each of its variables."""
    hook = _hook()
    page = hook.on_page_markdown((DOCS / "reference" / "settings.md").read_text(encoding="utf-8"))
    assert "<!-- generated:" not in page
    for name, field in Settings.model_fields.items():
        assert f"| `{name}` |" in page, name
        for variable in hook.environment_names(name, field):
            assert f"`{variable}`" in page, variable


def test_unknown_generated_block_fails_the_build() -> None:
    """A typo in a block name stops the build instead of leaving the marker in the page."""
    from mkdocs.exceptions import PluginError

    hook = _hook()
    with pytest.raises(PluginError, match="unknown generated block"):
        hook.on_page_markdown("<!-- generated: setings -->\n")


def test_development_variables_are_documented() -> None:
    """Every ``ALGAJOBS_*`` variable the package reads is listed on the settings page."""
    read = {m for path in (ROOT / "src").rglob("*.py") for m in re.findall(r"ALGAJOBS_[A-Z_]+", path.read_text())}
    text = (DOCS / "reference" / "settings.md").read_text(encoding="utf-8")
    assert read, "expected some ALGAJOBS_* variables in the package"
    missing = sorted(v for v in read if f"`{v}`" not in text)
    assert not missing, f"document these in docs/reference/settings.md: {missing}"


def test_every_page_is_in_the_nav() -> None:
    """Each Markdown page under docs/ is reachable from the nav in mkdocs.yml."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    in_nav = set(re.findall(r":\s*([\w/.-]+\.md)\s*$", config, re.MULTILINE))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert not pages - in_nav, f"add to the nav in mkdocs.yml: {sorted(pages - in_nav)}"
    assert not in_nav - pages, f"the nav names missing pages: {sorted(in_nav - pages)}"
