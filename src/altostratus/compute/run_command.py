"""POST virtualMachineScaleSets/{s}/virtualMachines/{i}/runCommand: a shell script run in the guest, output back.

The request is checked and recorded as an operation (202, ``Location``); an operation worker hands the script to
the hypervisor driver (``run_command``), which on libvirt speaks the QEMU guest agent protocol to the guest
(hypervisors/libvirt_agent.py; the demo images carry a small agent) and on ``sim`` runs nothing and says so in the
output (``[altostratus-sim]``). While the guest's agent does not answer yet (the instance is still booting) the
operation waits, up to ``AGENT_WAIT_SECONDS``. The result is Azure's ``RunCommandResult`` for Linux: one status
whose message is ``Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n...``, failed when the script exits non-zero.

Limits: ``RunShellScript`` only (the images are Linux); parameters become environment variables, as Azure passes
them; a script may run ``SCRIPT_TIMEOUT_SECONDS`` (it holds an operation worker that long, renewing the operation's
lease). A server killed while a script runs runs it again when the operation is taken up after the restart (at
least once, not exactly once).
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from starlette.responses import Response

from altostratus.arm import lro
from altostratus.arm.context import RequestContext
from altostratus.arm.errors import ArmError, invalid_parameter
from altostratus.arm.operations import OperationHandler, OperationTask, Pending, ProgressFn
from altostratus.compute.render import set_id
from altostratus.compute.vms import require_vm
from altostratus.hypervisors.base import CommandResult, DriverError, HypervisorDriver
from altostratus.store.db import Database

RUN_COMMAND = "vmss/runCommand"
COMMANDS = {"runshellscript": "RunShellScript"}
AGENT_WAIT_SECONDS = 180.0
SCRIPT_TIMEOUT_SECONDS = 600.0
HEARTBEAT_SECONDS = 15.0  # renews the operation's lease (60 s) while the script runs: no other worker takes it up
MAX_SCRIPT_BYTES = 256 * 1024
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _script(body: dict[str, Any]) -> str:
    command = str(body.get("commandId") or "")
    if COMMANDS.get(command.lower()) is None:
        raise invalid_parameter(
            f"The command '{command}' is not available for Linux instances here; use RunShellScript.", "commandId"
        )
    lines = body.get("script") or []
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines) or not lines:
        raise invalid_parameter("'script' must be a non-empty list of lines.", "script")
    exports = []
    for parameter in body.get("parameters") or []:
        if not isinstance(parameter, dict) or not NAME.match(str(parameter.get("name") or "")):
            raise invalid_parameter("Each parameter needs a name usable as an environment variable.", "parameters")
        exports.append(f"export {parameter['name']}={shlex.quote(str(parameter.get('value') or ''))}")
    script = "\n".join([*exports, *lines]) + "\n"
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        raise invalid_parameter(f"The script is larger than {MAX_SCRIPT_BYTES // 1024} KiB.", "script")
    return script


def run_command(ctx: RequestContext) -> Response:
    group, ss, row = require_vm(ctx)
    script = _script(ctx.json(required=True))
    if row.state not in ("Running", "Updating", "Creating") or row.desired_power != "running":
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Cannot run a command on instance {row.instance_id}: it is not running.",
        )
    op = lro.start_operation(
        ctx,
        namespace="Microsoft.Compute",
        kind=RUN_COMMAND,
        target=f"{set_id(group, ss)}/virtualMachines/{row.instance_id}",
        params={"key": row.key, "host": row.host, "script": script, "deadline": time.time() + AGENT_WAIT_SECONDS},
    )
    return lro.accepted(ctx, op)


def result_body(result: CommandResult) -> dict[str, Any]:
    ok = result.exit_code == 0
    head = (
        "Enable succeeded: "
        if ok
        else f"Enable failed: failed to execute command: command terminated with exit status={result.exit_code}"
    )
    return {
        "value": [
            {
                "code": f"ProvisioningState/{'succeeded' if ok else 'failed'}",
                "level": "Info" if ok else "Error",
                "displayStatus": f"Provisioning {'succeeded' if ok else 'failed'}",
                "message": f"{head}\n[stdout]\n{result.stdout}\n[stderr]\n{result.stderr}",
            }
        ]
    }


DriverFor = Callable[[str | None], HypervisorDriver]


def handler(drivers: HypervisorDriver | DriverFor) -> OperationHandler:
    """``drivers``: one driver, or the instance's host name -> its driver (compute/host_drivers.py)."""

    def run(db: Database, task: OperationTask, progress: ProgressFn) -> dict[str, Any] | None:
        started = time.monotonic()
        try:
            driver = drivers if isinstance(drivers, HypervisorDriver) else drivers(task.params.get("host"))
        except DriverError as err:
            return _failed(err, task)
        with ThreadPoolExecutor(1, thread_name_prefix="runcommand") as pool:
            future = pool.submit(driver.run_command, task.params["key"], task.params["script"], SCRIPT_TIMEOUT_SECONDS)
            while True:
                try:
                    result = future.result(timeout=HEARTBEAT_SECONDS)
                    break
                except FutureTimeout:
                    progress(None, {"runningSeconds": round(time.monotonic() - started)})  # renews the lease
                except DriverError as err:
                    return _failed(err, task)
        return {"body": result_body(result)}

    return run


def _failed(err: DriverError, task: OperationTask) -> dict[str, Any] | None:
    """A driver error: wait (Pending) while the guest's agent may still come up, else the operation fails."""
    if err.retryable and time.time() < float(task.params["deadline"]):
        raise Pending(2.0) from None
    if err.retryable or err.code == "InstanceNotFound":
        raise ArmError(
            409,
            "VMAgentStatusCommunicationError",
            f"The instance's guest agent did not answer within {AGENT_WAIT_SECONDS:g} s: {err.message}",
        ) from None
    raise ArmError(409, "RunCommandFailed", f"The command could not be run: {err.message}") from None


def register(router: Any, vm_t: str) -> None:
    base = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute"
    vm = base + "/virtualMachineScaleSets/{vmScaleSetName}/virtualMachines/{instanceId}"
    router.add("POST", vm + "/runCommand", run_command, resource_type=vm_t)


def register_operations(
    register_kind: Callable[[str, OperationHandler], None], drivers: HypervisorDriver | DriverFor
) -> None:
    register_kind(RUN_COMMAND, handler(drivers))
