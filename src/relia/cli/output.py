"""Printing: rich tables for people, JSON or YAML for scripts; problems with their file and field."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

# Piped output (CI logs, files) is not wrapped at 80 columns: lines stay whole and greppable.
console = Console(width=None if sys.stdout.isatty() else 200)
error_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"


def emit(data: Any, fmt: Format, *, columns: Sequence[tuple[str, str]] | None = None, title: str | None = None) -> None:
    if fmt == Format.json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    if fmt == Format.yaml:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        return
    rows = data if isinstance(data, list) else [data]
    if columns is None:
        columns = [(key, key) for key in (rows[0].keys() if rows else [])]
    table = Table(title=title, show_lines=False)
    for header, _ in columns:
        table.add_column(header)
    for row in rows:
        table.add_row(*[_cell(_dig(row, key)) for _, key in columns])
    console.print(table)


def _dig(row: dict[str, Any], key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ", ".join(_cell(item) for item in value) or "-"
    return str(value)


def print_problem(problem: dict[str, Any], status: int | None = None) -> None:
    title = problem.get("title") or "Error"
    detail = problem.get("detail") or ""
    error_console.print(
        f"[bold red]error[/]: {title}" + (f" ({status})" if status else "") + (f": {detail}" if detail else ""),
        highlight=False,
        markup=True,
        soft_wrap=True,
    )
    for error in problem.get("errors") or []:
        error_console.print(f"  - {format_error(error)}", highlight=False, markup=False, soft_wrap=True)


def format_error(error: dict[str, Any]) -> str:
    if "file" in error:
        where = error["file"] + (f":{error['line']}" if error.get("line") else "")
        parts = [where]
        if error.get("document") is not None:
            parts.append(f"document {error['document']}" + (f" item {error['item']}" if error.get("item") else ""))
        if error.get("kind"):
            parts.append(f"{error['kind']}/{error['name']}" if error.get("name") else error["kind"])
        if error.get("path"):
            parts.append(f"field {error['path']}")
        return f"{', '.join(parts)}: {error.get('message', '')}"
    return f"{error.get('path', '')}: {error.get('message', '')}"
