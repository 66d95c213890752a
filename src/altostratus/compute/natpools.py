"""Inbound NAT pools of a scale set, as host port forwards on a loopback address of each load-balancer frontend.

A scale set's IP configurations may name load-balancer NAT pools (frontend port range -> backend port, as the
Azure Stack QuickStart templates do with 50000-50119 -> 22). Instance N gets ``frontendPortRangeStart + N``.
On Azure every frontend has an IP of its own, so two groups deploying the same template never clash; here the
frontend's IP is a loopback address of its own: Linux routes all of 127.0.0.0/8 to ``lo``, so QEMU (or anyone)
can listen on 127.a.b.c with no set-up, and ``ssh -p 50000 user@127.a.b.c`` reaches instance 0.

Addresses: one per frontend, named by the frontend's lower-cased resource id (``.../loadBalancers/{lb}/
frontendIPConfigurations/{name}``). The first candidate is a hash of that id over 127.1.0.1-127.254.255.254
(so 127.0.0.0/16 - 127.0.0.1, resolved's 127.0.0.53, Debian's 127.0.1.1 - and the broadcast 127.255.255.255 are
never used), then the next ones in turn (linear probing). The controller records the choice in ``settings`` as
``natpool-address/<address>`` = frontend id before it creates an instance: the primary key makes an address
belong to one frontend only, and the record keeps it stable across restarts, re-deployments and even the load
balancer's deletion and re-creation under the same name. Records are never removed: an address no frontend
uses any more costs one row, and it can never be handed to another load balancer while an old instance still
listens on it. Readers (the instance views) only look addresses up.

NAT rule V2 (what the current az's Standard load balancer makes): an ``inboundNatRules`` entry naming a backend
address pool and a frontend port range. It forwards the same way: every instance whose IP configuration is in that
backend pool gets ``frontendPortRangeStart + N`` -> ``backendPort``, so ``resolve_pools`` answers such rules as
pools too (the controller, the instance views and the PUT-time check all see them), and the load balancer answers
each member's port in its backend pool's ``loadBalancerBackendAddresses`` (compute/lb_rules.py).

Two scale sets behind one frontend with overlapping port ranges do clash, as on Azure: ``check_conflicts``
refuses the scale-set PUT that would cause it, naming the other scale set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.compute.models import ScaleSet
from altostratus.hypervisors.base import PortForward
from altostratus.store.models import Resource, ResourceGroup, Setting

KEY_PREFIX = "natpool-address/"
_THIRD, _FOURTH = 256, 254  # octets 3 (0-255) and 4 (1-254) of 127.b.c.d, b in 1-254
SLOTS = 254 * _THIRD * _FOURTH
PROBES = 4096  # far more than a hash collision chain ever needs among millions of free slots
DEFAULT_FRONTEND = "default"  # a pool whose load balancer declares no frontend at all


@dataclass(frozen=True)
class NatPool:
    id: str
    """The pool's resource id as the model names it."""
    frontend: str
    """Lower-cased resource id of the frontend IP configuration the pool uses: what owns an address."""
    start: int
    end: int
    backend: int
    address: str | None
    """The frontend's loopback address; ``None`` while not allocated (only looked up, or none free)."""

    def overlaps(self, other: NatPool) -> bool:
        return self.frontend == other.frontend and self.start <= other.end and other.start <= self.end


def pool_ids(model: dict[str, Any]) -> list[str]:
    profile = model.get("virtualMachineProfile") or {}
    ids: list[str] = []
    for nic in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
        for ipc in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
            for pool in ((ipc or {}).get("properties") or {}).get("loadBalancerInboundNatPools") or []:
                if isinstance(pool, dict) and isinstance(pool.get("id"), str) and pool["id"] not in ids:
                    ids.append(pool["id"])
    return ids


