"""A load balancer's inbound NAT rules as Azure answers them for scale sets: one rule per instance and NAT pool.

On Azure, a NAT pool is a template: for each instance of a scale set that names it, the load balancer gets an
inbound NAT rule ``{pool}.{instanceId}`` whose ``frontendPort`` is that instance's public port and whose
``backendIPConfiguration`` is the instance's NIC IP configuration. Clients read them there: az 2.66's ``az vmss
list-instance-connection-info`` maps each rule's backend instance to ``{public IP}:{frontendPort}``. The ports are
those the controller forwards (compute/natpools.py ``forwards_for``: ``start + instanceId``), computed on read from
the scale sets' models and live instances, so they are never stored twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.compute import service
from altostratus.compute.models import ScaleSet
from altostratus.compute.natpools import pool_ids
from altostratus.compute.render import set_id
from altostratus.store.models import ResourceGroup


def _ip_configurations(model: dict[str, Any], pool_id: str) -> list[tuple[str, str]]:
    """(NIC configuration name, IP configuration name) of each IP configuration of the model naming the pool."""
    profile = model.get("virtualMachineProfile") or {}
    out: list[tuple[str, str]] = []
    for nic in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
        for ipc in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
            pools = ((ipc or {}).get("properties") or {}).get("loadBalancerInboundNatPools") or []
            if any(isinstance(p, dict) and str(p.get("id", "")).lower() == pool_id.lower() for p in pools):
                out.append((str(nic.get("name", "")), str(ipc.get("name", ""))))
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
    subscription = lb_id.split("/")[2].lower()
    rules: list[dict[str, Any]] = []
    sets = s.execute(
        select(ScaleSet, ResourceGroup)
        .join(ResourceGroup, ScaleSet.resource_group_id == ResourceGroup.id)
        .where(ScaleSet.subscription_id == subscription, ScaleSet.deleting.is_(False))
        .order_by(ScaleSet.name_key)
    ).tuples()
    for ss, group in sets:
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
