"""The OData ``$filter`` subset ARM accepts on listings: ``tagName eq 'k'`` [``and tagValue eq 'v'``],
``resourceType eq 'ns/type'`` and ``name eq 'n'``. Anything else is a clear 400, not a silent no-op."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from altostratus.arm.errors import ArmError

CLAUSE = re.compile(r"\s*(\w+)\s+eq\s+'((?:[^']|'')*)'\s*", re.IGNORECASE)


DISPLAY = {
    "tagname": "tagName",
    "tagvalue": "tagValue",
    "resourcetype": "resourceType",
    "name": "name",
    "resourcegroup": "resourceGroup",
}


def parse_filter(text: str | None, allowed: tuple[str, ...]) -> dict[str, str] | None:
    if not text or not text.strip():
        return None
    out: dict[str, str] = {}
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = CLAUSE.fullmatch(part)
        if not m or m.group(1).lower() not in allowed:
            raise ArmError(
                400,
                "InvalidFilterInQueryString",
                f"The $filter '{text}' is not supported. Supported: "
                + ", ".join(f"{DISPLAY.get(a, a)} eq '...'" for a in allowed)
                + " (joined with 'and').",
            )
        out[m.group(1).lower()] = m.group(2).replace("''", "'")
    if "tagvalue" in out and "tagname" not in out:
        raise ArmError(400, "InvalidFilterInQueryString", "A tagValue filter needs a tagName filter.")
    return out


def tag_matcher(clauses: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    name = clauses["tagname"].lower()
    value = clauses.get("tagvalue")

    def match(tags: dict[str, Any]) -> bool:
        return any(k.lower() == name and (value is None or v == value) for k, v in (tags or {}).items())

    return match


def parse_tag_filter(text: str | None) -> Callable[[dict[str, Any]], bool] | None:
    clauses = parse_filter(text, ("tagname", "tagvalue"))
    return tag_matcher(clauses) if clauses else None
