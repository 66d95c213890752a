"""The runCommand operation's handler with a stand-in driver: the lease is renewed while a script runs, a guest
whose agent does not answer yet is waited for (Pending) until the deadline, then the operation fails clearly."""

from __future__ import annotations

import time
from typing import Any

import pytest

from altostratus.arm.errors import ArmError
from altostratus.arm.operations import OperationTask, Pending
from altostratus.compute import run_command
from altostratus.hypervisors import CommandResult, DriverError
from altostratus.hypervisors.sim import SimDriver


class SlowGuest(SimDriver):
    def __init__(self, seconds: float = 0.0, error: DriverError | None = None) -> None:
        super().__init__()
        self.seconds, self.error = seconds, error

    def run_command(self, key: str, script: str, timeout: float = 60.0) -> CommandResult:
        time.sleep(self.seconds)
        if self.error is not None:
            raise self.error
        return CommandResult(1, "out\n", "err\n")


def task(deadline: float) -> OperationTask:
    params = {"key": "k", "script": "false\n", "deadline": deadline}
    return OperationTask("op", "sub", run_command.RUN_COMMAND, "/target", params, 1)


def test_the_lease_is_renewed_while_the_script_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_command, "HEARTBEAT_SECONDS", 0.05)
    beats: list[Any] = []
    out = run_command.handler(SlowGuest(0.4))(None, task(time.time() + 60), lambda p, d: beats.append(d))  # type: ignore[arg-type]
    assert beats and all("runningSeconds" in b for b in beats)
    assert out is not None
    [status] = out["body"]["value"]
    assert status["code"] == "ProvisioningState/failed" and status["level"] == "Error"
    assert status["message"].startswith(
        "Enable failed: failed to execute command: command terminated with exit status=1"
    )
    assert status["message"].endswith("[stdout]\nout\n\n[stderr]\nerr\n")


def test_an_agent_that_does_not_answer_is_waited_for_then_fails() -> None:
    busy = DriverError("GuestAgentUnavailable", "booting", retryable=True)
    with pytest.raises(Pending):
        run_command.handler(SlowGuest(error=busy))(None, task(time.time() + 60), lambda p, d: None)  # type: ignore[arg-type]
    with pytest.raises(ArmError) as err:
        run_command.handler(SlowGuest(error=busy))(None, task(time.time() - 1), lambda p, d: None)  # type: ignore[arg-type]
    assert (err.value.status, err.value.code) == (409, "VMAgentStatusCommunicationError")
    with pytest.raises(ArmError) as err:
        run_command.handler(SlowGuest(error=DriverError("CommandTimedOut", "slow")))(  # type: ignore[arg-type]
            None, task(time.time() + 60), lambda p, d: None
        )
    assert err.value.code == "RunCommandFailed" and "slow" in err.value.message
