"""Microsoft.Network/publicIPAddresses: an address and a DNS name, as bookkeeping.

Every public IP gets an address at once (Azure hands out a Dynamic one only when it is attached; templates and
scripts read ``ipAddress`` and ``dnsSettings.fqdn`` right after deploying, so having one is the useful choice).
Addresses come from 198.18.0.0/15, the range RFC 2544 sets aside for benchmarking: never routed on the internet,
and nothing here routes it either. The first candidate is derived from the resource id, so an address is stable
and two concurrent allocations rarely even meet; a taken one moves on to the next free address. The address is
kept for the resource's lifetime. A ``domainNameLabel`` must be unique in the location, as on Azure.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import uuid
from typing import Any

from sqlalchemy import select

from altostratus.arm.context import obj
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.resources.endpoints import cloudapp_zone
from altostratus.resources.fields import choice, integer
from altostratus.resources.generic import Draft
from altostratus.store.models import Resource

POOL = ipaddress.IPv4Network("198.18.0.0/15")
TYPE_KEY = "microsoft.network/publicipaddresses"
LABEL = re.compile(r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$")


def _others(d: Draft) -> list[dict[str, Any]]:
    """Properties of every other public IP of the cloud (addresses and labels are cloud-wide)."""
    rows = d.ctx.db.scalars(select(Resource).where(Resource.type_key == TYPE_KEY))
    own = f"{d.group.id}/{d.name.lower()}"
    return [r.body.get("properties") or {} for r in rows if f"{r.resource_group_id}/{r.name_key}" != own]


def allocate(rid: str, used: set[str]) -> str:
    size = POOL.num_addresses
    start = int.from_bytes(hashlib.sha256(rid.lower().encode()).digest()[:8], "big") % size
    for step in range(size):
        address = POOL.network_address + (start + step) % size
        if address.packed[-1] not in (0, 255) and str(address) not in used:
            return str(address)
    raise ArmError(409, "PublicIPCountLimitReached", "Every address of the public IP pool is in use.")


def complete_public_ip(d: Draft) -> dict[str, Any]:
    props = dict(d.properties)
    props["publicIPAllocationMethod"] = choice(
        props.get("publicIPAllocationMethod"), ("Dynamic", "Static"), "properties.publicIPAllocationMethod",
        default="Dynamic",
    )  # fmt: skip
    version = choice(props.get("publicIPAddressVersion"), ("IPv4", "IPv6"), "properties.publicIPAddressVersion",
                     default="IPv4")  # fmt: skip
    if version != "IPv4":
        raise invalid_parameter("Only IPv4 public IP addresses exist here (as on Azure Stack Hub).",
                                "properties.publicIPAddressVersion")  # fmt: skip
    props["publicIPAddressVersion"] = version
    props["idleTimeoutInMinutes"] = integer(
        props.get("idleTimeoutInMinutes"), "properties.idleTimeoutInMinutes", default=4, minimum=4, maximum=30
    )
    others = _others(d)
    dns = dict(obj(props.get("dnsSettings"), "properties.dnsSettings"))
    dns.pop("fqdn", None)
    if dns:
        label = dns.get("domainNameLabel")
        if not isinstance(label, str) or not LABEL.match(label):
            raise ArmError(
                400,
                "InvalidDomainNameLabel",
                f"The domain name label {label} is invalid. It must conform to the following regular expression: "
                f"{LABEL.pattern}.",
                "properties.dnsSettings.domainNameLabel",
            )
        if any(str((o.get("dnsSettings") or {}).get("domainNameLabel", "")).lower() == label for o in others):
            raise ArmError(
                400,
                "DnsRecordInUse",
                f"DNS record {label}.{cloudapp_zone(d.ctx)} is already used by another public IP.",
                "properties.dnsSettings.domainNameLabel",
            )
        dns["fqdn"] = f"{label}.{cloudapp_zone(d.ctx)}"
        props["dnsSettings"] = dns
    else:
        props.pop("dnsSettings", None)
    kept = d.previous_properties.get("ipAddress")
    props["ipAddress"] = kept or allocate(d.rid, {str(o.get("ipAddress")) for o in others})
    props["resourceGuid"] = d.previous_properties.get("resourceGuid") or str(uuid.uuid4())
    return {**d.body, "properties": props}
