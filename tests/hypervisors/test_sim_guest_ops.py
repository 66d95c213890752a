"""The sim driver's data disks and runCommand: disks are recorded (and survive a new driver on the same state
dir), a command is answered with the marker that says nothing ran, and only once the simulated guest is ready."""

from __future__ import annotations

from pathlib import Path

import pytest

from altostratus.hypervisors import DataDisk, DriverError, InstanceSpec
from altostratus.hypervisors.sim import SIM_RUN_MARKER, SimDriver


def spec(disks: tuple[DataDisk, ...] = (DataDisk("d3", 3, 2), DataDisk("d0", 0, 4, "ReadOnly"))) -> InstanceSpec:
    return InstanceSpec(
        key="set:0",
        vm_id="vm-0",
        computer_name="web000000",
        image_urn="A:B:C:1.0.0",
        image_version="1.0.0",
        data_disks=disks,
    )


def test_data_disks_are_recorded_and_persist(tmp_path: Path) -> None:
    driver = SimDriver(state_dir=tmp_path)
    state = driver.create(spec())
    assert [d.lun for d in state.data_disks] == [0, 3], "kept by lun"
    driver.set_data_disks("set:0", (DataDisk("d0", 0, 4, "ReadOnly"), DataDisk("d1", 1, 1)))
    again = SimDriver(state_dir=tmp_path).get("set:0")
    assert again is not None and [(d.name, d.lun, d.size_gb) for d in again.data_disks] == [("d0", 0, 4), ("d1", 1, 1)]
    with pytest.raises(DriverError) as err:
        driver.set_data_disks("nothere", ())
    assert err.value.code == "InstanceNotFound"


def test_spec_refuses_two_disks_on_one_lun() -> None:
    with pytest.raises(ValueError):
        spec((DataDisk("a", 0, 1), DataDisk("b", 0, 1)))
    with pytest.raises(ValueError):
        DataDisk("a", 64, 1)


def test_run_command_is_marked_simulated_and_waits_for_the_guest() -> None:
    now = [1000.0]
    driver = SimDriver(boot_seconds=5, clock=lambda: now[0])
    driver.create(spec())
    with pytest.raises(DriverError) as err:
        driver.run_command("set:0", "echo hi\n")
    assert err.value.code == "GuestAgentUnavailable" and err.value.retryable
    now[0] += 5
    result = driver.run_command("set:0", "echo hi\nuname\n")
    assert result.simulated and result.exit_code == 0 and result.stderr == ""
    assert result.stdout.startswith(SIM_RUN_MARKER) and "2 lines" in result.stdout
