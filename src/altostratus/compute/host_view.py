"""What an instance's view says of its host: an instance on an Unhealthy host is never shown silently running.

Its provisioning status becomes ``ProvisioningState/failed/HostUnreachable`` (level Error, with the host, since
when and why), its power state ``PowerState/unknown`` (nobody can tell), and ``vmHealth`` reads
``HealthState/unhealthy`` (Azure's instance health status). Read from the ``hosts`` rows the host monitor keeps
(compute/host_monitor.py), so every node answers the same, whichever node made the instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from altostratus.compute.hosts import UNHEALTHY
from altostratus.compute.models import Host
from altostratus.store.db import iso

HOST_UNREACHABLE = "HostUnreachable"


@dataclass(frozen=True)
class HostDown:
    name: str
    reason: str | None
    since: datetime | None

    def message(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return (
            f"The instance's host '{self.name}' has not answered since {iso(self.since)}{why}. Its state is "
            "unknown; with automaticRepairsPolicy enabled it is recreated on a healthy host after the grace period."
        )


DownHosts = Mapping[str, HostDown]


def down_hosts(s: Session) -> dict[str, HostDown]:
    """The Unhealthy hosts (usually none: one small indexed read per answer)."""
    rows = s.execute(select(Host.name, Host.health_reason, Host.health_since).where(Host.health == UNHEALTHY))
    return {name: HostDown(name, reason, since) for name, reason, since in rows}


def provisioning_status(down: HostDown) -> dict[str, Any]:
    return {
        "code": f"ProvisioningState/failed/{HOST_UNREACHABLE}",
        "level": "Error",
        "displayStatus": "Provisioning failed",
        "message": down.message(),
        "time": iso(down.since),
    }


def power_status() -> dict[str, Any]:
    return {"code": "PowerState/unknown", "level": "Warning", "displayStatus": "VM status unknown"}


def vm_health(down: HostDown | None) -> dict[str, Any]:
    if down is None:
        return {"status": {"code": "HealthState/healthy", "level": "Info", "displayStatus": "The VM is healthy"}}
    return {
        "status": {
            "code": "HealthState/unhealthy",
            "level": "Error",
            "displayStatus": "The VM is unhealthy",
            "message": down.message(),
            "time": iso(down.since),
        }
    }
