"""A load balancer's inbound NAT rules as Azure answers them for scale sets: one rule per instance and NAT pool.

On Azure, a NAT pool is a template: for each instance of a scale set that names it, the load balancer gets an
inbound NAT rule ``{pool}.{instanceId}`` whose ``frontendPort`` is that instance's public port and whose
``backendIPConfiguration`` is the instance's NIC IP configuration. Clients read them there: az 2.66's ``az vmss
list-instance-connection-info`` maps each rule's backend instance to ``{public IP}:{frontendPort}``. The ports are
those the controller forwards (compute/natpools.py ``forwards_for``: ``start + instanceId``), computed on read from
the scale sets' models and live instances, so they are never stored twice.

NAT rule V2 (a rule with a backend pool and a port range, the current az's Standard load balancer) has no rule
per instance: Azure lists each member of a backend pool in its ``loadBalancerBackendAddresses``, with the NIC IP
configuration and ``inboundNatRulesPortMapping`` (the member's frontend port of each V2 rule on the pool); the
current az's ``list-instance-connection-info`` reads them there. Members are the live instances of the scale sets
whose IP configurations join the pool; their ports are again ``start + instanceId``, as forwarded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.compute import service
from altostratus.compute.models import ScaleSet
from altostratus.compute.natpools import backend_pool_ids, pool_ids, v2_rules
from altostratus.compute.render import set_id
from altostratus.store.models import ResourceGroup


def _ip_configurations(
    model: dict[str, Any], pool_id: str, key: str = "loadBalancerInboundNatPools"
) -> list[tuple[str, str]]:
    """(NIC configuration name, IP configuration name) of each IP configuration of the model naming the pool
    under ``key`` (its NAT pools, or its backend pools)."""
    profile = model.get("virtualMachineProfile") or {}
    out: list[tuple[str, str]] = []
    for nic in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
        for ipc in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
            pools = ((ipc or {}).get("properties") or {}).get(key) or []
            if any(isinstance(p, dict) and str(p.get("id", "")).lower() == pool_id.lower() for p in pools):
                out.append((str(nic.get("name", "")), str(ipc.get("name", ""))))
    return out


def with_scale_set_members(s: Session, lb: dict[str, Any]) -> dict[str, Any]:
    """``lb`` as Azure answers it with scale sets behind it: its NAT pools' per-instance rules, its backend
    pools' members (with their NAT rule V2 ports)."""
    return with_backend_addresses(s, with_nat_pool_rules(s, lb))


def _sets(s: Session, lb_id: str) -> list[tuple[ScaleSet, ResourceGroup]]:
    subscription = lb_id.split("/")[2].lower()
    return list(
        s.execute(
            select(ScaleSet, ResourceGroup)
            .join(ResourceGroup, ScaleSet.resource_group_id == ResourceGroup.id)
            .where(ScaleSet.subscription_id == subscription, ScaleSet.deleting.is_(False))
            .order_by(ScaleSet.name_key)
        ).tuples()
    )


