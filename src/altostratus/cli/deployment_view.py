"""How `alto deployment group` shows deployments: errors with their per-resource details and template positions,
outputs, the history and operations tables, and the live view of a deployment's operations while it runs.

The live view is a rich table redrawn in place on a terminal; elsewhere (CI logs, tests) it prints one line per
operation state change instead, so a log still tells what happened in which order.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from altostratus.cli.output import Col, Columns

STATE_STYLE = {"Succeeded": "green", "Failed": "red", "Canceled": "yellow", "Running": "cyan", "Accepted": "cyan"}
TERMINAL = ("Succeeded", "Failed", "Canceled")


def human_duration(iso: str | None) -> str:
    """``PT1M2.345S`` -> ``1m 2.3s`` (empty for anything else)."""
    match = re.fullmatch(r"P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?", iso or "")
    if not iso or match is None:
        return ""
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    hours += days * 24
    parts = [f"{int(hours)}h"] if hours else []
    if minutes or hours:
        parts.append(f"{int(minutes)}m")
    parts.append(f"{seconds:.1f}s" if parts or seconds >= 10 else f"{seconds:.2f}s")
    return " ".join(parts)


def short_time(iso: str | None) -> str:
    """``2024-05-01T10:12:13.123456Z`` -> ``2024-05-01T10:12:13Z``."""
    return f"{iso[:19]}Z" if iso and len(iso) >= 19 else (iso or "")


def styled(state: str | None) -> Text:
    return Text(state or "", style=STATE_STYLE.get(state or "", ""))


# ---------------------------------------------------------------------------------------------------- errors


def error_lines(error: dict[str, Any], indent: int = 0) -> list[str]:
    """An ARM error and its details as indented lines: code, message, target and template position."""
    pad = "  " * indent
    head = f"{pad}{'- ' if indent else ''}{error.get('code') or 'Error'}: {error.get('message') or ''}".rstrip()
    lines = [head]
    if error.get("target"):
        lines.append(f"{pad}  target: {error['target']}")
    for info in error.get("additionalInfo") or []:
        data = info.get("info") if isinstance(info, dict) else None
        if not isinstance(data, dict):
            continue
        if data.get("lineNumber"):  # ARM sends line 0 when the problem has no position (a supplied parameter)
            where = f"line {data['lineNumber']}, column {data.get('linePosition', 0)}"
            lines.append(f"{pad}  at {where}" + (f" ({data['path']})" if data.get("path") else ""))
        elif data.get("path"):
            lines.append(f"{pad}  at {data['path']}")
    for detail in error.get("details") or []:
        if isinstance(detail, dict):
            lines.extend(error_lines(detail, indent + 1))
    return lines


def print_error(console: Console, error: dict[str, Any], title: str | None = None) -> None:
    if title:
        console.print(f"[red]{title}[/red]", soft_wrap=True)
    for line in error_lines(error):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def failed_operations(operations: list[dict[str, Any]]) -> list[str]:
    """One line per failed deployment operation: the resource, the HTTP status and the provider's error code."""
    lines = []
    for op in operations:
        props = op.get("properties") or {}
        if props.get("provisioningState") != "Failed":
            continue
        code = operation_row(op)["error"] or "see the error above"
        lines.append(f"{resource_label(props)} ({props.get('statusCode') or 'no status'}): {code}")
    return lines


# ---------------------------------------------------------------------------------------------------- tables


def resource_label(props: dict[str, Any]) -> str:
    target = props.get("targetResource") or {}
    if target:
        return f"{target.get('resourceType', '')}/{target.get('resourceName', '')}"
    return props.get("provisioningOperation") or ""


def deployment_row(item: dict[str, Any]) -> dict[str, Any]:
    props = item.get("properties") or {}
    return {
        "name": item.get("name"),
        "state": props.get("provisioningState"),
        "timestamp": short_time(props.get("timestamp")),
        "duration": human_duration(props.get("duration")),
        "mode": props.get("mode"),
    }


DEPLOYMENT_COLUMNS: Columns = [
    Col("Name", "name", ident=True),
    ("State", "state"),
    ("Timestamp", "timestamp"),
    ("Duration", "duration"),
    ("Mode", "mode"),
]


def operation_row(op: dict[str, Any]) -> dict[str, Any]:
    props = op.get("properties") or {}
    message = props.get("statusMessage") or {}
    err = message.get("error") if isinstance(message, dict) else None
    return {
        "resource": resource_label(props),
        "operation": props.get("provisioningOperation"),
        "state": props.get("provisioningState"),
        "statusCode": props.get("statusCode"),
        "duration": human_duration(props.get("duration")),
        "error": err.get("code") if isinstance(err, dict) else None,
    }


OPERATION_COLUMNS: Columns = [
    Col("Resource", "resource", ident=True),
    ("Operation", "operation"),
    ("State", "state"),
    ("Status code", "statusCode"),
    ("Duration", "duration"),
    ("Error", "error"),
]


def outputs_table(outputs: dict[str, Any]) -> Table:
    table = Table("Output", "Type")
    table.add_column("Value", overflow="fold")
    for name, entry in outputs.items():
        value = entry.get("value") if isinstance(entry, dict) else entry
        kind = entry.get("type", "") if isinstance(entry, dict) else ""
        table.add_row(name, str(kind), value if isinstance(value, str) else json.dumps(value))
    return table


# ------------------------------------------------------------------------------------------------- live view


class OperationsView:
    """What a running deployment is doing, from its status and operations as last polled."""

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self.started = time.monotonic()
        self.status = "Accepted"
        self.operations: list[dict[str, Any]] = []
        self.seen: dict[str, str] = {}
        self.live: Live | None = None

    def __enter__(self) -> OperationsView:
        if self.console.is_terminal:
            self.live = Live(self.render(), console=self.console, transient=True, refresh_per_second=4)
            self.live.__enter__()
        else:
            self.console.print(f"Deploying '{self.name}'...", highlight=False)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, status: str, operations: list[dict[str, Any]]) -> None:
        self.status, self.operations = status, operations
        if self.live is not None:
            self.live.update(self.render())
            return
        for op in operations:  # a log: one line per state change
            row = operation_row(op)
            key = op.get("operationId") or row["resource"]
            if self.seen.get(key) != row["state"]:
                self.seen[key] = row["state"]
                self.console.print(f"  {row['state'] or '':<10} {row['operation'] or '':<8} {row['resource']}")

    def render(self) -> Group:
        done = sum(1 for op in self.operations if (op.get("properties") or {}).get("provisioningState") in TERMINAL)
        elapsed = int(time.monotonic() - self.started)
        head = Text.assemble(
            f"Deployment '{self.name}': ",
            styled(self.status),
            f"  {done}/{len(self.operations)} operations done  {elapsed // 60}:{elapsed % 60:02d}",
        )
        table = Table("Resource", "Operation", "State", "Status code", "Duration", box=None, pad_edge=False)
        for op in self.operations:
            row = operation_row(op)
            table.add_row(row["resource"], row["operation"], styled(row["state"]), row["statusCode"], row["duration"])
        return Group(head, table) if self.operations else Group(head)
