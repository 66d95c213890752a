"""What a libvirt domain state means for an instance: its power state, readiness and boot error.

Two facts decide it: the state libvirt reports (running, shut off and why, paused...) and the power state we
want, kept in the instance's record. A domain that is off while we want it running stopped on its own (an
error, unless a boot is pending); one still running while we want it off is still stopping. Kept apart from
the driver as a pure function, because this table is the driver's contract with the controller
(docs/libvirt.md, "Power").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import libvirt

from altostratus.hypervisors.base import PowerState
from altostratus.hypervisors.libvirt_readiness import ReadyScan
from altostratus.hypervisors.libvirt_xml import InstanceRecord

__all__ = ["STATE_NAMES", "Observation", "is_active", "observe"]

_SHUTOFF_REASONS = {
    0: "unknown reason",
    1: "the guest powered off",
    2: "destroyed",
    3: "the guest crashed",
    4: "migrated",
    5: "saved",
    6: "QEMU failed",
    7: "restored from a snapshot",
    8: "daemon shutdown",
}
STATE_NAMES = {
    0: "nostate",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",
    5: "shutoff",
    6: "crashed",
    7: "pmsuspended",
}
"""libvirt domain states by number, for the instance view's ``libvirt_state``."""


@dataclass(frozen=True, slots=True)
class Observation:
    power: PowerState
    ready: bool
    error: str | None
    scan: ReadyScan | None
    """The console scan, when the state needed one (the domain runs and we want it running)."""


def is_active(state: int) -> bool:
    """A QEMU process exists for the domain (whatever the guest does in it)."""
    return state not in (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_NOSTATE, libvirt.VIR_DOMAIN_CRASHED)


def observe(
    rec: InstanceRecord,
    state: int,
    reason: int,
    *,
    scan: Callable[[], ReadyScan],
    now: float,
    readiness_timeout: float,
    pattern: str,
) -> Observation:
    """The instance's view from libvirt's ``(state, reason)`` and our record; ``scan`` reads the console of
    the current boot, and is only called when readiness is in question."""
    if rec.power != "running":
        target = PowerState(rec.power)
        if is_active(state):
            target = PowerState.STOPPING if target == PowerState.STOPPED else PowerState.DEALLOCATING
        return Observation(target, False, None, None)
    if state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED):
        seen = scan()
        if seen.ready:
            return Observation(PowerState.RUNNING, True, None, seen)
        if rec.error:
            return Observation(PowerState.RUNNING, False, rec.error, seen)
        if now - rec.boot_started > readiness_timeout:
            error = f"boot timed out after {readiness_timeout:g} s: no {pattern!r} on the serial console"
            return Observation(PowerState.RUNNING, False, error, seen)
        return Observation(PowerState.STARTING, False, None, seen)
    if state == libvirt.VIR_DOMAIN_PAUSED:
        error = f"the domain is paused (reason {reason}; QEMU stopped the guest, e.g. a KVM internal error)"
        return Observation(PowerState.RUNNING, False, error, None)
    if state == libvirt.VIR_DOMAIN_SHUTDOWN:
        return Observation(PowerState.STOPPING, False, "the guest is shutting itself down", None)
    if state == libvirt.VIR_DOMAIN_PMSUSPENDED:
        return Observation(PowerState.STOPPED, False, "the guest suspended itself", None)
    if rec.boot_pending:
        return Observation(PowerState.STARTING, False, None, None)
    why = _SHUTOFF_REASONS.get(reason, f"reason {reason}") if state == libvirt.VIR_DOMAIN_SHUTOFF else ""
    if state == libvirt.VIR_DOMAIN_CRASHED:
        why = "the guest crashed"
    return Observation(PowerState.STOPPED, False, rec.error or f"the domain stopped unexpectedly ({why})", None)
