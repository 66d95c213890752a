"""Instances made by the libvirt driver before storage pools (files in ``<state_dir>/instances/<domain>/``) keep
working under this one: readiness and the console from the old file, a restart, a data disk added, a delete that
removes the old directory. One real VM (TCG), two boots.

The previous driver is this repository's own history (``PREVIOUS``, the last commit before pools), extracted with
``git archive`` and run in a subprocess with its source first on PYTHONPATH, as tests/store/test_upgrade.py does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

from altostratus.hypervisors import DataDisk
from altostratus.hypervisors.libvirt import LibvirtDriver
from altostratus.hypervisors.libvirt_xml import domain_name
from tests.support.libvirt_env import URI, build_images, ensure_libvirtd, remove_dir, shared_dir, wait_for

REPO = Path(__file__).resolve().parents[2]
PREVIOUS = "8f6b3ea80f652078aad2fa4fd7ecb95137135eea"  # main before the driver moved to storage pools
BOOT_TIMEOUT = 240.0

OLD_CREATE = """
import json, sys
from altostratus.hypervisors import InstanceSpec
from altostratus.hypervisors.libvirt import LibvirtDriver
args = json.loads(sys.argv[1])
driver = LibvirtDriver(args["uri"], state_dir=args["state_dir"])
driver.create(InstanceSpec(**args["spec"]))
driver.close()
"""


def previous_source(into: Path) -> Path:
    known = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS}^{{commit}}"], check=False)
    assert known.returncode == 0, f"git history lacks {PREVIOUS} (a shallow clone?): this test needs it"
    archive = into / "previous.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), PREVIOUS, "src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def test_an_instance_made_before_pools_keeps_working() -> None:
    ensure_libvirtd()
    root = shared_dir("alto-libvirt-upgrade-")
    image = build_images(root / "images", ["1.0.0"])["1.0.0"]
    state_dir = root / "state"
    key = f"{uuid.uuid4().hex[:10]}:0"
    spec = {
        "key": key, "vm_id": str(uuid.uuid4()), "computer_name": "upgraded0",
        "image_urn": "Altostratus:DemoLinux:demo:1.0.0", "image_version": "1.0.0", "disk_path": str(image),
        "memory_mb": 256, "tags": {"libvirt-upgrade-test": key},
    }  # fmt: skip
    old_src = previous_source(root)
    args = json.dumps({"uri": URI, "state_dir": str(state_dir), "spec": spec})
    env = {**os.environ, "PYTHONPATH": str(old_src)}
    subprocess.run([sys.executable, "-c", OLD_CREATE, args], check=True, env=env, timeout=300)
    legacy = state_dir / "instances" / domain_name(key)
    assert (legacy / "disk.qcow2").is_file(), "the old driver made files"

    driver = LibvirtDriver(URI, state_dir=state_dir, readiness_timeout=BOOT_TIMEOUT, shutdown_timeout=10.0)
    try:
        ready = lambda: (s := driver.get(key)) is not None and s.error is None and s.ready  # noqa: E731
        wait_for(ready, BOOT_TIMEOUT, "the old instance to be ready (its console is the old file)")
        assert "ALTOSTRATUS-READY" in driver.console_log(key)
        boots = driver.get(key).details["boot_count"]  # type: ignore[union-attr]
        driver.restart(key)
        assert not driver.get(key).ready  # type: ignore[union-attr]  # the old console was emptied for the boot
        wait_for(ready, BOOT_TIMEOUT, "the restarted old instance")
        assert driver.get(key).details["boot_count"] == boots + 1  # type: ignore[union-attr]
        assert driver.console_log(key).count("ALTOSTRATUS-READY") == 1
        driver.set_data_disks(key, (DataDisk("d0", 0, 1),))  # a new disk: a volume, beside the old files
        assert f"{domain_name(key)}.data-d0.qcow2" in driver.domain(key).XMLDesc(0)
        driver.delete(key)
        assert not legacy.exists() and driver.get(key) is None
    finally:
        driver.delete(key)
        driver.close()
        remove_dir(root)
