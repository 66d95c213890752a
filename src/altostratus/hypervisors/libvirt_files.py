"""The files of libvirt instances: overlays, NoCloud seeds, console logs, and the permissions QEMU needs.

Per instance, under ``<state_dir>/instances/<domain name>/``:

- ``disk.qcow2``: a copy-on-write overlay on the platform-image blob (``qemu-img create -f qcow2 -F raw -b``);
  the blob is only read (and never relabelled or chowned: the domain XML spells out the backing file with
  ``relabel='no'``; it must be readable by the QEMU user, which ``fix_permissions`` arranges for local files).
- ``seed.img``: a NoCloud seed (vfat labelled ``cidata``, see ``nocloud.py``) with the instance id, the
  hostname (computer name), the custom data as user-data, and the admin user with its SSH keys.
- ``console.log``: COM1, truncated by QEMU at each start, so it is the console of the current boot.

With ``qemu:///system`` QEMU runs as ``libvirt-qemu``, not as us: it must traverse every directory down to
these files and read the blobs. libvirt chowns the per-instance files itself; the directories on the way and
the shared blobs are ours to open up (``o+x``, ``o+r``), each change logged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

from altostratus.hypervisors.base import DataDisk, DriverError, InstanceSpec
from altostratus.hypervisors.libvirt_xml import NAME_PREFIX, DomainFiles
from altostratus.hypervisors.nocloud import SeedError, build_seed

__all__ = ["InstanceFiles"]

log = logging.getLogger("altostratus.hypervisors.libvirt")


class InstanceFiles:
    """The instance directories under ``state_dir`` (made at construction, ``0711``: QEMU may pass, not list).

    ``open_up``: make what QEMU opens reachable by the QEMU user (``fix_permissions`` when QEMU runs as
    another user); off, the operator arranges it.
    """

    def __init__(self, state_dir: Path | str, *, open_up: bool) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.open_up = open_up
        self.instances_dir = self.state_dir / "instances"
        self.probe_dir = self.state_dir / "probe"
        """Where the KVM test guest's disk and log live (``libvirt_probe``)."""
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        self.probe_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.state_dir, self.instances_dir, self.probe_dir):
            with contextlib.suppress(OSError):
                os.chmod(directory, 0o711)
        if open_up:
            _make_traversable(self.state_dir)

    def directory(self, name: str) -> Path:
        return self.instances_dir / name

    def overlay(self, name: str) -> Path:
        return self.directory(name) / "disk.qcow2"

    def console(self, name: str) -> Path:
        return self.directory(name) / "console.log"

    def check_image(self, spec: InstanceSpec) -> Path:
        """The spec's platform-image blob, which must exist before anything is built on it."""
        if not spec.disk_path:
            raise DriverError("InvalidSpec", f"{spec.key!r}: the spec has no disk_path (platform-image blob)")
        blob = Path(spec.disk_path).absolute()
        if not blob.is_file():
            raise DriverError("ImageNotFound", f"{spec.key!r}: no image blob at {blob}")
        return blob

    def prepare(self, name: str, spec: InstanceSpec, blob: Path) -> DomainFiles:
        """A fresh overlay on ``blob`` and a fresh seed for ``spec`` (replacing any old ones)."""
        directory = self.directory(name)
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o711)
        if self.open_up:
            _make_readable(blob)
        overlay = self.overlay(name)
        tmp = directory / ".disk.qcow2.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        cmd = ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(blob), str(tmp)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DriverError("DiskCreationFailed", f"{' '.join(cmd)}: {exc} (apt-get install qemu-utils)") from exc
        if proc.returncode:
            raise DriverError("DiskCreationFailed", f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
        os.chmod(tmp, 0o640)
        os.replace(tmp, overlay)  # a crash mid-create never leaves a half-made overlay under the real name
        seed = directory / "seed.img"
        try:
            build_seed(
                seed,
                instance_id=spec.vm_id,
                hostname=spec.computer_name,
                user_data=spec.custom_data,
                admin_username=spec.admin_username,
                ssh_public_keys=spec.ssh_public_keys,
                mode=0o640,
            )
        except SeedError as exc:
            raise DriverError("SeedCreationFailed", f"{spec.key!r}: {exc}") from exc
        console = self.console(name)
        with contextlib.suppress(FileNotFoundError):
            console.unlink()
        return DomainFiles(
            overlay=str(overlay),
            backing=str(blob),
            seed=str(seed),
            console=str(console),
            data_disks=self.ensure_data_disks(name, spec.data_disks),
        )

    def existing(self, name: str, backing: str, disks: tuple[DataDisk, ...]) -> DomainFiles:
        """The files of an instance already made (a redefinition that keeps its disks), new data disks made."""
        directory = self.directory(name)
        return DomainFiles(
            overlay=str(self.overlay(name)),
            backing=backing,
            seed=str(directory / "seed.img"),
            console=str(self.console(name)),
            data_disks=self.ensure_data_disks(name, disks),
        )

    def data_disk(self, name: str, disk: DataDisk) -> Path:
        return self.directory(name) / f"data-{disk.name}.qcow2"

    def ensure_data_disks(self, name: str, disks: tuple[DataDisk, ...]) -> tuple[tuple[DataDisk, str], ...]:
        """Each disk's qcow2 file, made empty (sparse: costs nothing until the guest writes) if it is not there
        yet; an existing one keeps its content (a disk detached and attached again)."""
        out = []
        for disk in disks:
            path = self.data_disk(name, disk)
            if not path.exists():
                tmp = path.with_name(f".{path.name}.tmp")
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                cmd = ["qemu-img", "create", "-q", "-f", "qcow2", str(tmp), f"{disk.size_gb}G"]
                try:
                    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
                except (OSError, subprocess.TimeoutExpired) as exc:
                    raise DriverError("DiskCreationFailed", f"{' '.join(cmd)}: {exc}") from exc
                if proc.returncode:
                    raise DriverError("DiskCreationFailed", f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
                os.chmod(tmp, 0o640)
                os.replace(tmp, path)
            out.append((disk, str(path)))
        return tuple(out)

    def clear_console(self, name: str) -> None:
        """Empty the console log before a boot, so that a ready line of the last boot is not read as this one's
        (QEMU truncates it too, but only once it starts)."""
        with contextlib.suppress(OSError):
            os.truncate(self.console(name), 0)

    def read_console(self, key: str, name: str) -> str:
        """The console text of the current (or last) boot; empty before the first one."""
        try:
            return self.console(name).read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
        except OSError as exc:
            raise DriverError("ConsoleUnreadable", f"cannot read the console log of {key!r}: {exc}") from exc

    def remove(self, name: str) -> None:
        shutil.rmtree(self.directory(name), ignore_errors=True)

    def sweep(self, names: set[str], min_age: float) -> list[Path]:
        """Remove instance directories whose domain is not in ``names`` (every domain name of ours) and that
        are older than ``min_age`` seconds (a younger one may be a create in progress); the removed ones."""
        removed: list[Path] = []
        now = time.time()
        for directory in self.instances_dir.iterdir():
            if directory.name in names or not directory.name.startswith(NAME_PREFIX):
                continue
            try:
                if now - directory.stat().st_mtime < min_age:
                    continue
            except OSError:
                continue
            log.warning("libvirt: removing files of a vanished instance: %s", directory)
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
        return removed


def _make_traversable(path: Path) -> None:
    for directory in [path, *path.parents]:
        try:
            mode = directory.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)
                log.warning("libvirt: added o+x to %s so that QEMU can reach its files", directory)
        except OSError as exc:
            log.warning("libvirt: cannot make %s traversable for QEMU: %s", directory, exc)


def _make_readable(blob: Path) -> None:
    _make_traversable(blob.parent)
    try:
        mode = blob.stat().st_mode
        if not mode & stat.S_IROTH:
            os.chmod(blob, stat.S_IMODE(mode) | stat.S_IROTH)
            log.warning("libvirt: added o+r to %s so that QEMU can read it", blob)
    except OSError as exc:
        log.warning("libvirt: cannot make %s readable for QEMU: %s", blob, exc)
