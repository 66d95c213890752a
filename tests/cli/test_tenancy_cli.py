"""`alto admin quota|plan|offer|subscription`, `alto offer list`, `alto subscription create|add-plan` and
`alto role assignment`: the operator's path to a tenant with a subscription, an add-on and a colleague."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.test_cli import alto
from tests.support.names import unique
from tests.support.server import AltoServer
from tests.support.tenancy import TenancyAdmin


def ok(out: object) -> str:
    assert out.returncode == 0, out.stderr  # type: ignore[attr-defined]
    return str(out.stdout)  # type: ignore[attr-defined]


def test_operator_sells_an_offer_tenant_subscribes_and_delegates(server: AltoServer, tmp_path: Path) -> None:
    tag = unique("c")
    ok(alto(server, "admin", "quota", "set", "-s", "compute", "-n", f"{tag}-q", "--limit", "virtualMachineCount=4"))
    assert f"{tag}-q" in ok(alto(server, "admin", "quota", "list", "-s", "compute", "-o", "json"))
    out = alto(server, "admin", "quota", "set", "-s", "compute", "-n", "x", "--limit", "virtualMachineCount=lots")
    assert out.returncode == 2 and "name=number" in out.stderr
    ok(alto(server, "admin", "plan", "create", "-n", f"{tag}-base", "--quota", f"compute={tag}-q",
            "--quota", "network=Default Quota"))  # fmt: skip
    ok(alto(server, "admin", "plan", "create", "-n", f"{tag}-more", "--quota", f"compute={tag}-q"))
    plans = json.loads(ok(alto(server, "admin", "plan", "list", "-o", "json")))
    assert {f"{tag}-base", f"{tag}-more"} <= {p["name"] for p in plans}
    ok(alto(server, "admin", "offer", "create", "-n", tag, "--base-plan", f"{tag}-base"))
    assert tag not in ok(alto(server, "offer", "list", "-o", "json")), "private until made public"
    ok(alto(server, "admin", "offer", "set-state", "-n", tag, "--state", "Public"))
    assert tag in [o["name"] for o in json.loads(ok(alto(server, "offer", "list", "-o", "json")))]
    ok(alto(server, "admin", "offer", "link", "-n", tag, "--plan", f"{tag}-more", "--type", "Addon"))

    # The default tenant gets a second subscription from the offer, then adds the add-on plan to it.
    created = json.loads(ok(alto(server, "subscription", "create", "--offer", tag, "-n", "team")))
    sub = created["subscriptionId"]
    assert created["offerId"].endswith(f"/offers/{tag}") and created["state"] == "Enabled"
    ok(alto(server, "subscription", "add-plan", "--plan", f"{tag}-more", "--subscription", sub))
    out = alto(server, "subscription", "add-plan", "--plan", f"{tag}-more", "--subscription", sub)
    assert out.returncode == 1 and "OperationNotAllowed" in out.stderr, "once (maxAcquisitionCount 1)"

    # A colleague gets Reader on the default subscription.
    colleague = TenancyAdmin(server).principal("colleague")
    ok(alto(server, "role", "assignment", "create", "--assignee", colleague["clientId"], "--role", "Reader"))
    listed = json.loads(ok(alto(server, "role", "assignment", "list", "-o", "json")))
    mine = [a for a in listed if a["properties"]["principalId"] == colleague["clientId"]]
    assert len(mine) == 1
    wide = {**os.environ, "COLUMNS": "250"}
    table = ok(alto(server, "role", "assignment", "list", "--assignee", colleague["clientId"], env=wide))
    assert "Reader" in table and colleague["clientId"] in table
    out = alto(server, "role", "assignment", "create", "--assignee", colleague["clientId"], "--role", "Boss")
    assert out.returncode == 2 and "Owner, Contributor or Reader" in out.stderr
    ok(alto(server, "role", "assignment", "delete", "-n", mine[0]["name"]))

    ok(alto(server, "admin", "subscription", "set-state", "--subscription", sub, "--state", "Disabled"))
    listed_subs = json.loads(ok(alto(server, "admin", "subscription", "list", "-o", "json")))
    assert next(s for s in listed_subs if s["name"] == sub)["properties"]["state"] == "Disabled"

    # The session's shared server goes back to one subscription for the default tenant (later tests list them).
    op_sub = server.credentials["operator"]["subscriptionId"]
    with server.client("operator") as http:
        r = http.delete(
            f"/subscriptions/{op_sub}/providers/Microsoft.Subscriptions.Admin/subscriptions/{sub}?api-version=2015-11-01"
        )
    assert r.status_code in (200, 204), r.text
