"""Demo OS images: built for real from the host's Debian kernel and busybox, and booted in QEMU (TCG).

Needs the packages named in docs/demo-images.md; a missing one fails (never skips) with what to install.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from altostratus.cli.images import images_app
from altostratus.marketplace.demo_images import (
    BOOT_DIR,
    DemoImageError,
    allocated_bytes,
    build_demo_image,
    check_prerequisites,
)

BOOT_TIMEOUT = 120.0


def _build(out: Path, *, version: str = "1.1.0", boot_dir: Path = BOOT_DIR) -> Path:
    return build_demo_image(
        out, publisher="TestPublisher", offer="TestOffer", sku="test-sku", version=version, boot_dir=boot_dir
    )


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    problems = check_prerequisites()
    assert not problems, problems
    return _build(tmp_path_factory.mktemp("demo") / "demo.raw")


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not path:
        pytest.fail(f"{name} not found: install it with `apt-get install -y {package}`")
    return path


def _nocloud_seed(path: Path, files: dict[str, str]) -> Path:
    """A vfat NoCloud seed labelled cidata, as a hypervisor driver would attach it."""
    mkfs, mcopy = _tool("mkfs.vfat", "dosfstools"), _tool("mcopy", "mtools")
    subprocess.run([mkfs, "-n", "cidata", "-C", str(path), "2048"], check=True, capture_output=True)
    for name, text in files.items():
        (path.parent / name).write_text(text)
        subprocess.run([mcopy, "-i", str(path), str(path.parent / name), "::"], check=True, capture_output=True)
    return path


def _wait_for(log: Path, marker: str, proc: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if marker in text:
            return text
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    text = log.read_text(errors="replace") if log.exists() else ""
    pytest.fail(f"no {marker!r} on the serial console within {timeout:.0f} s; console:\n{text[-3000:]}")


def test_image_is_sparse_and_has_an_active_mbr_partition(image: Path) -> None:
    size = image.stat().st_size
    assert size == 256 << 20
    assert allocated_bytes(image) < size * 0.25
    with image.open("rb") as f:
        mbr = f.read(512)
    assert mbr[510:] == b"\x55\xaa"
    assert mbr[446] == 0x80  # the first partition is active: SYSLINUX's MBR boots it
    assert int.from_bytes(mbr[454:458], "little") == 2048


def test_same_inputs_give_the_same_bytes(image: Path, tmp_path: Path) -> None:
    again = _build(tmp_path / "again.raw")
    assert again.read_bytes() == image.read_bytes()


def test_boots_by_bios_and_applies_nocloud_seed(image: Path, tmp_path: Path) -> None:
    qemu = _tool("qemu-system-x86_64", "qemu-system-x86")
    seed = _nocloud_seed(
        tmp_path / "seed.img",
        {
            "meta-data": "instance-id: iid-demo-42\nlocal-hostname: vmss-demo-000001\n",
            "user-data": "#!/bin/sh\necho USERDATA-MARKER-$(( 6 * 7 )) on $(hostname)\n",
        },
    )
    log, monitor = tmp_path / "serial.log", tmp_path / "monitor.sock"
    cmd = [qemu, "-machine", "accel=tcg", "-m", "256", "-nographic", "-serial", f"file:{log}"]
    cmd += ["-monitor", f"unix:{monitor},server,nowait", "-nic", "none"]
    cmd += ["-drive", f"file={image},format=raw,if=virtio,snapshot=on", "-drive", f"file={seed},format=raw,if=virtio"]
    before = image.read_bytes()
    started = time.monotonic()
    with (tmp_path / "qemu.err").open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        console = _wait_for(log, "ALTOSTRATUS-READY", proc, BOOT_TIMEOUT)
        print(f"boot to READY under TCG: {time.monotonic() - started:.1f} s")
        lines = console.splitlines()
        assert "ALTOSTRATUS-IMAGE publisher=TestPublisher offer=TestOffer sku=test-sku version=1.1.0" in lines, console
        assert "USERDATA-MARKER-42 on vmss-demo-000001" in lines, console
        assert "ALTOSTRATUS-READY instance-id=iid-demo-42 hostname=vmss-demo-000001 version=1.1.0" in lines, console
        assert lines.index("USERDATA-MARKER-42 on vmss-demo-000001") < lines.index(
            "ALTOSTRATUS-READY instance-id=iid-demo-42 hostname=vmss-demo-000001 version=1.1.0"
        )

        # The ACPI power button (what `virsh shutdown` presses) powers the guest off cleanly.
        time.sleep(1)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(monitor))
            s.sendall(b"system_powerdown\n")
            time.sleep(0.5)
        assert proc.wait(timeout=60) == 0, log.read_text(errors="replace")[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert image.read_bytes() == before  # snapshot=on: the image itself is untouched


def test_missing_kernel_says_what_to_install(tmp_path: Path) -> None:
    empty = tmp_path / "boot"
    empty.mkdir()
    message = f"No Linux kernel found in {empty}: install it with `apt-get install -y linux-image-amd64`"
    assert message in check_prerequisites(boot_dir=empty)
    with pytest.raises(DemoImageError, match="apt-get install -y linux-image-amd64"):
        _build(tmp_path / "x.raw", boot_dir=empty)
    assert not (tmp_path / "x.raw").exists()


def test_rejects_names_that_are_not_safe_in_the_guest(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="version"):
        _build(tmp_path / "x.raw", version="1.0; reboot")


def test_cli_builds_both_default_versions(tmp_path: Path) -> None:
    app = typer.Typer()
    app.add_typer(images_app, name="images")
    result = CliRunner().invoke(app, ["images", "build-demo", "--out", str(tmp_path)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for version in ("1.0.0", "1.1.0"):
        path = tmp_path / f"altostratus-demolinux-demo-{version}.raw"
        assert path.exists()
        assert str(path) in result.output
        assert allocated_bytes(path) < path.stat().st_size * 0.25
        assert f"sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}" in result.output
