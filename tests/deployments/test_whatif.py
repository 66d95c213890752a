"""What-if through the official SDK (2020-09-01-hybrid and the current line): Create, Modify, NoChange, Delete and
Ignore, and proof that nothing changed. Resources are plain network security groups so the diff is easy to read."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tests.support.deployments import client, deployment, group_path, template
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer

# what-if is in Microsoft.Resources 2019-10-01 on: the 2020-09-01-hybrid profile and the current releases
pytestmark = pytest.mark.sdk_lines("2020-09-01-hybrid", "current")


def what_if(rc: Any, group: str, body: dict[str, Any], result_format: str | None = None) -> dict[str, Any]:
    if result_format:
        body = {**body, "properties": {**body["properties"], "whatIfSettings": {"resultFormat": result_format}}}
    result = rc.deployments.begin_what_if(group, "plan", body).result()
    assert result.status == "Succeeded", result.error
    return {c.resource_id.rsplit("/", 1)[1]: c for c in result.changes}


def test_what_if_reports_changes_without_making_them(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, group = client(cloud, sdk)
    tpl = template("nsg_rules.json")
    http = cloud.client()
    nsgs = f"{group_path(cloud, group)}/providers/Microsoft.Network/networkSecurityGroups"

    before = what_if(rc, group, deployment(tpl, names=["web", "db"]))
    assert {n: c.change_type for n, c in before.items()} == {"web": "Create", "db": "Create"}
    assert before["web"].after["properties"]["securityRules"][0]["properties"]["access"] == "Allow"
    assert before["web"].after["type"] == "Microsoft.Network/networkSecurityGroups"
    assert http.get(f"{nsgs}?api-version=2018-11-01").json()["value"] == []  # nothing was created

    done = rc.deployments.begin_create_or_update(group, "real", deployment(tpl, names=["web", "db"])).result()
    assert done.properties.provisioning_state == "Succeeded"
    etags = {n["name"]: n["etag"] for n in http.get(f"{nsgs}?api-version=2018-11-01").json()["value"]}

    again = what_if(rc, group, deployment(tpl, names=["web", "db"]))
    assert {n: c.change_type for n, c in again.items()} == {"web": "NoChange", "db": "NoChange"}
    cased = what_if(rc, group, deployment(tpl, names=["web", "db"], access="allow"))  # allowedValues ignore case
    assert {n: c.change_type for n, c in cased.items()} == {"web": "NoChange", "db": "NoChange"}

    changed = what_if(rc, group, deployment(tpl, names=["web", "api"], access="Deny"))
    assert {n: c.change_type for n, c in changed.items()} == {"web": "Modify", "api": "Create", "db": "Ignore"}
    (delta,) = changed["web"].delta
    assert (delta.path, delta.property_change_type) == ("properties.securityRules", "Array")
    (rule,) = delta.children
    assert (rule.path, rule.property_change_type) == ("0", "Modify")
    assert [(c.path, c.before, c.after) for c in rule.children] == [("properties.access", "Allow", "Deny")]
    assert changed["web"].before["properties"]["securityRules"][0]["properties"]["access"] == "Allow"
    assert changed["web"].after["properties"]["securityRules"][0]["properties"]["access"] == "Deny"

    complete = what_if(rc, group, deployment(tpl, "Complete", names=["web"]))
    assert {n: c.change_type for n, c in complete.items()} == {"web": "NoChange", "db": "Delete"}
    assert complete["db"].before["name"] == "db"

    ids_only = what_if(rc, group, deployment(tpl, "Complete", names=["web", "new"]), "ResourceIdOnly")
    assert {n: c.change_type for n, c in ids_only.items()} == {"web": "Deploy", "new": "Create", "db": "Delete"}
    assert ids_only["web"].before is None and ids_only["web"].delta is None

    # Nothing above changed anything: same resources, same etags, one deployment in the history.
    assert {n["name"]: n["etag"] for n in http.get(f"{nsgs}?api-version=2018-11-01").json()["value"]} == etags
    assert [d.name for d in rc.deployments.list_by_resource_group(group)] == ["real"]


def test_what_if_nested_deployments_are_expanded(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, group = client(cloud, sdk)
    inner = template("nsg_list.json")
    outer = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "resources": [
            {
                "type": "Microsoft.Resources/deployments",
                "apiVersion": "2019-10-01",
                "name": "inner",
                "properties": {
                    "mode": "Incremental",
                    "expressionEvaluationOptions": {"scope": "inner"},
                    "template": inner,
                    "parameters": {"names": {"value": ["nested1", "nested2"]}},
                },
            }
        ],
    }
    changes = what_if(rc, group, deployment(outer))
    assert {n: c.change_type for n, c in changes.items()} == {"nested1": "Create", "nested2": "Create"}


def test_what_if_template_errors_answer_at_once(cloud: AltoServer, sdk: SdkLine) -> None:
    rc, group = client(cloud, sdk)
    tpl = template("nsg_rules.json")
    with pytest.raises(HttpResponseError) as err:
        rc.deployments.begin_what_if(group, "plan", deployment(tpl, names=["a"], access="Maybe"))
    assert err.value.status_code == 400 and err.value.error.code == "InvalidTemplate"
    assert "allowed value(s)" in err.value.error.message
    raw = cloud.client().post(
        f"{group_path(cloud, group)}/providers/Microsoft.Resources/deployments/x/whatIf?api-version=2019-10-01",
        json={"properties": {"mode": "Incremental", "template": tpl, "whatIfSettings": {"resultFormat": "Bogus"}}},
    )
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "InvalidRequestContent"
