"""Virtual networks, their subnets, and network interfaces: address plans checked, private addresses handed out.

Nothing here carries traffic (see ``network.py``). What is real is the bookkeeping that templates and SDK callers
rely on: prefixes are valid CIDR, subnets lie inside their network and do not overlap, and a NIC's dynamic private
address is the lowest free one of its subnet (Azure keeps back the first four addresses and the last one of every
subnet) and stays the same when the NIC is updated. Error codes are the ones Azure's network provider answers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from typing import Any

from sqlalchemy import select

from altostratus.arm.context import obj
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.resources.fields import (
    boolean,
    choice,
    find_by_id,
    item_named,
    named_items,
    parse_id,
    reference_id,
    stamp_children,
)
from altostratus.resources.generic import Draft
from altostratus.store.models import Resource, ResourceGroup

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RESERVED_AT_START = 4  # network address, default gateway, two for Azure DNS


def parse_prefix(value: Any, rid: str, target: str) -> Network:
    """A CIDR prefix with no host bits set (``10.0.0.0/24``); Azure's two codes for the two ways to get it wrong."""
    if isinstance(value, str) and "/" in value:
        try:
            return ipaddress.ip_network(value, strict=True)
        except ValueError:
            try:
                fixed = ipaddress.ip_network(value, strict=False)
            except ValueError:
                pass
            else:
                raise ArmError(
                    400,
                    "InvalidCIDRNotation",
                    f"The address prefix {value} in resource {rid} has an invalid CIDR notation. For the given prefix "
                    f"length, the address prefix should be {fixed}.",
                    target,
                ) from None
    raise ArmError(
        400,
        "InvalidAddressPrefixFormat",
        f"Address prefix {value} of resource {rid} is not formatted correctly. It should follow CIDR notation, for "
        "example 10.0.0.0/24.",
        target,
    )


def subnet_prefix_values(props: dict[str, Any], target: str) -> list[Any]:
    values: list[Any] = []
    if props.get("addressPrefix") is not None:
        values.append(props["addressPrefix"])
    many = props.get("addressPrefixes")
    if many is not None:
        if not isinstance(many, list):
            raise invalid_parameter("'addressPrefixes' must be an array of CIDR prefixes.", target)
        values.extend(many)
    return values


def complete_virtual_network(d: Draft) -> dict[str, Any]:
    props = dict(d.properties)
    space = obj(props.get("addressSpace"), "properties.addressSpace")
    raw = space.get("addressPrefixes")
    target = "properties.addressSpace.addressPrefixes"
    if not isinstance(raw, list) or not raw:
        raise invalid_parameter(
            "A virtual network needs addressSpace.addressPrefixes (one or more CIDR prefixes).", target
        )
    space_nets = [parse_prefix(value, d.rid, target) for value in raw]
    props["addressSpace"] = {**space, "addressPrefixes": list(raw)}
    obj(props.get("dhcpOptions"), "properties.dhcpOptions")
    subnets = named_items(props, "subnets", "properties.subnets")
    taken: list[tuple[str, Network]] = []
    for subnet in subnets:
        name = subnet["name"]
        at = f"properties.subnets['{name}']"
        values = subnet_prefix_values(subnet["properties"], at)
        if not values:
            raise invalid_parameter(f"Subnet '{name}' needs an addressPrefix.", f"{at}.addressPrefix")
        for value in values:
            net = parse_prefix(value, f"{d.rid}/subnets/{name}", f"{at}.addressPrefix")
            if not any(net.version == outer.version and net.subnet_of(outer) for outer in space_nets):  # type: ignore[arg-type]
                raise ArmError(
                    400,
                    "NetcfgSubnetRangeOutsideVnet",
                    f"Subnet '{name}' is not valid because its IP address range is outside the IP address range of "
                    f"virtual network '{d.name}'.",
                    at,
                )
            for other, other_net in taken:
                if net.version == other_net.version and net.overlaps(other_net):
                    raise ArmError(
                        400,
                        "NetcfgSubnetRangesOverlap",
                        f"Subnet '{name}' is not valid because its IP address range overlaps with that of an existing "
                        f"subnet ('{other}') in virtual network '{d.name}'.",
                        at,
                    )
            taken.append((name, net))
    props["subnets"] = stamp_children(subnets, d.rid, "subnets")
    props["resourceGuid"] = d.previous_properties.get("resourceGuid") or str(uuid.uuid4())
    return {**d.body, "properties": props}


