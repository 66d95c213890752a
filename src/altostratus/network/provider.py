"""Microsoft.Network: the network resources VMSS templates declare, stored as ARM resources.

All of them are control plane only: they are validated, get the computed fields Azure returns (ids,
``resourceGuid``, ``provisioningState``, addresses) and can be read back by ``reference()``, but no packet goes
through these networks, load balancers or public addresses. The one exception is a load balancer's inbound NAT
pool (or NAT rule V2: a port range over a backend pool), which a scale set turns into host port forwards where
the hypervisor driver supports it (``compute/natpools.py``). Addressing (virtual networks, subnets, NICs) is in
``virtual_networks.py``, public IP addresses in ``public_ips.py``; this module has the rest and registers them all.
"""

from __future__ import annotations

import uuid
from typing import Any

from altostratus.arm.errors import invalid_parameter
from altostratus.arm.registry import ProviderRegistry
from altostratus.arm.routing import Router
from altostratus.network import quotas
from altostratus.network.public_ips import complete_public_ip
from altostratus.network.virtual_networks import complete_network_interface, complete_virtual_network
from altostratus.resources.fields import choice, integer, named_items, stamp_children
from altostratus.resources.generic import Draft, PlainType, register_plain_type

NS = "Microsoft.Network"

# The api-versions the network types answer: Azure Stack Hub's (2017-10-01 and 2018-11-01 are the hybrid
# profiles'), the newer ones Azure quickstart templates pin (2020-07-01 … 2024-05-01) and those the current
# az's generated network commands send (2024-10-01 … 2025-09-01). Every version stores and answers the same shape,
# since these types are control plane only.
NETWORK_VERSIONS = (
    "2025-09-01", "2025-07-01", "2025-05-01", "2025-03-01", "2025-01-01", "2024-10-01", "2024-07-01", "2024-05-01",
    "2024-03-01", "2024-01-01", "2023-11-01", "2023-09-01", "2023-06-01", "2023-05-01", "2023-04-01",
    "2023-02-01", "2022-11-01", "2022-09-01", "2022-07-01", "2022-05-01", "2022-01-01", "2021-08-01", "2021-05-01",
    "2021-03-01", "2021-02-01", "2021-01-01", "2020-11-01", "2020-08-01", "2020-07-01",
    "2020-06-01", "2020-05-01", "2020-04-01", "2020-03-01", "2019-12-01", "2019-11-01", "2019-09-01", "2019-08-01",
    "2019-06-01", "2019-04-01", "2019-02-01", "2018-12-01", "2018-11-01", "2018-10-01", "2018-08-01", "2018-07-01",
    "2018-06-01", "2018-04-01", "2018-02-01", "2018-01-01", "2017-11-01", "2017-10-01", "2017-09-01", "2017-08-01",
    "2017-06-01", "2017-04-01", "2017-03-01", "2016-12-01", "2016-09-01", "2016-06-01", "2016-03-30", "2015-06-15",
)  # fmt: skip


def complete_security_group(d: Draft) -> dict[str, Any]:
    """Rules are stored as given (nothing filters traffic); each gets its id."""
    props = dict(d.properties)
    props["securityRules"] = stamp_children(
        named_items(props, "securityRules", "properties.securityRules"), d.rid, "securityRules"
    )
    props["resourceGuid"] = d.previous_properties.get("resourceGuid") or str(uuid.uuid4())
    return {**d.body, "properties": props}


LB_CHILDREN = ("frontendIPConfigurations", "backendAddressPools", "inboundNatPools", "inboundNatRules", "probes",
               "loadBalancingRules")  # fmt: skip
PROTOCOLS = ("Tcp", "Udp", "All")


def _ports(item: dict[str, Any], keys: tuple[str, ...], target: str) -> None:
    """NAT ports must be numbers (strings of digits are fine, as templates send them); stored as integers."""
    props = item["properties"]
    for key in keys:
        if key in props:
            props[key] = integer(props[key], f"{target}.{key}", minimum=1, maximum=65535)
    if "protocol" in props:
        props["protocol"] = choice(props["protocol"], PROTOCOLS, f"{target}.protocol")


def complete_load_balancer(d: Draft) -> dict[str, Any]:
    """Children get their ids, so scale sets can name backend pools and NAT pools; public IP ids are kept as given."""
    props = dict(d.properties)
    for child in LB_CHILDREN:
        props[child] = stamp_children(named_items(props, child, f"properties.{child}"), d.rid, child)
    for child in ("inboundNatPools", "inboundNatRules"):
        # A NAT rule is either one port to one NIC, or (NAT rule V2, the current az's Standard load balancer) a
        # port range over a backend pool, which forwards like a NAT pool (compute/natpools.py).
        for item in props[child]:
            target = f"properties.{child}['{item['name']}']"
            _ports(item, ("frontendPort", "frontendPortRangeStart", "frontendPortRangeEnd", "backendPort"), target)
            p = item["properties"]
            if p.get("frontendPortRangeStart", 0) > p.get("frontendPortRangeEnd", 65535):
                raise invalid_parameter("frontendPortRangeStart must not be greater than frontendPortRangeEnd.", target)
    props["resourceGuid"] = d.previous_properties.get("resourceGuid") or str(uuid.uuid4())
    return {**d.body, "properties": props}


TYPES = (
    PlainType(NS, "networkSecurityGroups", NETWORK_VERSIONS, complete_security_group),
    PlainType(NS, "loadBalancers", NETWORK_VERSIONS, complete_load_balancer, children=("inboundNatRules",)),
    PlainType(NS, "virtualNetworks", NETWORK_VERSIONS, complete_virtual_network, children=("subnets",)),
    PlainType(NS, "publicIPAddresses", NETWORK_VERSIONS, complete_public_ip),
    PlainType(NS, "networkInterfaces", NETWORK_VERSIONS, complete_network_interface),
)


def register_routes(router: Router, registry: ProviderRegistry) -> None:
    for spec in TYPES:
        register_plain_type(router, registry, spec)
    quotas.register_routes(router, registry)
