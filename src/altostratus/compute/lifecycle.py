"""How scale-set operations end: the operation runner waits on the controller's observed generation, and
resource-group deletion hands scale sets to the controller (instances first, then the set)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from altostratus.arm.errors import ArmError
from altostratus.arm.operations import OperationTask, Pending, ProgressFn, park, settle
from altostratus.compute.models import ScaleSet, ScaleSetVm
from altostratus.store.db import Database
from altostratus.store.models import Operation, Resource

CONVERGE = "vmss/converge"  # the kind of the operations a scale-set write starts (scalesets.CONVERGE)


# How long a converge operation is left alone before the runner looks at it. The controller ends the operations
# waiting on a set when the set converges (finish_converged), fails for good (it releases them) or is deleted
# (finish_deleted), and writes their progress as instances change (report_progress): the look is only a safety
# net (a restart, a set moved to another group). Looking every 0.3 s, as before, cost each waiting operation
# two writes in the one writer lane several times a second, and under twenty clients PATCHing their sets the
# runner spent itself on those looks while resource-group deletions waited (issue 12, point 9).
CONVERGE_LOOK_SECONDS = 5.0


@dataclass(frozen=True)
class Instances:
    """What a converge operation reports of its set's instances (those not being deleted)."""

    ready: int
    total: int
    failed: int

    @classmethod
    def of(cls, s: Session, set_id: int) -> Instances:
        query = (
            select(ScaleSetVm.state, func.count())
            .where(ScaleSetVm.scale_set_id == set_id, ScaleSetVm.state != "Deleting")
            .group_by(ScaleSetVm.state)
        )
        counts: dict[str, int] = {state: n for state, n in s.execute(query)}
        return cls(counts.get("Running", 0), sum(counts.values()), counts.get("Failed", 0))

    def detail(self) -> dict[str, int]:
        return {"instancesReady": self.ready, "instances": self.total, "instancesFailed": self.failed}

    def percent(self) -> float | None:
        settled = self.ready + self.failed  # a failed instance is finished with, not ready
        return round(100.0 * settled / self.total, 1) if self.total else None


def converged_outcome(
    s: Session, ss: ScaleSet, instances: Instances, params: dict[str, Any]
) -> tuple[dict[str, Any] | None, ArmError | None]:
    """(result, error) of a converge operation whose generation the set has reached."""
    if ss.provisioning_state == "Failed" and ss.error:  # the controller gave up on the set itself
        set_error = ss.error
        code, message = set_error.get("code", "InternalExecutionError"), set_error.get("message", "unknown error")
        return None, ArmError(409, code, message)
    if instances.failed:
        failed = s.execute(
            select(ScaleSetVm.instance_id, ScaleSetVm.error)
            .where(ScaleSetVm.scale_set_id == ss.id, ScaleSetVm.state == "Failed")
            .order_by(ScaleSetVm.instance_id)
        ).all()
        first = (failed[0][1] or {}) if failed else {}
        return None, ArmError(
            409,
            first.get("code", "VMProvisioningFailed"),
            f"Instance(s) {', '.join(str(iid) for iid, _ in failed)} failed to provision: "
            f"{first.get('message', 'unknown error')}",
        )
    body = params.get("resultBody")  # what the request's synchronous answer would have been
    return ({"body": body} if body is not None else None), None


def converge_handler(db: Database, task: OperationTask, progress: ProgressFn) -> dict[str, Any] | None:
    """Pending until the controller has converged the generation the request produced (the controller usually
    ends the operation itself then: :func:`finish_converged`; this look is for the others, e.g. after a
    restart). Progress is written on every look, the last one included: a finished operation's figures describe
    the instances as they ended."""
    with db.session(readonly=True) as s:  # a look: it waits for no writer and holds none up
        ss = s.get(ScaleSet, task.params["scaleSetId"])
        if ss is not None:
            instances = Instances.of(s, ss.id)
            converged = ss.observed_generation >= task.params["generation"]
            result, error = converged_outcome(s, ss, instances, task.params) if converged else (None, None)
    # Outside the transaction: progress() writes in one of its own (nesting would wait on our own lock).
    if ss is None:
        # Deleted: a delete operation has succeeded; any other has nothing left to wait for.
        progress(100.0, {"instancesReady": 0, "instances": 0, "instancesFailed": 0})
        return None
    if not converged:
        progress(instances.percent(), instances.detail())
        raise Pending(CONVERGE_LOOK_SECONDS)
    progress(100.0, instances.detail())
    if error is not None:
        raise error
    return result


