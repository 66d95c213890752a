"""The one policy for fetches the server makes on a tenant's behalf (a deployment's ``templateLink``, ...).

A tenant names a URL and the server fetches it from inside the cloud's network, so without a policy a tenant
could read the server's own loopback services, the link-local metadata range, or probe which internal ports are
open. Every tenant-directed fetch therefore goes through ``fetch``, which resolves the host once, refuses
addresses that are not public (loopback, link-local, unspecified, multicast, private, reserved, and the host's own
addresses) unless the operator allowed them, and then connects to the address it checked (the URL is rewritten to
the IP, with the original ``Host`` and TLS server name), so a DNS answer that changes between check and connect
cannot slip an internal address through. Redirects are followed by hand, each hop checked the same way. Every
failure is one ``OutboundRefused`` with no detail: what was (or wasn't) on the other side stays in the server log.

The marketplace upstream is configured by the operator, not a tenant, and does not go through here.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

if TYPE_CHECKING:
    from altostratus.config import Settings

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_REDIRECTS = 5
SIOCGIFADDR = 0x8915


class OutboundRefused(Exception):
    """A fetch that was refused or failed; deliberately without a reason (the log has it)."""


class OutboundTooLarge(Exception):
    """The content exceeded the caller's size limit (the fetch was allowed and answered)."""


@dataclass(frozen=True)
class OutboundPolicy:
    """What the operator allows beyond public addresses (``alto up --allow-outbound-private``/``--outbound-allow``).

    ``allow_private`` opens the private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) but never
    loopback, link-local, unspecified, multicast or the host's own addresses. ``allow`` lists host names, addresses
    or networks (CIDR) that are fetched whatever their address is: an operator's explicit trust."""

    allow_private: bool = False
    allow: tuple[str, ...] = ()

    def allows_host(self, host: str) -> bool:
        wanted = host.strip("[]").lower()
        for entry in self.allow:
            entry = entry.strip().lower()
            if entry == wanted:
                return True
            if "/" in entry and (address := _address(wanted)) is not None:
                try:
                    if address in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
        return False

    def allows_address(self, address: Address, own: set[Address]) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback, whatever ipaddress says of the IPv6 form
        if address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast:
            return False
        if address in own:
            return False
        if address.is_global:
            return True
        return self.allow_private and address.is_private

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, in the resolver's order; all must be allowed, so a name that
        also resolves to an internal address is refused rather than half-trusted."""
        try:
            infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
        except OSError as exc:
            log.info("outbound fetch: cannot resolve %s: %s", host, exc)
            raise OutboundRefused from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise OutboundRefused
        if not self.allows_host(host):
            own = own_addresses()
            refused = [a for a in addresses if not self.allows_address(a, own)]
            if refused:
                log.info("outbound fetch: %s resolves to refused address %s", host, refused[0])
                raise OutboundRefused
        return list(dict.fromkeys(str(a) for a in addresses))


def policy_of(settings: Settings) -> OutboundPolicy:
    return OutboundPolicy(allow_private=settings.outbound_allow_private, allow=settings.outbound_allow)


def fetch(policy: OutboundPolicy, uri: str, *, timeout: float, max_bytes: int) -> bytes:
    """GET ``uri`` under ``policy``; the body, or ``OutboundRefused`` (refused, unreachable, not 200) or
    ``OutboundTooLarge``."""
    current = uri
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            response = _connect(client, policy, current)
            try:
                if response.is_redirect and "location" in response.headers:
                    current = urljoin(current, response.headers["location"])
                    continue
                if response.status_code != 200:
                    log.info("outbound fetch of %s answered HTTP %s", current, response.status_code)
                    raise OutboundRefused
                return _read(response, max_bytes)
            except httpx.HTTPError as exc:
                log.info("outbound fetch of %s failed while reading: %s", current, exc)
                raise OutboundRefused from None
            finally:
                response.close()
    log.info("outbound fetch of %s: more than %d redirects", uri, MAX_REDIRECTS)
    raise OutboundRefused


def _connect(client: httpx.Client, policy: OutboundPolicy, uri: str) -> httpx.Response:
    """The (streamed) response of the first checked address of ``uri``'s host that accepts the connection."""
    for request in _pinned_requests(client, policy, uri):
        try:
            return client.send(request, stream=True)
        except httpx.ConnectError as exc:
            log.info("outbound fetch of %s: cannot connect to %s: %s", uri, request.url.host, exc)
        except httpx.HTTPError as exc:
            log.info("outbound fetch of %s failed: %s", uri, exc)
            raise OutboundRefused from None
    raise OutboundRefused


def _pinned_requests(client: httpx.Client, policy: OutboundPolicy, uri: str) -> list[httpx.Request]:
    """Requests to the checked addresses of ``uri``'s host, addressed to the host by name (Host header, SNI)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused from None
    host_header = parts.netloc.rpartition("@")[2]
    requests = []
    for address in policy.resolve(parts.hostname, port):
        literal = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((parts.scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
        headers = {"Host": host_header}
        requests.append(
            client.build_request("GET", pinned, headers=headers, extensions={"sni_hostname": parts.hostname})
        )
    return requests


def _read(response: httpx.Response, max_bytes: int) -> bytes:
    chunks = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise OutboundTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def own_addresses() -> set[Address]:
    """The addresses of this host's interfaces and name: a tenant must not reach the server's own services
    through a public address of the host any more than through loopback."""
    found: set[Address] = set()
    found.update(_interface_ipv4())
    found.update(_interface_ipv6())
    for name in {socket.gethostname(), socket.getfqdn()}:
        try:
            found.update(a for info in socket.getaddrinfo(name, None) if (a := _address(str(info[4][0]).split("%")[0])))
        except OSError:
            continue
    return found


def _interface_ipv4() -> Iterable[Address]:
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return []
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for name in names:
            try:
                packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # an interface without an IPv4 address
            out.append(ipaddress.IPv4Address(packed[20:24]))
    return out


def _interface_ipv6() -> Iterable[Address]:
    try:
        with open("/proc/net/if_inet6") as f:
            return [ipaddress.IPv6Address(bytes.fromhex(line.split()[0])) for line in f if line.strip()]
    except OSError:
        return []
