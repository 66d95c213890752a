"""How scale-set operations end: the operation runner waits on the controller's observed generation, and
resource-group deletion hands scale sets to the controller (instances first, then the set)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select, update

from altostratus.arm.errors import ArmError
from altostratus.arm.operations import OperationTask, Pending, ProgressFn
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.store.db import Database
from altostratus.store.models import Resource


def converge_handler(db: Database, task: OperationTask, progress: ProgressFn) -> dict[str, Any] | None:
    """Pending until the controller has converged the generation the request produced. Progress is written on
    every look, the last one included: a finished operation's figures describe the instances as they ended."""
    with db.session(readonly=True) as s:  # a look: it waits for no writer and holds none up
        ss = s.get(ScaleSet, task.params["scaleSetId"])
        if ss is not None:
            query = select(ScaleSetVm).where(ScaleSetVm.scale_set_id == ss.id, ScaleSetVm.state != "Deleting")
            rows = list(s.scalars(query))
            converged = ss.observed_generation >= task.params["generation"]
            # The controller gave up on the set itself (its pass kept failing), not on an instance.
            set_error = ss.error if ss.provisioning_state == "Failed" else None
            ready = sum(1 for r in rows if r.state == "Running")
            failed = [(r.instance_id, r.error or {}) for r in rows if r.state == "Failed"]
    # Outside the transaction: progress() writes in one of its own (nesting would wait on our own lock).
    if ss is None:
        # Deleted: a delete operation has succeeded; any other has nothing left to wait for.
        progress(100.0, {"instancesReady": 0, "instances": 0, "instancesFailed": 0})
        return None
    detail = {"instancesReady": ready, "instances": len(rows), "instancesFailed": len(failed)}
    if not converged:
        settled = ready + len(failed)  # a failed instance is finished with, not ready
        progress(round(100.0 * settled / len(rows), 1) if rows else None, detail)
        raise Pending()
    progress(100.0, detail)
    if set_error:
        raise ArmError(409, set_error.get("code", "InternalExecutionError"), set_error.get("message", "unknown error"))
    if failed:
        first = failed[0][1]
        raise ArmError(
            409,
            first.get("code", "VMProvisioningFailed"),
            f"Instance(s) {', '.join(str(iid) for iid, _ in failed)} failed to provision: "
            f"{first.get('message', 'unknown error')}",
        )
    body = task.params.get("resultBody")  # what the request's synchronous answer would have been
    return {"body": body} if body is not None else None


def scale_set_deleter(wake: Callable[[], None]) -> Callable[[Database, int], bool]:
    def delete(db: Database, resource_row_id: int) -> bool:
        with db.session() as s:
            res = s.get(Resource, resource_row_id)
            if res is None:
                return True
            ss = s.scalars(
                select(ScaleSet).where(
                    ScaleSet.resource_group_id == res.resource_group_id, ScaleSet.name_key == res.name_key
                )
            ).one_or_none()
            if ss is None:
                return True
            if not ss.deleting:
                ss.deleting, ss.provisioning_state, ss.generation = True, "Deleting", ss.generation + 1
                s.execute(update(ScaleSetVm).where(ScaleSetVm.scale_set_id == ss.id).values(state="Deleting"))
        wake()
        return False

    return delete