def converge_at_claim(s: Session, task: OperationTask, op: Operation) -> bool:
    """The runner's look at a converge operation, in its claim's transaction (what :func:`converge_handler` does
    in three: the claim, a read, then the end or the release). Why: a set PATCHed again before it converged
    keeps its earlier operations open, each looked at every ``CONVERGE_LOOK_SECONDS``; under twenty clients
    PATCHing their sets those looks were a steady share of the writer lane's turns."""
    ss = s.get(ScaleSet, task.params["scaleSetId"])
    if ss is None:
        # Deleted: a delete operation has succeeded; any other has nothing left to wait for.
        op.percent_complete, op.progress = 100.0, {"instancesReady": 0, "instances": 0, "instancesFailed": 0}
        settle(op)
        return True
    instances = Instances.of(s, ss.id)
    op.progress = instances.detail()
    if ss.observed_generation < task.params["generation"]:
        op.percent_complete = instances.percent()
        park(op, CONVERGE_LOOK_SECONDS)
        return True
    result, error = converged_outcome(s, ss, instances, task.params)
    op.percent_complete = 100.0
    settle(op, result=result, error=error)
    return True


def _waiting(s: Session, target: str) -> list[Operation]:
    """The set's converge operations still InProgress that no runner holds right now (a runner's look ends
    those); on PostgreSQL, rows another transaction holds are skipped, not waited for."""
    query = (
        select(Operation)
        .where(Operation.kind == CONVERGE, Operation.status == "InProgress", Operation.target == target)
        .where(Operation.lease_owner.is_(None))
        .with_for_update(skip_locked=True)
    )
    return list(s.scalars(query))


def finish_converged(s: Session, ss: ScaleSet, target: str) -> int:
    """Ends, in the controller's transaction that records the set's convergence, the set's converge operations
    whose generation it has reached; returns how many. Why: each would otherwise cost the runner a claim, a
    look and a finish (writes in the one writer lane) to learn what this transaction knows."""
    ops = [op for op in _waiting(s, target) if int(op.params.get("generation", 0)) <= ss.observed_generation]
    if not ops:
        return 0
    instances = Instances.of(s, ss.id)
    for op in ops:
        result, error = converged_outcome(s, ss, instances, op.params)
        op.progress = instances.detail()
        settle(op, result=result, error=error)
    return len(ops)


def finish_deleted(s: Session, target: str) -> None:
    """The set is gone (its deletion finished in this transaction): the operations waiting on it have nothing
    left to wait for, as a look would find."""
    for op in _waiting(s, target):
        op.progress = {"instancesReady": 0, "instances": 0, "instancesFailed": 0}
        settle(op)


def report_progress(s: Session, set_id: int, target: str) -> None:
    """The set's instances changed in this transaction: the operations waiting on it show the new figures
    (what their look would write, without the look)."""
    # As in _waiting: rows another transaction holds (a runner claiming one) are skipped, never waited for.
    ids = s.scalars(
        select(Operation.id)
        .where(Operation.kind == CONVERGE, Operation.status == "InProgress", Operation.target == target)
        .where(Operation.lease_owner.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return
    instances = Instances.of(s, set_id)
    s.execute(
        update(Operation)
        .where(Operation.id.in_(ids))
        .values(percent_complete=instances.percent(), progress=instances.detail())
        .execution_options(synchronize_session=False)
    )


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
