"""Commands in libvirt guests through the QEMU guest agent protocol (``runCommand``).

Every domain has the standard agent channel (a virtio-serial port named ``org.qemu.guest_agent.0``); libvirt
owns its socket and relays commands (``virDomainQemuAgentCommand``), which also works for hosts reached over a
remote libvirt URI. The driver uses only the agent's standard commands: ``guest-exec`` (``/bin/sh`` with the
script as ``input-data``, output captured) and ``guest-exec-status`` until the process has exited. So any guest
running qemu-ga answers, and so does the demo image's small busybox agent (marketplace/demo_agent.sh), which
implements just ``guest-sync``, ``guest-ping``, ``guest-exec`` and ``guest-exec-status``.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import libvirt
import libvirt_qemu

from altostratus.hypervisors.base import CommandResult, DriverError

AGENT_CHANNEL = "org.qemu.guest_agent.0"
CALL_TIMEOUT = 10  # seconds libvirt waits for one agent answer
POLL_SECONDS = 0.5
# libvirt's answers while the guest has no agent listening (booting, no agent in the image, agent busy).
NOT_READY = {
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
    libvirt.VIR_ERR_OPERATION_INVALID,  # the domain is not running
    getattr(libvirt, "VIR_ERR_AGENT_UNSYNCED", -1),
    getattr(libvirt, "VIR_ERR_AGENT_COMMAND_TIMEOUT", -1),
}


def _call(dom: Any, key: str, command: str, arguments: dict[str, Any]) -> Any:
    request = json.dumps({"execute": command, "arguments": arguments})
    try:
        answer = libvirt_qemu.qemuAgentCommand(dom, request, CALL_TIMEOUT, 0)
    except libvirt.libvirtError as exc:
        message = exc.get_error_message() or str(exc)
        if exc.get_error_code() in NOT_READY or "agent" in message.lower():
            raise DriverError(
                "GuestAgentUnavailable", f"the guest agent of {key!r} does not answer: {message}", retryable=True
            ) from exc
        raise DriverError("GuestAgentFailed", f"{command} on {key!r}: {message}") from exc
    try:
        return json.loads(answer)["return"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DriverError("GuestAgentFailed", f"{command} on {key!r}: unexpected answer {answer[:200]!r}") from exc


def _text(data: Any) -> str:
    if not isinstance(data, str) or not data:
        return ""
    try:
        return base64.b64decode(data).decode("utf-8", "replace")
    except (ValueError, TypeError):
        return ""


def run(dom: Any, key: str, script: str, timeout: float) -> CommandResult:
    """Run ``script`` with ``/bin/sh`` in the guest and wait (at most ``timeout`` seconds) for it to exit."""
    started = _call(
        dom,
        key,
        "guest-exec",
        {
            "path": "/bin/sh",
            "input-data": base64.b64encode(script.encode()).decode(),
            "capture-output": True,
        },
    )
    pid = started.get("pid") if isinstance(started, dict) else None
    if not isinstance(pid, int):
        raise DriverError("GuestAgentFailed", f"guest-exec on {key!r} gave no pid: {started!r}")
    deadline = time.monotonic() + timeout
    while True:
        status = _call(dom, key, "guest-exec-status", {"pid": pid})
        if isinstance(status, dict) and status.get("exited"):
            return CommandResult(
                int(status.get("exitcode", -1)), _text(status.get("out-data")), _text(status.get("err-data"))
            )
        if time.monotonic() > deadline:
            raise DriverError("CommandTimedOut", f"the command in {key!r} did not end within {timeout:g} s")
        time.sleep(POLL_SECONDS)
