"""The Activity Log's ``$filter``: a time window and a few equality conditions joined by ``and``.

Azure's grammar is small (``eventTimestamp ge '…' and eventTimestamp le '…' and caller eq '…'``) and a query
that strays from it is refused with a message naming the clause, rather than half-understood: an operator who
filters on a field this cloud does not know must not get an unfiltered answer that looks filtered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from altostratus.arm.errors import ArmError

# Azure keeps 90 days of activity; a window that starts earlier is refused as Azure refuses it.
RETENTION = timedelta(days=90)
SKEW = timedelta(minutes=5)  # a client that computed "90 days ago" on its own clock is not refused for it
EQUALITY_FIELDS = {
    "caller": "caller",
    "resourcegroupname": "resourceGroupName",
    "resourceuri": "resourceUri",
    "resourceid": "resourceUri",
    "correlationid": "correlationId",
    "resourceprovider": "resourceProvider",
    "status": "status",
}
_CLAUSE = re.compile(r"\s*(\w+)\s+(eq|ge|le)\s+'((?:[^']|'')*)'\s*", re.IGNORECASE)
_AND = re.compile(r"and\b", re.IGNORECASE)


@dataclass
class ActivityFilter:
    start: datetime
    end: datetime
    equals: dict[str, str] = field(default_factory=dict)  # canonical field name -> value


def _bad(message: str) -> ArmError:
    return ArmError(400, "BadRequest", message, target="$filter")


def _timestamp(raw: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise _bad(f"The value '{raw}' of eventTimestamp is not an ISO 8601 date and time.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _clauses(text: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    pos = 0
    while True:
        m = _CLAUSE.match(text, pos)
        if m is None:
            raise _bad(
                f"The $filter clause '{text[pos:].strip()[:80]}' is not understood: use "
                "\"eventTimestamp ge '<start>' and eventTimestamp le '<end>'\" optionally followed by "
                "\"and <field> eq '<value>'\" (caller, resourceGroupName, resourceUri, correlationId, "
                "resourceProvider, status)."
            )
        found.append((m.group(1), m.group(2).lower(), m.group(3).replace("''", "'")))
        pos = m.end()
        if pos >= len(text):
            return found
        joint = _AND.match(text, pos)
        if joint is None:
            raise _bad(f"Clauses of $filter are joined by 'and'; found '{text[pos:].strip()[:40]}'.")
        pos = joint.end()


def parse_filter(text: str | None, now: datetime) -> ActivityFilter:
    if not text or not text.strip():
        raise _bad("The $filter query parameter is required and must give a start time: eventTimestamp ge '<start>'.")
    start: datetime | None = None
    end: datetime | None = None
    equals: dict[str, str] = {}
    for name, op, value in _clauses(text):
        key = name.lower()
        if key == "eventtimestamp" and op == "ge":
            start = _timestamp(value)
        elif key == "eventtimestamp" and op == "le":
            end = _timestamp(value)
        elif key in EQUALITY_FIELDS and op == "eq":
            equals[EQUALITY_FIELDS[key]] = value
        else:
            raise _bad(f"The $filter clause '{name} {op}' is not supported.")
    if start is None:
        raise _bad("The $filter must give a start time: eventTimestamp ge '<start>'.")
    end = end or now
    if end < start:
        raise _bad("The end time of the $filter (eventTimestamp le) is before its start time (eventTimestamp ge).")
    if start < now - RETENTION - SKEW:
        raise _bad("The start time of the $filter must be within the last 90 days.")
    return ActivityFilter(start, end, equals)