def with_backend_addresses(s: Session, lb: dict[str, Any]) -> dict[str, Any]:
    """``lb`` with each backend pool's ``loadBalancerBackendAddresses``: one per live instance of the scale sets
    that join it, with the frontend port of each NAT rule V2 on the pool (none when past the rule's range)."""
    props = lb.get("properties")
    if not isinstance(props, dict) or not props.get("backendAddressPools"):
        return lb
    lb_id = str(lb["id"])
    prefix = f"{lb_id}/backendAddressPools/".lower()
    members: dict[str, list[dict[str, Any]]] = {}
    for ss, group in _sets(s, lb_id):
        named = [pid for pid in backend_pool_ids(ss.model) if pid.lower().startswith(prefix)]
        rows = service.live_rows(s, ss) if named else []
        for pool_id in named:
            pool_name = pool_id.rsplit("/", 1)[-1]
            rules = v2_rules(props, pool_name)
            for nic, ipc in _ip_configurations(ss.model, pool_id, "loadBalancerBackendAddressPools")[:1]:
                for row in rows:
                    backend = f"{set_id(group, ss)}/virtualMachines/{row.instance_id}/networkInterfaces/{nic}"
                    members.setdefault(pool_name.lower(), []).append(
                        {
                            "name": f"{ss.name}_{row.instance_id}_{nic}_{ipc}",
                            "properties": {
                                "networkInterfaceIPConfiguration": {"id": f"{backend}/ipConfigurations/{ipc}"},
                                "inboundNatRulesPortMapping": _port_mappings(rules, row.instance_id),
                            },
                        }
                    )
    if not members:
        return lb
    pools = []
    for pool in props["backendAddressPools"]:
        found = members.get(str((pool or {}).get("name", "")).lower()) if isinstance(pool, dict) else None
        if found:
            pool = {**pool, "properties": {**(pool.get("properties") or {}), "loadBalancerBackendAddresses": found}}
        pools.append(pool)
    return {**lb, "properties": {**props, "backendAddressPools": pools}}


def _port_mappings(rules: list[dict[str, Any]], instance_id: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rule in rules:
        p = rule.get("properties") or {}
        try:
            start, end = int(p["frontendPortRangeStart"]), int(p["frontendPortRangeEnd"])
        except (KeyError, TypeError, ValueError):
            continue
        if start + instance_id <= end:
            out.append(
                {
                    "inboundNatRuleName": rule.get("name"),
                    "frontendPort": start + instance_id,
                    "backendPort": p.get("backendPort"),
                }
            )
    return out


def with_nat_pool_rules(s: Session, lb: dict[str, Any]) -> dict[str, Any]:
    """``lb`` with the NAT rules its pools make for the live instances of the scale sets that name them."""
    props = lb.get("properties")
    pools = {
        str(p.get("name", "")).lower(): p for p in (props or {}).get("inboundNatPools") or [] if isinstance(p, dict)
    }
    if not isinstance(props, dict) or not pools:
        return lb
    lb_id = str(lb["id"])
    prefix = f"{lb_id}/inboundNatPools/".lower()
    rules: list[dict[str, Any]] = []
    for ss, group in _sets(s, lb_id):
        named = [pid for pid in pool_ids(ss.model) if pid.lower().startswith(prefix)]
        rows = service.live_rows(s, ss) if named else []
        for pool_id in named:
            pool = pools.get(pool_id.rsplit("/", 1)[-1].lower())
            pool_props = (pool or {}).get("properties") or {}
            try:
                start, end = int(pool_props["frontendPortRangeStart"]), int(pool_props["frontendPortRangeEnd"])
            except (KeyError, TypeError, ValueError):
                continue
            for nic, ipc in _ip_configurations(ss.model, pool_id)[:1]:
                for row in rows:
                    if start + row.instance_id > end:
                        continue
                    name = f"{pool_id.rsplit('/', 1)[-1]}.{row.instance_id}"
                    backend = f"{set_id(group, ss)}/virtualMachines/{row.instance_id}/networkInterfaces/{nic}"
                    rules.append(
                        {
                            "name": name,
                            "id": f"{lb_id}/inboundNatRules/{name}",
                            "properties": {
                                "frontendIPConfiguration": pool_props.get("frontendIPConfiguration"),
                                "frontendPort": start + row.instance_id,
                                "backendPort": pool_props.get("backendPort"),
                                "protocol": pool_props.get("protocol", "Tcp"),
                                "backendIPConfiguration": {"id": f"{backend}/ipConfigurations/{ipc}"},
                                "enableFloatingIP": False,
                                "idleTimeoutInMinutes": 4,
                                "provisioningState": "Succeeded",
                            },
                        }
                    )
    if not rules:
        return lb
    own = [r for r in props.get("inboundNatRules") or [] if isinstance(r, dict)]
    return {**lb, "properties": {**props, "inboundNatRules": own + rules}}
