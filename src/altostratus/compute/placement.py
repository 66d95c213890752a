"""Placement: which host a new instance goes to, and its fault domain (pure functions; docs/several-machines.md).

The rules, in order:

1. Only hosts that are ``Enabled`` (not draining) and ``Healthy`` take new instances, and only while the cores
   and memory of the instances already placed there (from the database), plus the new one's, fit the host's
   capacity times its allocation ratio (OpenStack Nova's defaults: 16 virtual cores per core, 1.5x memory; a
   host whose capacity is not known yet, 0, takes any size).
2. A scale set is spread over fault domains as Azure spreads it: instance *i* goes to the fault domain that
   holds the fewest of the set's instances. A host's fault domain is its index (``hosts.fault_domain``) modulo
   the set's ``platformFaultDomainCount``: with as many hosts as fault domains each domain is one host.
3. Among the hosts of that domain, the one with the fewest of the set's instances, then the most free memory,
   then the name (deterministic).

No host fitting means no placement (``None``): the controller keeps the instance waiting, with the reason in its
instance view, and tries again on a later pass.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from altostratus.compute.hosts import HostInfo

CPU_ALLOCATION_RATIO = 16.0
RAM_ALLOCATION_RATIO = 1.5
DEFAULT_FAULT_DOMAINS = 1


@dataclass(frozen=True)
class Placed:
    """An instance already on a host: what it uses there and which set and fault domain it belongs to."""

    host: str
    cores: int
    memory_mb: int
    set_id: int
    fault_domain: int | None
    count: int = 1
    """How many such instances (``cores`` and ``memory_mb`` are each one's)."""


@dataclass(frozen=True)
class Placement:
    host: str
    fault_domain: int


def fault_domain_count(model: dict[str, object]) -> int:
    value = model.get("platformFaultDomainCount")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else DEFAULT_FAULT_DOMAINS


def fits(host: HostInfo, used_cores: int, used_memory_mb: int, cores: int, memory_mb: int) -> bool:
    if host.cores > 0 and used_cores + cores > host.cores * CPU_ALLOCATION_RATIO:
        return False
    return not (host.memory_mb > 0 and used_memory_mb + memory_mb > host.memory_mb * RAM_ALLOCATION_RATIO)


def place(
    hosts: Iterable[HostInfo],
    placed: Iterable[Placed],
    set_id: int,
    count: int,
    cores: int,
    memory_mb: int,
    fault_domains: int,
) -> list[Placement | None]:
    """Places ``count`` new instances of set ``set_id`` (each ``cores``/``memory_mb``), one after the other so each
    sees the ones before it; ``None`` for an instance no host can take."""
    candidates = sorted(hosts, key=lambda h: h.name)
    used_cores: Counter[str] = Counter()
    used_memory: Counter[str] = Counter()
    set_on_host: Counter[str] = Counter()
    set_in_domain: Counter[int] = Counter()
    for p in placed:
        used_cores[p.host] += p.cores * p.count
        used_memory[p.host] += p.memory_mb * p.count
        if p.set_id == set_id:
            set_on_host[p.host] += p.count
            if p.fault_domain is not None:
                set_in_domain[p.fault_domain] += p.count
    out: list[Placement | None] = []
    for _ in range(count):
        usable = [
            h for h in candidates if h.placeable and fits(h, used_cores[h.name], used_memory[h.name], cores, memory_mb)
        ]
        if not usable:
            out.append(None)
            continue

        def score(h: HostInfo) -> tuple[int, int, float, str]:
            free = (h.memory_mb * RAM_ALLOCATION_RATIO - used_memory[h.name]) if h.memory_mb else float("inf")
            return (set_in_domain[h.fault_domain % fault_domains], set_on_host[h.name], -free, h.name)

        best = min(usable, key=score)
        domain = best.fault_domain % fault_domains
        out.append(Placement(best.name, domain))
        used_cores[best.name] += cores
        used_memory[best.name] += memory_mb
        set_on_host[best.name] += 1
        set_in_domain[domain] += 1
    return out
