"""The seed's procedure as one guided action: scale a `latest` set out by N on the newest image version, wait for
the N new instances to run, then delete the N instances on older versions.

It runs on the server (an asyncio task in this process) with the person's token, so it goes on when the tab is
closed; every step is an ARM call the person could make themselves, and the set's page shows where it is.
Nothing is deleted before the new instances run: if they never do, the run stops and says why, and the older
instances are untouched.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from altostratus.portal import tenant_data as data
from altostratus.portal.arm import COMPUTE_API, ApiError, Arm
from altostratus.portal.tenant_data import EXPANDED

WAIT_SECONDS = 900  # for the new instances to run, and for the old ones to go
POLL_SECONDS = 1.0


@dataclass
class GuidedRun:
    set_path: str
    user: str
    step: str = "Starting"
    done: bool = False
    failed: bool = False
    old_ids: list[str] = field(default_factory=list)
    newest: str | None = None
    started: float = field(default_factory=time.time)

    def view(self) -> dict[str, Any]:
        return {"step": self.step, "done": self.done, "failed": self.failed, "newest": self.newest}


class GuidedRuns:
    """Runs by scale set (one at a time per set), kept after they end so the page can say how they ended."""

    def __init__(self, arm: Arm) -> None:
        self.arm = arm
        self.runs: dict[str, GuidedRun] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, set_path: str) -> GuidedRun | None:
        return self.runs.get(set_path.lower())

    def start(self, set_path: str, user: str, token: str) -> GuidedRun:
        current = self.get(set_path)
        if current is not None and not current.done:
            return current
        run = GuidedRun(set_path, user)
        self.runs[set_path.lower()] = run
        task = asyncio.get_running_loop().create_task(self._run(run, token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    async def _instances(self, token: str, path: str) -> list[dict[str, Any]]:
        vms = await self.arm.list_all(token, path + "/virtualMachines", COMPUTE_API, **EXPANDED)
        return [data.instance_row(vm) for vm in vms]

    async def _run(self, run: GuidedRun, token: str) -> None:
        try:
            await self._steps(run, token)
        except ApiError as err:
            run.step, run.failed = f"Stopped: {err.code}: {err.message}", True
        except Exception as exc:  # the run must end with a visible outcome whatever happened
            run.step, run.failed = f"Stopped: {exc}", True
        finally:
            run.done = True

    async def _steps(self, run: GuidedRun, token: str) -> None:
        path = run.set_path
        ss = await self.arm.call(token, "GET", path, COMPUTE_API)
        ref = ss["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
        sub = path.split("/")[2]
        versions = await data.image_versions(self.arm, token, sub, ref)
        if not versions:
            raise ApiError(404, "PlatformImageNotFound", "No version of the set's image is in this cloud.")
        run.newest = newest = versions[0]
        rows = await self._instances(token, path)
        run.old_ids = old = [r["instanceId"] for r in rows if r["version"] != newest]
        if not old:
            run.step = f"Nothing to do: every instance runs {newest}."
            return
        already_new = {r["instanceId"] for r in rows if r["version"] == newest}
        n = len(old)
        run.step = f"Scaling out by {n} on {newest}"
        capacity = int(ss["sku"]["capacity"]) + n
        await self.arm.call(token, "PATCH", path, COMPUTE_API, {"sku": {"capacity": capacity}})
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            rows = await self._instances(token, path)
            fresh = [r for r in rows if r["version"] == newest and r["instanceId"] not in already_new]
            running = [r for r in fresh if r["provisioningState"] == "Succeeded"]
            failed = [r for r in fresh if r["provisioningState"] == "Failed"]
            run.step = f"Waiting for the new instances: {len(running)} of {n} on {newest} running"
            if failed:
                raise ApiError(409, "NewInstancesFailed", f"{len(failed)} new instance(s) failed; older ones kept.")
            if len(running) >= n:
                break
            if time.monotonic() > deadline:
                raise ApiError(408, "Timeout", "The new instances did not all run in time; older ones kept.")
            await asyncio.sleep(POLL_SECONDS)
        run.step = f"Deleting the {n} older instance(s)"
        await self.arm.call(token, "POST", path + "/delete", COMPUTE_API, {"instanceIds": old})
        while True:
            left = [r for r in await self._instances(token, path) if r["instanceId"] in old]
            if not left:
                break
            run.step = f"Deleting the older instances: {n - len(left)} of {n} gone"
            if time.monotonic() > deadline:
                raise ApiError(408, "Timeout", f"{len(left)} older instance(s) are still being deleted.")
            await asyncio.sleep(POLL_SECONDS)
        run.step = f"Done: {n} instance(s) replaced; every instance runs {newest}."
