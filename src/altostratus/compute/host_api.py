"""Microsoft.Compute.Admin hosts: the operator registers, drains, enables and removes hypervisor hosts
(docs/several-machines.md, docs/admin-api.md). Operator-only, like every ``*.Admin`` route.

``PUT …/hosts/{hostName}`` with ``properties.uri`` (a libvirt URI or ``sim://<name>``; compute/hosts.py) adds a
host, ``POST …/drain`` stops new placements on it, ``POST …/enable`` lifts that, ``DELETE`` removes an *empty*
host (409 ``HostNotEmpty`` otherwise). ``POST …/simulateFailure`` / ``…/simulateRecovery`` make a simulated host
stop and start answering (failure drills without real hosts).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from starlette.responses import Response

from altostratus.arm.context import RequestContext, obj
from altostratus.arm.errors import ArmError, conflict, invalid_parameter
from altostratus.arm.http import empty, json_response
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Access, Router
from altostratus.compute import hosts
from altostratus.compute.models import Host, ScaleSetVm, SimInstance
from altostratus.store.db import iso

NS = "Microsoft.Compute.Admin"
VERSIONS = ("2015-12-01-preview",)
TYPE = f"{NS}/locations/hosts"
MAX_CORES, MAX_MEMORY_MB, MAX_DISK_GB = 1_000_000, 1_000_000_000, 1_000_000_000


def _check_location(ctx: RequestContext) -> None:
    if ctx.params["location"].lower() != ctx.services.settings.location:
        raise ArmError(404, "LocationNotFound", f"The location '{ctx.params['location']}' does not exist here.")


def _not_found(name: str) -> ArmError:
    return ArmError(404, "HostNotFound", f"The host '{name}' is not registered (alto admin host list).", "hostName")


def render(ctx: RequestContext, h: Host, instances: int = 0) -> dict[str, Any]:
    sub = ctx.params["subscriptionId"].lower()
    location = ctx.services.settings.location
    props: dict[str, Any] = {
        "uri": h.uri,
        "kind": h.kind,
        "state": h.state,
        "health": h.health,
        "healthReason": h.health_reason,
        "healthSince": iso(h.health_since),
        "lastSeen": iso(h.last_seen),
        "capacity": {"cores": h.cores, "memoryMB": h.memory_mb, "diskGB": h.disk_gb},
        "instances": instances,
        "faultDomain": h.fault_domain,
        "createdAt": iso(h.created_at),
    }
    if h.kind == "sim":
        props["simulatedOutage"] = h.simulated_outage
    return {
        "id": f"/subscriptions/{sub}/providers/{NS}/locations/{location}/hosts/{h.name}",
        "name": h.name,
        "type": TYPE,
        "location": location,
        "properties": props,
    }


def _counts(ctx: RequestContext) -> dict[str, int]:
    """Instances per host (what makes a host non-empty)."""
    rows = ctx.db.execute(select(ScaleSetVm.host, func.count()).group_by(ScaleSetVm.host)).all()
    return {str(host): int(n) for host, n in rows if host is not None}


def _host(ctx: RequestContext) -> Host:
    _check_location(ctx)
    h = ctx.db.get(Host, ctx.params["hostName"])
    if h is None:
        raise _not_found(ctx.params["hostName"])
    return h


def list_hosts(ctx: RequestContext) -> Response:
    _check_location(ctx)
    counts = _counts(ctx)
    rows = ctx.db.scalars(select(Host).order_by(Host.fault_domain, Host.name)).all()
    return json_response({"value": [render(ctx, h, counts.get(h.name, 0)) for h in rows]})


def get_host(ctx: RequestContext) -> Response:
    h = _host(ctx)
    return json_response(render(ctx, h, _counts(ctx).get(h.name, 0)))


def _capacity(props: dict[str, Any]) -> tuple[int, int, int] | None:
    if "capacity" not in props:
        return None
    cap = obj(props.get("capacity"), "properties.capacity")
    out = []
    for key, limit in (("cores", MAX_CORES), ("memoryMB", MAX_MEMORY_MB), ("diskGB", MAX_DISK_GB)):
        value = cap.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
            raise invalid_parameter(f"'properties.capacity.{key}' must be an integer from 0 to {limit}.",
                                    f"properties.capacity.{key}")  # fmt: skip
        out.append(value)
    return out[0], out[1], out[2]


def put_host(ctx: RequestContext) -> Response:
    _check_location(ctx)
    name = ctx.params["hostName"]
    hosts.check_name(name)
    props = ctx.properties()
    uri = props.get("uri")
    kind = hosts.kind_of(uri)
    assert isinstance(uri, str)
    capacity = _capacity(props)
    if capacity is not None and kind != "sim":
        raise invalid_parameter("A libvirt host reports its own capacity; 'capacity' is for sim:// hosts only.",
                                "properties.capacity")  # fmt: skip
    existing = ctx.db.get(Host, name)
    if existing is not None:
        if existing.uri != uri:
            raise conflict(
                f"The host '{name}' is already registered with the URI '{existing.uri}'. Remove it first (it must "
                "be empty) to register it with another URI.",
                "HostAlreadyExists", "properties.uri",
            )  # fmt: skip
        if capacity is not None:
            existing.cores, existing.memory_mb, existing.disk_gb = capacity
        return json_response(render(ctx, existing, _counts(ctx).get(name, 0)), 200)
    other = ctx.db.scalar(select(Host.name).where(Host.uri == uri))
    if other is not None:
        raise conflict(f"The URI '{uri}' is already registered as the host '{other}'.", "HostAlreadyExists",
                       "properties.uri")  # fmt: skip
    cores, memory_mb, disk_gb = capacity or ((64, 262144, 4096) if kind == "sim" else (0, 0, 0))
    h = hosts.new_host(ctx.db, name, uri, kind, cores=cores, memory_mb=memory_mb, disk_gb=disk_gb)
    return json_response(render(ctx, h), 201)


def delete_host(ctx: RequestContext) -> Response:
    _check_location(ctx)
    name = ctx.params["hostName"]
    h = ctx.db.get(Host, name)
    if h is None:
        return empty(204)
    left = ctx.db.scalar(select(func.count()).select_from(ScaleSetVm).where(ScaleSetVm.host == name)) or 0
    if left:
        raise conflict(
            f"The host '{name}' still has {left} instance(s). Drain it (alto admin host drain {name}), then scale "
            "the sets in or delete those instances (with automatic repairs they move when the host is unhealthy); "
            "remove it once it is empty.",
            "HostNotEmpty", "hostName",
        )  # fmt: skip
    ctx.db.execute(delete(SimInstance).where(SimInstance.host == name))
    ctx.db.delete(h)
    return empty(200)


def _set_state(ctx: RequestContext, state: str) -> Response:
    h = _host(ctx)
    h.state = state
    return json_response(render(ctx, h, _counts(ctx).get(h.name, 0)))


def drain(ctx: RequestContext) -> Response:
    return _set_state(ctx, hosts.DRAINING)


def enable(ctx: RequestContext) -> Response:
    return _set_state(ctx, hosts.ENABLED)


def _simulate(ctx: RequestContext, outage: bool) -> Response:
    h = _host(ctx)
    if h.kind != "sim" or h.name == hosts.DEFAULT_HOST:
        raise conflict(
            f"The host '{h.name}' is not a database-backed simulated host (sim://): stop its libvirtd to drill a "
            "failure instead.",
            "NotASimulatedHost", "hostName",
        )  # fmt: skip
    h.simulated_outage = outage
    return json_response(render(ctx, h, _counts(ctx).get(h.name, 0)))


def simulate_failure(ctx: RequestContext) -> Response:
    return _simulate(ctx, True)


def simulate_recovery(ctx: RequestContext) -> Response:
    return _simulate(ctx, False)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    t = registry.add_type(NS, "locations/hosts", VERSIONS, always_registered=True).full_name
    base = "/subscriptions/{subscriptionId}/providers/" + NS + "/locations/{location}/hosts"
    one = base + "/{hostName}"

    def add(method: str, path: str, handler: Any) -> None:
        router.add(method, path, handler, resource_type=t, access=Access.OPERATOR)

    add("GET", base, list_hosts)
    add("GET", one, get_host)
    add("PUT", one, put_host)
    add("DELETE", one, delete_host)
    add("POST", one + "/drain", drain)
    add("POST", one + "/enable", enable)
    add("POST", one + "/simulateFailure", simulate_failure)
    add("POST", one + "/simulateRecovery", simulate_recovery)
