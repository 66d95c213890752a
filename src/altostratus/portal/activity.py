"""The tenant's Activity page: the operations this person started (or, on request, anyone in their
subscriptions), newest first, with their outcome and the error of a failed one.

Read from the Activity Log API (insights/activity_log.py) of each of the person's subscriptions with their own
token, so what they see is exactly what ``az monitor activity-log list`` would show them. Pages go back in time by
the oldest event shown (``before``), one query per subscription, so a page costs the same however long the log is.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from altostratus.portal import tenant_data as data
from altostratus.portal.arm import ApiError, Arm
from altostratus.portal.sessions import PortalSession
from altostratus.portal.web import Portal, page

ACTIVITY_API = "2015-04-01"
PAGE_SIZE = 50
DAYS = (1, 7, 30, 90)
STATUSES = ("Started", "Succeeded", "Failed", "Canceled")


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(raw: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _quote(value: str) -> str:
    return value.replace("'", "''")


def event_row(event: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of one event: the operation, its resource (linked when the portal has a page for it),
    the outcome and how long it took, and a failed operation's error message."""
    props = event.get("properties") or {}
    message = ""
    if props.get("statusMessage"):
        try:
            error = json.loads(props["statusMessage"]).get("error", {})
        except (ValueError, AttributeError):
            error = {"message": props["statusMessage"]}
        # A deployment's own message only says that a resource failed; the resource's error says why.
        details = [d.get("message", "") for d in error.get("details") or [] if isinstance(d, dict)]
        message = " ".join(m for m in details[:3] if m) or error.get("message", "")
    resource = event.get("resourceId", "")
    rtype = (event.get("resourceType") or {}).get("value", "").lower()
    link = None
    if rtype in ("microsoft.compute/virtualmachinescalesets", "microsoft.resources/deployments"):
        link = "/portal" + resource
    elif rtype == "microsoft.resources/subscriptions/resourcegroups" and event.get("status", {}).get("value") != (
        "Succeeded"
    ):
        link = "/portal" + resource  # a group whose deletion did not succeed is still there
    start, end = _parse(event.get("submissionTimestamp")), _parse(event.get("eventTimestamp"))
    ended = (event.get("status") or {}).get("value") != "Started"
    seconds = (end - start).total_seconds() if start and end and ended else None
    return {
        "time": event.get("eventTimestamp", ""),
        "operation": (event.get("operationName") or {}).get("localizedValue", ""),
        "operationName": (event.get("operationName") or {}).get("value", ""),
        "resource": resource.rsplit("/", 1)[-1],
        "resourceId": resource,
        "group": event.get("resourceGroupName", ""),
        "link": link,
        "status": (event.get("status") or {}).get("value", ""),
        "caller": event.get("caller", ""),
        "duration": "" if seconds is None else f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms",
        "message": message,
        "correlationId": event.get("correlationId", ""),
    }


async def events(
    arm: Arm, token: str, subs: list[str], since: datetime, before: datetime, caller: str | None, status: str | None
) -> list[dict[str, Any]]:
    flt = f"eventTimestamp ge '{_stamp(since)}' and eventTimestamp le '{_stamp(before)}'"
    if caller:
        flt += f" and caller eq '{_quote(caller)}'"
    if status:
        flt += f" and status eq '{status}'"
    path = "/subscriptions/{}/providers/Microsoft.Insights/eventtypes/management/values"
    answers = await asyncio.gather(
        *(
            arm.call(token, "GET", path.format(s), ACTIVITY_API, **{"$filter": flt, "$top": str(PAGE_SIZE + 1)})
            for s in subs
        )
    )
    merged = [e for answer in answers for e in answer.get("value", [])]
    merged.sort(key=lambda e: (e.get("eventTimestamp", ""), e.get("eventDataId", "")), reverse=True)
    return merged


def routes(portal: Portal) -> list[tuple[str, str, Any]]:
    arm = portal.arm

    async def activity(request: Request, session: PortalSession, form: dict[str, list[str]]) -> Response:
        q = request.query_params
        days = int(q["days"]) if q.get("days", "").isdigit() and int(q["days"]) in DAYS else 7
        everyone = q.get("who") == "all"
        status = q.get("status") if q.get("status") in STATUSES else None
        now = datetime.now(UTC)
        since = now - timedelta(days=days)
        before = _parse(q.get("before")) or now + timedelta(minutes=1)
        before = before if before.tzinfo else before.replace(tzinfo=UTC)
        subs = [s["subscriptionId"] for s in await data.subscriptions(arm, session.token)]
        error = None
        try:
            found = await events(arm, session.token, subs, since, before, None if everyone else session.user, status)
        except ApiError as err:
            if err.status in (401,):
                raise
            found, error = [], err.message
        shown = found[:PAGE_SIZE]
        older = None
        if len(found) > PAGE_SIZE:
            # The next page ends just before the oldest event shown (the log's times are to the microsecond).
            last = _parse(shown[-1]["eventTimestamp"])
            older = _stamp(last - timedelta(microseconds=1)) if last else None
        return portal.render(
            request,
            "tenant_activity.html",
            session,
            rows=[event_row(e) for e in shown],
            days=days,
            all_days=DAYS,
            everyone=everyone,
            outcome=status,
            statuses=STATUSES,
            older=older,
            first_page="before" not in q,
            error=error,
        )

    return [("/portal/activity", "GET", page(portal, activity))]
