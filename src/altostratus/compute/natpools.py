"""Inbound NAT pools of a scale set, as host port forwards.

A scale set's IP configurations may name load-balancer NAT pools (frontend port range -> backend port, as
the Azure Stack QuickStart templates do with 50000-50119 -> 22). Here they become forwards on the instance's
host at 127.0.0.1: instance N gets frontendPortRangeStart + N, so ``ssh -p 5000N user@127.0.0.1`` reaches it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.store.models import Resource, ResourceGroup


def pool_ids(model: dict[str, Any]) -> list[str]:
    profile = model.get("virtualMachineProfile") or {}
    ids: list[str] = []
    for nic in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
        for ipc in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
            for pool in ((ipc or {}).get("properties") or {}).get("loadBalancerInboundNatPools") or []:
                if isinstance(pool, dict) and isinstance(pool.get("id"), str):
                    ids.append(pool["id"])
    return ids


def resolve_pools(s: Session, model: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(frontend start, frontend end, backend port) of every NAT pool the model names and that exists."""
    out = []
    for pool_id in pool_ids(model):
        parts = pool_id.strip("/").split("/")
        # subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{lb}/inboundNatPools/{p}
        if len(parts) != 10 or parts[5].lower() != "microsoft.network" or parts[6].lower() != "loadbalancers":
            continue
        row = s.scalars(
            select(Resource)
            .join(ResourceGroup, Resource.resource_group_id == ResourceGroup.id)
            .where(
                ResourceGroup.subscription_id == parts[1].lower(),
                ResourceGroup.name_key == parts[3].lower(),
                Resource.type_key == "microsoft.network/loadbalancers",
                Resource.name_key == parts[7].lower(),
            )
        ).one_or_none()
        if row is None:
            continue
        for pool in (row.body.get("properties") or {}).get("inboundNatPools") or []:
            if str(pool.get("name", "")).lower() != parts[9].lower():
                continue
            props = pool.get("properties") or {}
            try:
                start, end, backend = (
                    int(props[k]) for k in ("frontendPortRangeStart", "frontendPortRangeEnd", "backendPort")
                )
            except (KeyError, TypeError, ValueError):
                continue
            out.append((start, end, backend))
    return out


def forwards_for(pools: list[tuple[int, int, int]], instance_id: int) -> tuple[tuple[int, int], ...]:
    return tuple((start + instance_id, backend) for start, end, backend in pools if start + instance_id <= end)
