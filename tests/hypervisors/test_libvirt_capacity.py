"""A libvirt host's health and capacity as the host monitor asks them (hypervisors/libvirt_capacity.py), against
the real libvirtd: no VM needed. A URI whose daemon is not there is HostUnreachable (retryable), never a hang."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from altostratus.hypervisors import DriverError
from altostratus.hypervisors.libvirt import LibvirtDriver
from tests.support.libvirt_env import URI


def test_a_live_host_answers_and_reports_its_capacity(tmp_path: Path) -> None:
    with LibvirtDriver(URI, state_dir=tmp_path, sweep=False) as driver:
        driver.ping()
        capacity = driver.host_capacity()
    assert capacity is not None
    assert capacity.cores == os.cpu_count() or capacity.cores >= 1
    assert capacity.memory_mb > 256 and capacity.disk_gb >= 0


def test_a_host_whose_daemon_is_gone_is_unreachable(tmp_path: Path) -> None:
    gone = f"qemu+unix:///system?socket={tmp_path / 'no-such-libvirt-sock'}"
    with LibvirtDriver(gone, state_dir=tmp_path / "state", sweep=False) as driver:
        with pytest.raises(DriverError) as err:
            driver.ping()
        assert err.value.code == "HostUnreachable" and err.value.retryable
        with pytest.raises(DriverError):
            driver.host_capacity()


def test_a_registered_libvirt_host_is_watched_by_the_monitor(tmp_path: Path) -> None:
    """Through the admin API of a running server: the host reports its capacity and is Healthy within a round;
    a registered URI with no daemon behind it is Unhealthy with the reason."""
    import time

    from tests.support.server import AltoServer

    server = AltoServer(tmp_path / "data").start()
    try:
        sub = server.credentials["operator"]["subscriptionId"]
        base = f"/subscriptions/{sub}/providers/Microsoft.Compute.Admin/locations/local/hosts"
        api = "api-version=2015-12-01-preview"
        dead = f"qemu+unix:///system?socket={tmp_path / 'gone-sock'}"
        with server.client("operator") as http:
            for name, uri in (("real", URI), ("dead", dead)):
                r = http.put(f"{base}/{name}?{api}", json={"properties": {"uri": uri}})
                assert r.status_code == 201, r.text
                assert http.post(f"{base}/{name}/drain?{api}").status_code == 200  # no VMs of other tests here
            deadline = time.time() + 15
            while True:
                hosts = {h["name"]: h["properties"] for h in http.get(f"{base}?{api}").json()["value"]}
                if hosts["real"]["health"] != "Unknown" and hosts["dead"]["health"] != "Unknown":
                    break
                assert time.time() < deadline, hosts
                time.sleep(0.5)
        assert hosts["real"]["health"] == "Healthy" and hosts["real"]["kind"] == "libvirt", hosts["real"]
        assert hosts["real"]["capacity"]["cores"] >= 1 and hosts["real"]["capacity"]["memoryMB"] > 256
        assert hosts["dead"]["health"] == "Unhealthy" and "gone-sock" in hosts["dead"]["healthReason"], hosts["dead"]
    finally:
        server.close()
