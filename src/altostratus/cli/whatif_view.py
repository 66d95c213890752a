"""`alto deployment group what-if` output, in the shape `az deployment group what-if` prints.

A legend of the symbols used, the resources grouped by scope with one line each (``+`` create, ``-`` delete, ``~``
modify, ``!`` deploy, ``=`` no change, ``*`` ignore, ``x`` no effect, ``?`` unsupported), the full payload of a
resource to be created or deleted, the property deltas of a modified one, and a summary line. People compare this
output with az's, so symbols and wording follow it.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rich.console import Console
from rich.text import Text

# change type -> (symbol, style, summary wording); the order is the legend's and the summary's
CHANGES: dict[str, tuple[str, str, str]] = {
    "Create": ("+", "green", "to create"),
    "Delete": ("-", "red", "to delete"),
    "Modify": ("~", "magenta", "to modify"),
    "Deploy": ("!", "blue", "to deploy"),
    "NoChange": ("=", "", "no change"),
    "NoEffect": ("x", "dim", "no effect"),
    "Ignore": ("*", "dim", "to ignore"),
    "Unsupported": ("?", "yellow", "unsupported"),
}
PROPERTY_SYMBOLS = {"Create": "+", "Delete": "-", "Modify": "~", "Array": "~", "NoEffect": "x"}


def split_id(resource_id: str) -> tuple[str, str]:
    """``/subscriptions/s/resourceGroups/g/providers/A.B/c/n`` -> (the group's id, ``A.B/c/n``)."""
    scope, sep, rest = resource_id.partition("/providers/")
    return (scope, rest) if sep else ("", resource_id)


def value_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def leaves(value: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """An object's members as (dotted path, value), keys sorted; nested objects are followed, arrays are not."""
    out: list[tuple[str, Any]] = []
    for key in sorted(value, key=str.casefold):
        path = f"{prefix}.{key}" if prefix else key
        item = value[key]
        out.extend(leaves(item, path) if isinstance(item, dict) and item else [(path, item)])
    return out


def payload_lines(payload: dict[str, Any], indent: int) -> list[str]:
    """A whole resource as az prints it: dotted paths aligned, each array a ``path: [ ... ]`` block by index."""
    pad = " " * indent
    entries = leaves(payload)
    width = max((len(path) for path, v in entries if not (isinstance(v, list) and v)), default=0) + 1
    lines: list[str] = []
    for path, value in entries:
        if not (isinstance(value, list) and value):
            lines.append(f"{pad}{(path + ':').ljust(width)} {value_text(value)}")
            continue
        lines.append(f"{pad}{path}: [")
        for index, item in enumerate(value):
            if isinstance(item, dict) and item:
                lines.extend([f"{pad}  {index}:", ""])
                lines.extend(payload_lines(item, indent + 4))
                lines.append("")
            elif isinstance(item, list) and item:
                lines.extend(payload_lines({str(index): item}, indent + 2))
            else:
                lines.append(f"{pad}  {index}: {value_text(item)}")
        lines.append(f"{pad}]")
    return lines


def delta_lines(delta: dict[str, Any], indent: int) -> list[Text]:
    """One property change (and its children, for arrays and nested objects)."""
    kind = str(delta.get("propertyChangeType") or "Modify")
    symbol = PROPERTY_SYMBOLS.get(kind, "?")
    style = CHANGES.get("Modify" if kind == "Array" else kind, ("", "", ""))[1]
    pad = " " * indent
    path = str(delta.get("path") or "")
    children = [c for c in delta.get("children") or [] if isinstance(c, dict)]
    if kind == "Array" or children:
        opening, closing = ("[", "]") if kind == "Array" else ("", "")
        lines = [Text(f"{pad}{symbol} {path}: {opening}".rstrip(), style=style)]
        for child in children:
            lines.extend(delta_lines(child, indent + 2))
        if closing:
            lines.append(Text(f"{pad}  {closing}"))
        return lines
    if kind == "Create":
        body = value_text(delta.get("after"))
    elif kind == "Modify":
        body = f"{value_text(delta.get('before'))} => {value_text(delta.get('after'))}"
    else:
        body = value_text(delta.get("before"))
    return [Text(f"{pad}{symbol} {path}: {body}", style=style)]


def change_lines(change: dict[str, Any]) -> list[Text]:
    kind = str(change.get("changeType") or "Unsupported")
    symbol, style, _ = CHANGES.get(kind, CHANGES["Unsupported"])
    payload = change.get("after") if kind != "Delete" else change.get("before")
    payload = payload or change.get("before") or change.get("after")
    _, relative = split_id(str(change.get("resourceId") or ""))
    version = payload.get("apiVersion") if isinstance(payload, dict) else None
    head = Text(f"  {symbol} {relative}", style=style)
    if version:
        head.append(f" [{version}]", style="dim")
    lines = [head]
    if change.get("unsupportedReason"):
        lines.append(Text(f"      {change['unsupportedReason']}", style="dim"))
    if kind in ("Create", "Delete") and isinstance(payload, dict):
        lines.append(Text(""))
        lines.extend(Text(line, style=style) for line in payload_lines(payload, 6))
        lines.append(Text(""))
    elif kind == "Modify":
        for delta in change.get("delta") or []:
            if isinstance(delta, dict):
                lines.extend(delta_lines(delta, 4))
        lines.append(Text(""))
    return lines


def summary(changes: list[dict[str, Any]]) -> str:
    counts = Counter(str(c.get("changeType") or "Unsupported") for c in changes)
    parts = [f"{counts[kind]} {wording}" for kind, (_, _, wording) in CHANGES.items() if counts.get(kind)]
    return "Resource changes: " + ", ".join(parts) + "." if parts else "Resource changes: none."


def render(console: Console, changes: list[dict[str, Any]]) -> None:
    """Print the changes as az does: legend, per-scope resource lines, summary."""
    if not changes:
        console.print("No resource changes to show.")
        return
    used = {str(c.get("changeType") or "Unsupported") for c in changes}
    console.print("Resource and property changes are indicated with these symbols:")
    for kind, (symbol, style, _) in CHANGES.items():
        if kind in used:
            console.print(Text(f"  {symbol} {kind}", style=style))
    console.print()
    console.print("The deployment will update the following scope:")
    by_scope: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_scope.setdefault(split_id(str(change.get("resourceId") or ""))[0], []).append(change)
    for scope in sorted(by_scope, key=str.casefold):
        lines = [Text(""), Text(f"Scope: {scope}", style="bold"), Text("")]
        for change in sorted(by_scope[scope], key=lambda c: str(c.get("resourceId") or "").casefold()):
            lines.extend(change_lines(change))
        while lines and not lines[-1].plain:
            lines.pop()
        for line in lines:
            console.print(line, highlight=False, soft_wrap=True)
    console.print()
    console.print(summary(changes))
