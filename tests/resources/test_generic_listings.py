"""Group and subscription resource listings and tag filters include the network, storage, compute and insights
types, and deleting the group deletes them."""

from __future__ import annotations

from tests.support.names import unique
from tests.support.network import NET, RG_API, STORAGE, Group, vnet
from tests.support.sdk import SdkLine
from tests.support.server import AltoServer


def test_listings_tags_and_group_deletion_include_them(server: AltoServer, group: Group) -> None:
    group.ok(group.put("Microsoft.Network/virtualNetworks", "vnet", vnet(("a", "10.0.0.0/24"))), 201)
    tagged = {"location": "local", "tags": {"tier": "web"}, "properties": {}}
    pip = group.ok(group.put("Microsoft.Network/publicIPAddresses", "pip", tagged), 201)
    sa = unique("lst").replace("-", "")
    group.ok(group.put("Microsoft.Storage/storageAccounts", sa, {"location": "local", "sku": {"name": "Standard_LRS"}},
                       STORAGE))  # fmt: skip

    r = group.http.patch(f"{group.id('Microsoft.Network/publicIPAddresses', 'pip')}?{NET}", json={"tags": {"a": "b"}})
    patched = group.ok(r)
    assert patched["tags"] == {"a": "b"} and patched["etag"] != pip["etag"]
    assert patched["properties"]["ipAddress"] == pip["properties"]["ipAddress"]
    listed = group.ok(group.http.get(f"{group.path}/resources?{RG_API}"))["value"]
    assert {(x["type"], x["name"]) for x in listed} == {
        ("Microsoft.Network/virtualNetworks", "vnet"), ("Microsoft.Network/publicIPAddresses", "pip"),
        ("Microsoft.Storage/storageAccounts", sa),
    }  # fmt: skip
    everywhere = group.http.get(f"/subscriptions/{group.sub}/providers/Microsoft.Storage/storageAccounts?{STORAGE}")
    assert sa in {x["name"] for x in group.ok(everywhere)["value"]}

    rc = SdkLine("2020-09-01-hybrid").resource(server)
    rc.resource_groups.begin_delete(group.name).result()
    assert not rc.resource_groups.check_existence(group.name)
    again = Group(server)
    again.ok(again.put("Microsoft.Storage/storageAccounts", sa, {"location": "local", "sku": {"name": "Standard_LRS"}},
                       STORAGE))  # fmt: skip