# ---------------------------------------------------------------------------------------------- NICs


def subnet_key(sid: Any) -> tuple[str, ...] | None:
    """Case-insensitive identity of a subnet id, so ``resourcegroups`` and ``resourceGroups`` ids compare equal."""
    parsed = parse_id(sid) if isinstance(sid, str) else None
    if parsed is None or len(parsed.children) != 1:
        return None
    return (parsed.subscription, parsed.group.lower(), parsed.full_type.lower(), parsed.name.lower(),
            parsed.children[0][0].lower(), parsed.children[0][1].lower())  # fmt: skip


def _subnet(d: Draft, sid: str, target: str) -> tuple[str, ipaddress.IPv4Network]:
    """The canonical id and IPv4 prefix of the subnet an IP configuration names (its network is locked)."""
    parsed = parse_id(sid)
    key = subnet_key(sid)
    if parsed is None or key is None or key[2] != "microsoft.network/virtualnetworks" or key[4] != "subnets":
        raise invalid_parameter(
            f"'{sid}' is not a subnet id (.../virtualNetworks/{{vnet}}/subnets/{{subnet}}).", target
        )
    row = find_by_id(d.ctx.db, parsed, lock=True) if parsed.subscription == d.group.subscription_id else None
    subnet = item_named((row.body.get("properties") or {}).get("subnets"), key[5]) if row else None
    if subnet is None:
        raise ArmError(
            400,
            "InvalidResourceReference",
            f"Resource {sid} referenced by resource {d.rid} was not found. Please make sure that the referenced "
            "resource exists, and that both resources are in the same region.",
            target,
        )
    for value in subnet_prefix_values(subnet.get("properties") or {}, target):
        net = ipaddress.ip_network(value)
        if isinstance(net, ipaddress.IPv4Network):
            return str(subnet["id"]), net
    raise invalid_parameter(f"Subnet {sid} has no IPv4 prefix to take a private address from.", target)


def _used_addresses(d: Draft, key: tuple[str, ...]) -> dict[str, str]:
    """Private address -> IP configuration id, of every other NIC of the subscription in that subnet."""
    rows = d.ctx.db.scalars(
        select(Resource)
        .join(ResourceGroup, Resource.resource_group_id == ResourceGroup.id)
        .where(
            ResourceGroup.subscription_id == d.group.subscription_id,
            Resource.type_key == "microsoft.network/networkinterfaces",
        )
    )
    own = d.rid.lower() + "/"
    used: dict[str, str] = {}
    for row in rows:
        for config in (row.body.get("properties") or {}).get("ipConfigurations") or []:
            cid = str(config.get("id", ""))
            props = config.get("properties") or {}
            if cid.lower().startswith(own) or subnet_key((props.get("subnet") or {}).get("id")) != key:
                continue
            if isinstance(props.get("privateIPAddress"), str):
                used[props["privateIPAddress"]] = cid
    return used


def _hosts(net: ipaddress.IPv4Network) -> range:
    return range(int(net.network_address) + RESERVED_AT_START, int(net.broadcast_address))


