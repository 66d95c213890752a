"""Rolling upgrades: bring instances to the current model in batches, stopping when too many are unhealthy.

The API starts one (a model change under ``upgradePolicy.mode = Rolling``, or ``POST osRollingUpgrade``) by
recording the instances to upgrade; the controller calls :func:`advance` on every pass: it waits for the
current batch, checks health against ``maxUnhealthyUpgradedInstancePercent`` / ``maxUnhealthyInstancePercent``,
honours ``pauseTimeBetweenBatches`` and starts the next batch of ``maxBatchInstancePercent``. Progress and
the outcome are what ``GET rollingUpgrades/latest`` shows.

The image an upgrade moves instances to is resolved by the request that starts it and recorded as its
``target`` (exact version and disk blob); batches use that record and never resolve again, so a version deleted
mid-upgrade cannot fail a batch halfway through. The upgrade holds a reference on the target's blob until it
ends, so that deletion cannot garbage-collect the disk the remaining batches need either.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.blobs.store import BlobStore
from altostratus.compute import data_disks, service
from altostratus.compute.model import image_reference
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.store.db import as_utc, iso, utcnow

DEFAULTS = {
    "maxBatchInstancePercent": 20,
    "maxUnhealthyInstancePercent": 20,
    "maxUnhealthyUpgradedInstancePercent": 20,
    "pauseTimeBetweenBatches": "PT0S",
}
HOLDER = "rollingUpgrade"  # blob references an upgrade holds on its target, by scale-set unique id
DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(text: str) -> float:
    m = DURATION.match(text or "PT0S")
    if not m or text in ("P", "PT"):
        raise invalid_parameter(f"'{text}' is not an ISO 8601 duration such as PT5S.", "pauseTimeBetweenBatches")
    d, h, mi, sec = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(sec or 0)


def policy_of(model: dict[str, Any]) -> dict[str, Any]:
    given = ((model.get("upgradePolicy") or {}).get("rollingUpgradePolicy")) or {}
    policy = {**DEFAULTS, **{k: v for k, v in given.items() if k in DEFAULTS}}
    for key in ("maxBatchInstancePercent", "maxUnhealthyInstancePercent", "maxUnhealthyUpgradedInstancePercent"):
        value = policy[key]
        low = 0 if key == "maxUnhealthyUpgradedInstancePercent" else 5
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 100:
            raise invalid_parameter(f"'{key}' must be between {low} and 100.", f"rollingUpgradePolicy.{key}")
    parse_duration(str(policy["pauseTimeBetweenBatches"]))
    return policy


def start(
    s: Session,
    ss: ScaleSet,
    rows: list[ScaleSetVm],
    *,
    reimage: bool,
    source: service.ImageSource,
    extensions_only: bool = False,
) -> None:
    """Record an upgrade of ``rows``; its target image is resolved now (from ``source``, the request's image) if
    any instance will need a new disk, and refused now if it is not available. ``extensions_only`` (POST
    extensionRollingUpgrade): batches record the set's extensions on their instances and touch no disk.

    The upgrades before this one are kept, short, in ``history`` (GET osUpgradeHistory reads it)."""
    if ss.rolling_active:
        raise ArmError(409, "RollingUpgradeInProgress", f"A rolling upgrade of '{ss.name}' is already in progress.")
    ref = image_reference(ss.model)
    needs_disk = not extensions_only and (reimage or any(service.needs_new_disk(r, ref) for r in rows))
    target = source() if rows and needs_disk else None
    history = list((ss.rolling or {}).get("history") or [])
    if ss.rolling:
        history = [*history, summary(ss.rolling)][-HISTORY:]
    ss.rolling = {
        "history": history,
        "extensionsOnly": extensions_only,
        "policy": policy_of(ss.model),
        "status": "RollingForward",
        "startTime": iso(utcnow()),
        "reimage": reimage,
        "pending": [r.instance_id for r in rows],
        "current": [],
        "done": [],
        "failed": [],
        "pauseUntil": None,
        "error": None,
        "target": target.record() if target else None,
    }
    ss.rolling_active = bool(rows)
    if not rows:
        ss.rolling = {**ss.rolling, "status": "Completed", "endTime": iso(utcnow())}
    elif target is not None:
        BlobStore.add_ref(s, target.blob_sha256, HOLDER, ss.unique_id)


def retarget(s: Session, ss: ScaleSet, rows: list[ScaleSetVm], source: service.ImageSource) -> None:
    """A model change while an upgrade runs: the batches still to come bring instances to the new model, so
    they need its image when it takes a new disk - resolved now, by the request, like at the start."""
    state = dict(ss.rolling or {})
    if not ss.rolling_active or state.get("status") != "RollingForward":
        return
    ref = image_reference(ss.model)
    if not any(service.needs_new_disk(r, ref) for r in rows):
        return  # the same image: the recorded target stands (``latest`` is not resolved again)
    target = source()
    state["target"] = target.record()
    ss.rolling = state
    BlobStore.drop_refs(s, HOLDER, ss.unique_id)
    BlobStore.add_ref(s, target.blob_sha256, HOLDER, ss.unique_id)


def end(s: Session, ss: ScaleSet, state: dict[str, Any]) -> None:
    """The upgrade is over (completed, faulted or cancelled): the instances it upgraded hold their disks
    themselves, so it lets go of its target (a garbage collection may follow)."""
    ss.rolling, ss.rolling_active = state, False
    BlobStore.drop_refs(s, HOLDER, ss.unique_id)


def fault(s: Session, ss: ScaleSet, error: dict[str, Any]) -> None:
    """Stop a running upgrade as Faulted with ``error`` (the controller could not carry it on)."""
    if ss.rolling_active and ss.rolling is not None:
        end(s, ss, {**ss.rolling, "status": "Faulted", "endTime": iso(utcnow()), "error": error})


def _target(state: dict[str, Any]) -> service.ResolvedImage:
    if not state.get("target"):
        # Started by a version that did not record targets: resolving now could pick another image, so stop.
        raise ArmError(
            409,
            "RollingUpgradeTargetUnknown",
            "This rolling upgrade does not record the image it upgrades to; cancel it and start it again.",
        )
    return service.ResolvedImage.from_record(state["target"])


def cancel(s: Session, ss: ScaleSet) -> None:
    if not ss.rolling_active or ss.rolling is None:
        raise ArmError(409, "NoRollingUpgradeInProgress", f"No rolling upgrade of '{ss.name}' is in progress.")
    end(s, ss, {**ss.rolling, "status": "Cancelled", "pending": [], "endTime": iso(utcnow())})


def advance(s: Session, ss: ScaleSet) -> bool:
    """One step; returns True while the upgrade still needs passes."""
    state = dict(ss.rolling or {})
    if not ss.rolling_active or state.get("status") != "RollingForward":
        return False
    rows = {r.instance_id: r for r in service.live_rows(s, ss)}
    current = [i for i in state["current"] if i in rows]
    if any(rows[i].state in ("Creating", "Updating") for i in current):
        return True
    if current:
        state["failed"] += [i for i in current if rows[i].state == "Failed"]
        state["done"] += [i for i in current if rows[i].state != "Failed"]
        state["current"] = []
        policy = state["policy"]
        upgraded = len(state["done"]) + len(state["failed"])
        unhealthy_all = sum(1 for r in rows.values() if r.state == "Failed")
        if 100 * len(state["failed"]) / max(upgraded, 1) > policy["maxUnhealthyUpgradedInstancePercent"] or (
            100 * unhealthy_all / max(len(rows), 1) > policy["maxUnhealthyInstancePercent"]
        ):
            state.update(
                status="Faulted",
                endTime=iso(utcnow()),
                error={
                    "code": "MaxUnhealthyInstancePercentExceededInRollingUpgrade",
                    "message": f"The rolling upgrade stopped: {len(state['failed'])} of {upgraded} upgraded "
                    "instances are unhealthy, more than the policy allows.",
                },
            )
            end(s, ss, state)
            return False
        state["pauseUntil"] = iso(utcnow() + timedelta(seconds=parse_duration(str(policy["pauseTimeBetweenBatches"]))))
    pending = [i for i in state["pending"] if i in rows]
    if not pending:
        state.update(status="Completed", endTime=iso(utcnow()), pending=[])
        end(s, ss, state)
        return False
    if state.get("pauseUntil") and as_utc(_parse(state["pauseUntil"])) > utcnow():
        ss.rolling = state
        return True
    size = max(1, math.ceil(len(rows) * state["policy"]["maxBatchInstancePercent"] / 100))
    batch, state["pending"] = pending[:size], pending[size:]
    targets = [rows[i] for i in batch]
    source = lambda: _target(state)  # noqa: E731 - asked only if a batch needs a disk
    if state.get("extensionsOnly"):
        ref = image_reference(ss.model)
        for r in targets:  # extensions are control plane: the instance has them once it records the model
            if not service.needs_new_disk(r, ref):
                r.model_revision = ss.model_revision
                data_disks.sync_to_model(ss, r)
    elif state["reimage"]:
        service.reimage(s, ss, targets, source, to_model=True)
    else:
        service.upgrade(s, ss, targets, source)
        for r in targets:
            if r.state == "Running":
                r.reimage_requested += 1  # a rolling batch restarts each instance on the new model
                r.state = "Updating"
    state["current"] = batch
    ss.rolling = state
    return True


HISTORY = 10  # earlier upgrades kept for osUpgradeHistory


def summary(state: dict[str, Any]) -> dict[str, Any]:
    """An upgrade as osUpgradeHistory lists it (without its history, its batches or its instance ids)."""
    keep = ("status", "startTime", "endTime", "reimage", "extensionsOnly", "error", "target", "policy")
    out = {k: state.get(k) for k in keep}
    out["counts"] = {k: len(state.get(k) or []) for k in ("done", "failed", "current", "pending")}
    return out


def _parse(text: str) -> Any:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def render(ss: ScaleSet) -> dict[str, Any]:
    state = ss.rolling or {}
    progress = {
        "successfulInstanceCount": len(state.get("done", [])),
        "failedInstanceCount": len(state.get("failed", [])),
        "inProgressInstanceCount": len(state.get("current", [])),
        "pendingInstanceCount": len(state.get("pending", [])),
    }
    body: dict[str, Any] = {
        "location": ss.location,
        "properties": {
            "policy": state.get("policy", DEFAULTS),
            "runningStatus": {
                "code": state.get("status"),
                "startTime": state.get("startTime"),
                "lastAction": "Start" if state.get("status") != "Cancelled" else "Cancel",
                "lastActionTime": state.get("endTime") or state.get("startTime"),
            },
            "progress": progress,
        },
    }
    if state.get("error"):
        body["properties"]["error"] = state["error"]
    return body