def backend_pool_ids(model: dict[str, Any]) -> list[str]:
    """The load-balancer backend pools the model's IP configurations join (NAT rule V2 forwards to them)."""
    profile = model.get("virtualMachineProfile") or {}
    ids: list[str] = []
    for nic in (profile.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []:
        for ipc in ((nic or {}).get("properties") or {}).get("ipConfigurations") or []:
            for pool in ((ipc or {}).get("properties") or {}).get("loadBalancerBackendAddressPools") or []:
                if isinstance(pool, dict) and isinstance(pool.get("id"), str) and pool["id"] not in ids:
                    ids.append(pool["id"])
    return ids


def forwarding_ids(model: dict[str, Any]) -> list[str]:
    """Everything of a load balancer that can forward ports to the model's instances: NAT pools, backend pools."""
    return pool_ids(model) + backend_pool_ids(model)


def v2_rules(lb_props: dict[str, Any], backend_pool: str) -> list[dict[str, Any]]:
    """The load balancer's NAT rules V2 on the backend pool named ``backend_pool`` (a rule with a backend pool
    and a frontend port range), in the load balancer's order."""
    out: list[dict[str, Any]] = []
    for rule in lb_props.get("inboundNatRules") or []:
        props = (rule or {}).get("properties") or {}
        ref = (props.get("backendAddressPool") or {}).get("id")
        if not isinstance(ref, str) or ref.rstrip("/").rsplit("/", 1)[-1].lower() != backend_pool.lower():
            continue
        if "frontendPortRangeStart" in props and "frontendPortRangeEnd" in props:
            out.append(rule)
    return out


def _parts(pool_id: str) -> list[str] | None:
    """subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{lb}/inboundNatPools/{p}"""
    parts = pool_id.strip("/").split("/")
    if len(parts) != 10 or parts[5].lower() != "microsoft.network" or parts[6].lower() != "loadbalancers":
        return None
    return parts


def _load_balancer(s: Session, parts: list[str]) -> Resource | None:
    return s.scalars(
        select(Resource)
        .join(ResourceGroup, Resource.resource_group_id == ResourceGroup.id)
        .where(
            ResourceGroup.subscription_id == parts[1].lower(),
            ResourceGroup.name_key == parts[3].lower(),
            Resource.type_key == "microsoft.network/loadbalancers",
            Resource.name_key == parts[7].lower(),
        )
    ).one_or_none()


def _frontend(lb_id: str, lb_props: dict[str, Any], pool_props: dict[str, Any]) -> str:
    """The frontend a pool uses, by name within its own load balancer (a pool cannot use another's)."""
    ref = (pool_props.get("frontendIPConfiguration") or {}).get("id")
    name = ref.rstrip("/").rsplit("/", 1)[-1] if isinstance(ref, str) and ref.strip("/") else ""
    if not name:
        frontends = lb_props.get("frontendIPConfigurations") or []
        first = frontends[0] if frontends and isinstance(frontends[0], dict) else {}
        name = str(first.get("name") or DEFAULT_FRONTEND)
    return f"{lb_id}/frontendIPConfigurations/{name}".lower()


def resolve_pools(s: Session, model: dict[str, Any], *, allocate: bool = False) -> list[NatPool]:
    """Every NAT pool the model names and every NAT rule V2 on a backend pool it joins, that exist, with their
    frontend's address (allocated first when ``allocate``: the controller does, in its writable session; readers
    only look up)."""
    out: list[NatPool] = []
    for source_id in forwarding_ids(model):
        parts = _parts(source_id)
        row = _load_balancer(s, parts) if parts is not None else None
        if parts is None or row is None:
            continue
        lb_id = "/" + "/".join(parts[:8])
        lb_props = row.body.get("properties") or {}
        if parts[8].lower() == "backendaddresspools":
            found = [(f"{lb_id}/inboundNatRules/{r.get('name', '')}", r) for r in v2_rules(lb_props, parts[9])]
        else:
            named = [
                p for p in lb_props.get("inboundNatPools") or [] if str(p.get("name", "")).lower() == parts[9].lower()
            ]
            found = [(source_id, p) for p in named]
        for item_id, item in found:
            props = item.get("properties") or {}
            try:
                start, end, backend = (
                    int(props[k]) for k in ("frontendPortRangeStart", "frontendPortRangeEnd", "backendPort")
                )
            except (KeyError, TypeError, ValueError):
                continue
            frontend = _frontend(lb_id, lb_props, props)
            address = frontend_address(s, frontend, allocate=allocate)
            out.append(NatPool(item_id, frontend, start, end, backend, address))
    return out


def forwards_for(pools: list[NatPool], instance_id: int) -> tuple[PortForward, ...]:
    """Instance ``instance_id``'s forwards: ``(address, start + id, backend)`` for each pool whose range still
    has that port. A port two pools of one model would both take goes to the first (the PUT refuses such a
    model; a load balancer changed afterwards must not make the instance spec invalid)."""
    out: list[PortForward] = []
    for pool in pools:
        port = pool.start + instance_id
        if pool.address is None or port > pool.end or any(f[:2] == (pool.address, port) for f in out):
            continue
        out.append((pool.address, port, pool.backend))
    return tuple(out)


# -- addresses ---------------------------------------------------------------------------------------------


def slot_address(slot: int) -> str:
    """127.b.c.d for slot 0 .. SLOTS-1: b in 1-254, c in 0-255, d in 1-254."""
    b, rest = divmod(slot % SLOTS, _THIRD * _FOURTH)
    c, d = divmod(rest, _FOURTH)
    return f"127.{b + 1}.{c}.{d + 1}"


def first_slot(frontend: str) -> int:
    return int.from_bytes(hashlib.sha256(frontend.encode()).digest()[:8], "big") % SLOTS


def frontend_address(s: Session, frontend: str, *, allocate: bool) -> str | None:
    """The frontend's address: the recorded one, else (``allocate``) the first free slot from its hash.

    Slots are only ever added, so the first free slot on the probe path ends a lookup. A concurrent allocation
    of the same slot (PostgreSQL; SQLite writers are serialized) loses on the primary key and probes on."""
    slot = first_slot(frontend)
    probe = 0
    while probe < PROBES:
        address = slot_address(slot + probe)
        row = s.get(Setting, KEY_PREFIX + address)
        if row is not None:
            if row.value == frontend:
                return address
            probe += 1
            continue
        if not allocate:
            return None
        try:
            with s.begin_nested():
                s.add(Setting(key=KEY_PREFIX + address, value=frontend))
        except IntegrityError:
            continue  # taken meanwhile: read the slot again (it may even be ours, from a concurrent pass)
        return address
    return None


# -- the PUT-time check ------------------------------------------------------------------------------------


def check_conflicts(
    s: Session, subscription_id: str, set_id: int | None, model: dict[str, Any], old_model: dict[str, Any] | None
) -> None:
    """Refuse a scale-set model whose NAT pools would take ports another scale set's pools take on the same
    load-balancer frontend (409, naming it), or that two of its own pools take (400). Only when the pools a
    model names change (``old_model``: the stored one), so that a capacity-only re-PUT of a set is never refused
    because a load balancer was edited since. What the database cannot show (a concurrent PUT, a port held by
    another program) the driver still refuses at create time, and the instance ends Failed."""
    if old_model is not None and forwarding_ids(old_model) == forwarding_ids(model):
        return
    mine = resolve_pools(s, model)
    for i, pool in enumerate(mine):
        for other in mine[:i]:
            if pool.overlaps(other):
                raise ArmError(
                    400,
                    "InvalidParameter",
                    f"The inbound NAT pools '{other.id}' and '{pool.id}' use the same load-balancer frontend and "
                    f"overlapping frontend ports ({_range(other)} and {_range(pool)}).",
                    "properties.virtualMachineProfile.networkProfile",
                )
    if not mine:
        return
    load_balancers = {p.frontend.rsplit("/frontendipconfigurations/", 1)[0] for p in mine}
    subscriptions = {subscription_id.lower()} | {lb.split("/")[2] for lb in load_balancers}
    query = select(ScaleSet).where(ScaleSet.subscription_id.in_(subscriptions))
    if set_id is not None:
        query = query.where(ScaleSet.id != set_id)
    for other_set in s.scalars(query):
        named = {"/" + "/".join(p[:8]).lower() for p in map(_parts, forwarding_ids(other_set.model)) if p is not None}
        if not named & load_balancers:
            continue
        for theirs in resolve_pools(s, other_set.model):
            for pool in mine:
                if pool.overlaps(theirs):
                    group = s.get(ResourceGroup, other_set.resource_group_id)
                    where = f" in resource group '{group.name}'" if group is not None else ""
                    deleting = " (being deleted)" if other_set.deleting else ""
                    raise ArmError(
                        409,
                        "InboundNatPoolPortsInUse",
                        f"The inbound NAT pool '{pool.id}' would forward frontend ports {_range(pool)}, which "
                        f"overlap ports {_range(theirs)} of the pool '{theirs.id}' on the same load-balancer "
                        f"frontend, used by the scale set '{other_set.name}'{where}{deleting}. Scale sets behind "
                        "one frontend need distinct port ranges (or a frontend, or load balancer, each).",
                        "properties.virtualMachineProfile.networkProfile",
                    )


def _range(pool: NatPool) -> str:
    return f"{pool.start}-{pool.end}"