def _assign(d: Draft, config: dict[str, Any], previous: dict[str, Any] | None, used: dict[str, str]) -> None:
    props = config["properties"]
    at = f"properties.ipConfigurations['{config['name']}']"
    sid = reference_id(props.get("subnet"), f"{at}.subnet")
    if sid is None:
        raise invalid_parameter(f"IP configuration '{config['name']}' needs a subnet.", f"{at}.subnet")
    canonical, net = _subnet(d, sid, f"{at}.subnet")
    key = subnet_key(canonical)
    assert key is not None
    used.update({a: o for a, o in _used_addresses(d, key).items() if a not in used})
    method = choice(props.get("privateIPAllocationMethod"), ("Dynamic", "Static"), f"{at}.privateIPAllocationMethod",
                    default="Dynamic")  # fmt: skip
    cid = f"{d.rid}/ipConfigurations/{config['name']}"
    if method == "Static":
        try:
            address = ipaddress.IPv4Address(str(props.get("privateIPAddress")))
        except ValueError:
            raise invalid_parameter(
                f"A static private IP address must be an IPv4 address, not '{props.get('privateIPAddress')}'.",
                f"{at}.privateIPAddress",
            ) from None
        if int(address) not in _hosts(net):
            raise ArmError(
                400,
                "PrivateIPAddressNotInSubnet",
                f"Private static IP address {address} does not belong to the usable range of subnet prefix {net}.",
                f"{at}.privateIPAddress",
            )
    else:
        kept = ((previous or {}).get("properties") or {}).get("privateIPAddress")
        same_subnet = subnet_key(((previous or {}).get("properties") or {}).get("subnet", {}).get("id")) == key
        if same_subnet and isinstance(kept, str) and kept not in used:
            address = ipaddress.IPv4Address(kept)
        else:
            free = next((a for a in _hosts(net) if str(ipaddress.IPv4Address(a)) not in used), None)
            if free is None:
                raise ArmError(
                    400,
                    "SubnetIsFull",
                    f"Subnet {canonical} with address prefix {net} does not have enough capacity for 1 IP address.",
                    f"{at}.subnet",
                )
            address = ipaddress.IPv4Address(free)
    if str(address) in used:
        raise ArmError(
            400,
            "PrivateIPAddressInUse",
            f"IP configuration {cid} is using the private IP address {address} which is already allocated to "
            f"resource {used[str(address)]}.",
            f"{at}.privateIPAddress",
        )
    used[str(address)] = cid
    props.update(
        privateIPAddress=str(address),
        privateIPAllocationMethod=method,
        privateIPAddressVersion="IPv4",
        subnet={**props["subnet"], "id": canonical},
    )


def mac_address(rid: str) -> str:
    """Azure's OUI with three bytes derived from the id: stable for the NIC's lifetime, and not a real NIC's."""
    digest = hashlib.sha256(rid.lower().encode()).digest()
    return "-".join(["00", "0D", "3A", *(f"{b:02X}" for b in digest[:3])])


def complete_network_interface(d: Draft) -> dict[str, Any]:
    props = dict(d.properties)
    configs = named_items(props, "ipConfigurations", "properties.ipConfigurations")
    if not configs:
        raise invalid_parameter(
            "A network interface needs at least one IP configuration.", "properties.ipConfigurations"
        )
    for name in ("networkSecurityGroup",):
        reference_id(props.get(name), f"properties.{name}")
    before = d.previous_properties.get("ipConfigurations")
    used: dict[str, str] = {}
    # Static addresses first, so that a dynamic one never takes an address another configuration asks for.
    ordered = sorted(
        configs, key=lambda c: str(c["properties"].get("privateIPAllocationMethod", "")).lower() != "static"
    )
    for config in ordered:
        _assign(d, config, item_named(before, config["name"]), used)
    for config in configs:
        config["properties"]["primary"] = boolean(config["properties"].get("primary"), "primary", default=False)
    if not any(c["properties"]["primary"] for c in configs):
        configs[0]["properties"]["primary"] = True
    props["ipConfigurations"] = stamp_children(configs, d.rid, "ipConfigurations")
    props["macAddress"] = mac_address(d.rid)
    props["resourceGuid"] = d.previous_properties.get("resourceGuid") or str(uuid.uuid4())
    props["enableIPForwarding"] = boolean(
        props.get("enableIPForwarding"), "properties.enableIPForwarding", default=False
    )
    props["enableAcceleratedNetworking"] = boolean(
        props.get("enableAcceleratedNetworking"), "properties.enableAcceleratedNetworking", default=False
    )
    dns = obj(props.get("dnsSettings"), "properties.dnsSettings")
    props["dnsSettings"] = {"dnsServers": [], "appliedDnsServers": [], **dns}
    return {**d.body, "properties": props}
