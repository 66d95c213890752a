"""How every listing command prints its result, shaped like `az`: ``-o table|json|jsonc|tsv|yaml|none`` and
``--query`` (JMESPath, the library `az` uses, applied to the API's objects before formatting).

Tables are for reading and copying: an identifier (a product name, a subscription id, a URN) is never cut or
ellipsized, because the user pastes it into the next command. When the terminal is too narrow, other columns
wrap, then the least important ones are dropped (a note on stderr names them); sizes are shown in IEC units.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

if TYPE_CHECKING:  # rich, yaml and jmespath load when a command prints: `alto --help` never does
    from rich.console import Console


class _LazyConsole:
    """A rich ``Console`` made on first use. Why: importing rich.console (and what it pulls in) was a fifth of
    `alto --help`'s start-up, which prints through click, never through rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


console = cast("Console", _LazyConsole())
err_console = cast("Console", _LazyConsole(stderr=True))


class Output(StrEnum):
    table = "table"
    json = "json"
    jsonc = "jsonc"
    tsv = "tsv"
    yaml = "yaml"
    none = "none"


OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="Output format: table, json, jsonc (coloured), tsv, yaml or none.")
]
QueryOpt = Annotated[
    str | None, typer.Option("--query", help='JMESPath query applied to the result, e.g. "[].name" (as in az).')
]


@dataclass(frozen=True)
class Col:
    """A table column: ``key`` is a dotted path into the row; an ``ident`` column is never cut; a ``size`` column
    holds bytes, shown in IEC units; columns that are neither are dropped last-first when the table does not fit."""

    header: str
    key: str
    ident: bool = False
    size: bool = False


Columns = Sequence[Col | tuple[str, str]]
PADDING = 3  # rich's default: one space each side and one border per column
NARROWEST = 8  # a wrapping column narrower than this is unreadable: drop a column instead


def human_size(value: Any) -> str:
    """Bytes as a person reads them: 1023 B, 1.5 KiB, 2.0 GiB (the exact count stays in -o json)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "" if value is None else str(value)
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns on TiB


def _col(spec: Col | tuple[str, str]) -> Col:
    return spec if isinstance(spec, Col) else Col(*spec)


def _lookup(item: Any, key: str) -> Any:
    for part in key.split("."):
        item = item.get(part) if isinstance(item, dict) else None
    return item


def _cell(value: Any, col: Col) -> str:
    if col.size:
        return human_size(value)
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _fit(columns: list[Col], cells: list[list[str]], width: int) -> tuple[list[int], int]:
    """The columns to show and the width they need at the least: all of them if they fit, else without the
    non-identifier columns, dropped from the end."""
    shown = list(range(len(columns)))

    def need(index: int) -> int:
        longest = max([len(row[index]) for row in cells] + [len(columns[index].header)])
        return longest if columns[index].ident else min(longest, NARROWEST)

    def needed() -> int:
        return sum(need(i) + PADDING for i in shown) + 1

    while needed() > width:
        droppable = [i for i in shown if not columns[i].ident]
        if not droppable or len(shown) == 1:
            break
        shown.remove(droppable[-1])
    return shown, needed()


def table(rows: list[dict[str, Any]], columns: Columns, out: Console | None = None) -> None:
    """A table that never cuts an identifier (see the module docstring)."""
    out = out or console
    cols = [_col(c) for c in columns]
    cells = [[_cell(_lookup(row, c.key), c) for c in cols] for row in rows]
    shown, needed = _fit(cols, cells, out.width)
    dropped = [cols[i].header for i in range(len(cols)) if i not in shown]
    from rich.table import Table

    grid = Table()
    for i in shown:
        c = cols[i]
        if c.ident:
            longest = max([len(r[i]) for r in cells] + [len(c.header)])
            grid.add_column(c.header, no_wrap=True, min_width=longest)
        else:
            grid.add_column(c.header, overflow="fold")
    for row in cells:
        grid.add_row(*[row[i] for i in shown])
    # Identifiers alone wider than the terminal: let the terminal wrap the lines rather than cut an id.
    out.print(grid, width=max(out.width, needed), crop=False)
    if dropped:
        hint = "widen the terminal or use -o json"
        err_console.print(f"[dim]Not shown to fit {out.width} columns: {', '.join(dropped)} ({hint}).[/dim]")


def _generic_columns(data: list[Any]) -> list[Col]:
    """Columns for a --query result: the scalar keys of its objects, in order (az does the same)."""
    keys: dict[str, None] = {}
    for item in data:
        if isinstance(item, dict):
            keys.update({k: None for k, v in item.items() if not isinstance(v, dict | list)})
    return [Col(k, k, ident=True) for k in keys]


def _tsv_line(item: Any) -> str:
    def text(v: Any) -> str:
        return "" if v is None else (str(v).lower() if isinstance(v, bool) else str(v))

    if isinstance(item, dict):
        return "\t".join(text(v) for v in item.values() if not isinstance(v, dict | list))
    if isinstance(item, list):
        return "\t".join(text(v) for v in item if not isinstance(v, dict | list))
    return text(item)


def emit(
    data: list[dict[str, Any]] | dict[str, Any],
    output: Output,
    columns: Columns,
    query: str | None = None,
    row: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Print an API result. ``row`` reshapes an API object for the table; every other format (and --query)
    sees the API's objects as they are."""
    result: Any = data
    if query:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            result = jmespath.search(query, data)
        except JMESPathError as exc:
            err_console.print(f"Invalid --query '{query}': {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
    if output is Output.none:
        return
    if output is Output.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    elif output is Output.jsonc:
        console.print_json(json.dumps(result))
    elif output is Output.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(result, sort_keys=False, allow_unicode=True))
    elif output is Output.tsv:
        items = result if isinstance(result, list) else [result]
        sys.stdout.write("".join(_tsv_line(i) + "\n" for i in items))
    elif query:
        items = result if isinstance(result, list) else [result]
        if items and not any(isinstance(i, dict) for i in items):
            items = [{"Result": i} for i in items]
        table(items, _generic_columns(items))
    else:
        items = data if isinstance(data, list) else [data]
        table([row(i) for i in items] if row else items, columns)
