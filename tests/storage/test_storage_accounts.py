"""Storage accounts: endpoints, keys, and both API shapes (2015-06-15 and 2019-06-01)."""

from __future__ import annotations

from tests.support.names import unique
from tests.support.network import OLD_STORAGE, STORAGE, Group, error
from tests.support.server import AltoServer


def test_storage_accounts_endpoints_keys_and_both_api_shapes(server: AltoServer, group: Group) -> None:
    sa = "Microsoft.Storage/storageAccounts"
    name = unique("sa").replace("-", "")
    body = {"location": "local", "sku": {"name": "Standard_LRS"}, "kind": "Storage", "properties": {}}
    created = group.ok(group.put(sa, name, body, STORAGE))
    assert created["sku"] == {"name": "Standard_LRS", "tier": "Standard"} and created["kind"] == "Storage"
    props = created["properties"]
    assert props["primaryEndpoints"] == {
        s: f"https://{name}.{s}.local.127.0.0.1/" for s in ("blob", "queue", "table", "file")
    }
    assert (props["primaryLocation"], props["statusOfPrimary"], props["provisioningState"]) == (
        "local", "available", "Succeeded",
    )  # fmt: skip
    assert props["creationTime"].endswith("Z") and "accessKeys" not in created

    old = group.ok(group.get(sa, name, OLD_STORAGE))
    assert "sku" not in old and "kind" not in old and old["properties"]["accountType"] == "Standard_LRS"
    keys_url = f"{group.id(sa, name)}/listKeys"
    keys = group.ok(group.http.post(f"{keys_url}?{STORAGE}"))["keys"]
    assert [k["keyName"] for k in keys] == ["key1", "key2"] and keys[0]["value"] != keys[1]["value"]
    assert group.ok(group.http.post(f"{keys_url}?{OLD_STORAGE}")) == {
        "key1": keys[0]["value"],
        "key2": keys[1]["value"],
    }

    legacy = {"location": "local", "properties": {"accountType": "Premium_LRS"}}
    updated = group.ok(group.put(sa, name, legacy, OLD_STORAGE))
    assert updated["properties"]["accountType"] == "Premium_LRS"
    assert updated["properties"]["creationTime"] == props["creationTime"]
    assert group.ok(group.get(sa, name, STORAGE))["sku"] == {"name": "Premium_LRS", "tier": "Premium"}
    assert group.ok(group.http.post(f"{keys_url}?{STORAGE}"))["keys"] == keys, "keys are made once"

    for bad_name in ("Upper1", "ab", "has-dash", "x" * 25):
        error(group.put(sa, bad_name, body, STORAGE), 400, "AccountNameInvalid")
    error(group.put(sa, "fine1", {**body, "sku": {"name": "Fancy_LRS"}}, STORAGE), 400,
          "InvalidValuesForRequestParameters")  # fmt: skip
    error(group.put(sa, "fine1", {**body, "kind": "Tape"}, STORAGE), 400, "InvalidValuesForRequestParameters")
    error(group.put(sa, "fine1", {"location": "local"}, STORAGE), 400, "InvalidValuesForRequestParameters")
    error(Group(server).put(sa, name, body, STORAGE), 409, "StorageAccountAlreadyTaken")
    error(group.http.post(f"{group.id(sa, 'missing1')}/listKeys?{STORAGE}"), 404, "ResourceNotFound")


def test_check_name_availability(server: AltoServer, group: Group) -> None:
    """What `az storage account create` asks first: free, taken (names are global) or invalid."""
    name = unique("sa").replace("-", "")
    body = {"location": "local", "sku": {"name": "Standard_LRS"}, "kind": "Storage", "properties": {}}
    url = f"/subscriptions/{group.sub}/providers/Microsoft.Storage/checkNameAvailability?{STORAGE}"

    def check(candidate: str) -> dict[str, object]:
        payload = {"name": candidate, "type": "Microsoft.Storage/storageAccounts"}
        return group.ok(group.http.post(url, json=payload))

    assert check(name) == {"nameAvailable": True}
    group.ok(group.put("Microsoft.Storage/storageAccounts", name, body, STORAGE))
    taken = check(name)
    assert (taken["nameAvailable"], taken["reason"]) == (False, "AlreadyExists"), taken
    invalid = check("Not-Valid")
    assert (invalid["nameAvailable"], invalid["reason"]) == (False, "AccountNameInvalid"), invalid
