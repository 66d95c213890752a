"""The Activity Log: the operations a subscription's callers started, with their outcome, read by the official
azure-mgmt-monitor client and over REST (filters, paging, isolation, bad filters)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.arm import make_tenant
from tests.support.sdk import SdkLine, sdk_credential, sdk_kwargs
from tests.support.server import AltoServer

RG_API = "api-version=2021-04-01"
LOG = "/providers/Microsoft.Insights/eventtypes/management/values"
API = "2015-04-01"


def _window() -> str:
    start = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"eventTimestamp ge '{start}' and eventTimestamp le '{end}'"


def _delete_group(http: httpx.Client, sub: str) -> str:
    """A group created and deleted (a long-running operation): returns its name once the deletion ended."""
    name = f"act-{uuid.uuid4().hex[:8]}"
    path = f"/subscriptions/{sub}/resourceGroups/{name}?{RG_API}"
    assert http.put(path, json={"location": "local"}).status_code == 201
    assert http.delete(path).status_code == 202
    for _ in range(100):
        if http.get(path).status_code == 404:
            return name
        time.sleep(0.1)
    raise AssertionError(f"group {name} was not deleted")


def _events(http: httpx.Client, sub: str, flt: str, **query: str) -> list[dict[str, Any]]:
    r = http.get(f"/subscriptions/{sub}{LOG}", params={"api-version": API, "$filter": flt, **query})
    assert r.status_code == 200, r.text
    body = r.json()
    events = list(body["value"])
    while body.get("nextLink"):
        r = http.get(body["nextLink"])
        assert r.status_code == 200, r.text
        body = r.json()
        events += body["value"]
    return events


def test_the_official_monitor_client_reads_who_did_what(server: AltoServer, sdk: SdkLine) -> None:
    from azure.mgmt.monitor import MonitorManagementClient

    tenant = server.credentials["tenant"]
    with server.client() as http:
        group = _delete_group(http, tenant["subscriptionId"])
    client = MonitorManagementClient(sdk_credential(server), tenant["subscriptionId"], **sdk_kwargs(server))
    flt = f"{_window()} and resourceGroupName eq '{group}'"
    events = list(client.activity_logs.list(filter=flt))
    assert len(events) == 1, [e.as_dict() for e in events]
    event = events[0]
    assert event.operation_name.value == "Microsoft.Resources/subscriptions/resourceGroups/delete"
    assert event.status.value == "Succeeded" and event.level == "Informational"
    assert event.caller == tenant["clientId"]
    assert event.resource_group_name == group
    assert event.resource_id.lower() == f"/subscriptions/{tenant['subscriptionId']}/resourcegroups/{group}".lower()
    assert event.event_timestamp >= event.submission_timestamp
    assert event.category.value == "Administrative"
    # $select keeps only the fields asked for (the SDK leaves the others None).
    picked = list(client.activity_logs.list(filter=flt, select="operationName,status"))
    assert picked[0].operation_name.value == event.operation_name.value and picked[0].caller is None


def test_filters_paging_and_isolation(server: AltoServer) -> None:
    tenant = server.credentials["tenant"]
    sub = tenant["subscriptionId"]
    other = make_tenant(server)
    with server.client() as http, server.client(creds=other) as b:
        mine = [_delete_group(http, sub) for _ in range(3)]
        theirs = _delete_group(b, other["subscriptionId"])

        events = _events(http, sub, f"{_window()} and caller eq '{tenant['clientId']}'", **{"$top": "1"})
        groups = [e["resourceGroupName"] for e in events]
        assert set(mine) <= set(groups) and theirs not in groups
        stamps = [e["eventTimestamp"] for e in events]
        assert stamps == sorted(stamps, reverse=True), "newest first"
        assert len({e["eventDataId"] for e in events}) == len(events), "no event twice across pages"

        # B's log holds B's operation only; A cannot read B's log at all.
        assert [e["resourceGroupName"] for e in _events(b, other["subscriptionId"], _window())] == [theirs]
        query = {"api-version": API, "$filter": _window()}
        r = http.get(f"/subscriptions/{other['subscriptionId']}{LOG}", params=query)
        assert r.status_code in (403, 404), r.text

        # One operation, found by its correlation id; a caller who did nothing has no events.
        one = events[0]
        found = _events(http, sub, f"{_window()} and correlationId eq '{one['correlationId']}'")
        assert [e["eventDataId"] for e in found] == [one["eventDataId"]]
        assert _events(http, sub, f"{_window()} and caller eq 'nobody'") == []


@pytest.mark.parametrize(
    "flt",
    [
        None,
        "caller eq 'x'",
        "eventTimestamp ge 'yesterday'",
        "eventTimestamp ge '2026-01-01T00:00:00Z' or caller eq 'x'",
        "eventTimestamp ge '2020-01-01T00:00:00Z'",
        "eventTimestamp ge '2099-01-02T00:00:00Z' and eventTimestamp le '2099-01-01T00:00:00Z'",
        "eventTimestamp ge '2099-01-01T00:00:00Z' and levels eq 'Error'",
    ],
)
def test_a_filter_it_cannot_honour_is_refused(server: AltoServer, flt: str | None) -> None:
    sub = server.credentials["tenant"]["subscriptionId"]
    query = {"api-version": API, **({"$filter": flt} if flt is not None else {})}
    with server.client() as http:
        r = http.get(f"/subscriptions/{sub}{LOG}", params=query)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "BadRequest" and error["target"] == "$filter" and error["message"]
