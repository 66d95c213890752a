"""Where a simulated host keeps its instances when several control-plane nodes must see the same host.

The sim driver never touches the database (docs/architecture.md): a caller that wants a simulated host shared
by every node hands it an object of this protocol, implemented over a table by compute/ (compute/sim_hosts.py).
Each record is the JSON the file-backed sim writes (hypervisors/sim.py ``_to_json``), so both share one format.
"""

from __future__ import annotations

from typing import Any, Protocol


class SimHostStore(Protocol):
    """The instances of ONE simulated host, and whether that host answers at all."""

    def load(self, key: str) -> dict[str, Any] | None:
        """The record of ``key`` on this host, or ``None``."""

    def load_all(self) -> list[dict[str, Any]]:
        """Every record on this host."""

    def save(self, key: str, record: dict[str, Any]) -> None:
        """Insert or replace the record of ``key`` (atomically: a reader sees the old or the new one)."""

    def remove(self, key: str) -> None:
        """Forget ``key``; a missing key is not an error."""

    def reachable(self) -> bool:
        """False while the simulated host is "down" (an operator's failure drill): every call then fails
        with ``HostUnreachable`` as a real host whose libvirtd died would."""
