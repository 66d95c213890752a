"""CIDR functions (docs: template-functions-cidr): ``parseCidr``, ``cidrSubnet``, ``cidrHost``.

Built on :mod:`ipaddress`. ARM's conventions differ from textbook ones in two documented places: IPv6 ranges have no
``broadcast`` and their first usable address is the network address, and ``cidrHost`` index 0 is the first address
after the network address for both families.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from altostratus.templates.context import EvaluationContext
from altostratus.templates.errors import function_error
from altostratus.templates.registry import builtin, want_int, want_str

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(function: str, value: Any) -> Network:
    text = want_str(function, value, 0)
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError as exc:
        raise function_error(function, f"The value '{text}' is not a valid CIDR range: {exc}.") from None


@builtin("parseCidr", 1)
def parse_cidr(ctx: EvaluationContext, value: Any) -> dict[str, Any]:
    net = _network("parseCidr", value)
    info: dict[str, Any] = {"network": str(net.network_address), "netmask": str(net.netmask)}
    first, last = net.network_address, net.broadcast_address
    if net.version == 4:
        info["broadcast"] = str(net.broadcast_address)
        if net.prefixlen < 31:
            first, last = first + 1, last - 1
    info["firstUsable"] = str(first)
    info["lastUsable"] = str(last)
    info["cidr"] = net.prefixlen
    return info


@builtin("cidrSubnet", 3)
def cidr_subnet(ctx: EvaluationContext, value: Any, new_prefix: Any, index: Any) -> str:
    net = _network("cidrSubnet", value)
    prefix = want_int("cidrSubnet", new_prefix, 1)
    position = want_int("cidrSubnet", index, 2)
    if prefix < net.prefixlen or prefix > net.max_prefixlen:
        raise function_error(
            "cidrSubnet",
            f"The new CIDR '{prefix}' must be between the range's CIDR '{net.prefixlen}' and {net.max_prefixlen}.",
        )
    count = 1 << (prefix - net.prefixlen)
    if position < 0 or position >= count:
        raise function_error("cidrSubnet", f"The subnet index '{position}' is out of range (0 to {count - 1}).")
    size = 1 << (net.max_prefixlen - prefix)
    start = int(net.network_address) + position * size
    return f"{ipaddress.ip_address(start) if net.version == 6 else ipaddress.IPv4Address(start)}/{prefix}"


@builtin("cidrHost", 2)
def cidr_host(ctx: EvaluationContext, value: Any, index: Any) -> str:
    net = _network("cidrHost", value)
    position = want_int("cidrHost", index, 1)
    last = int(net.broadcast_address) - (1 if net.version == 4 and net.prefixlen < 31 else 0)
    address = int(net.network_address) + 1 + position
    if position < 0 or address > last:
        raise function_error("cidrHost", f"The host index '{position}' is out of range for '{net}'.")
    if net.version == 4:
        return str(ipaddress.IPv4Address(address))
    return str(ipaddress.IPv6Address(address))
