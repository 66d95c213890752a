"""The volumes of libvirt instances in their host's pool: overlay, NoCloud seed, console log, data disks.

Per instance (domain ``alto-...``), in the host's pool (``libvirt_pools``):

- ``<domain>.disk.qcow2``: a copy-on-write overlay made by libvirt on the image's base volume
  (``libvirt_images``), which is only read; the domain XML spells the backing file out with ``relabel='no'``
  so that libvirt never chowns the shared base (it is 0644).
- ``<domain>.seed.img``: the NoCloud seed (vfat labelled ``cidata``, see ``nocloud.py``), built in the local
  scratch directory (``state_dir``) and uploaded.
- ``<domain>.console.log``: COM1. QEMU truncates it at each start and the driver empties it before a boot (a new
  volume), so it is the console of the current boot; it is read back with ``virStorageVolDownload``, so
  readiness and ``console_log`` work for a host whose files this process cannot see.
- ``<domain>.data-<name>.qcow2``: data disks, empty sparse qcow2 volumes made on first use.

Nothing here opens a path on the host. ``state_dir`` is local scratch only (seeds on their way).

Instances made before storage pools keep their files in ``<state_dir>/instances/<domain>/`` (the host was this
machine then): while that directory exists, the console is read and emptied there, data disk changes keep using
its files, and deleting the instance removes it. A reimage moves the instance to volumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import libvirt

from altostratus.hypervisors.base import DataDisk, DriverError, InstanceSpec
from altostratus.hypervisors.libvirt_pools import (
    create_volume,
    delete_volume,
    ensure_pool,
    lookup_volume,
    pool_path,
    read_volume,
    upload_bytes,
    volume_mtime,
)
from altostratus.hypervisors.libvirt_xml import NAME_PREFIX, DomainFiles
from altostratus.hypervisors.nocloud import SeedError, build_seed

__all__ = ["InstanceVolumes"]

log = logging.getLogger("altostratus.hypervisors.libvirt")


def overlay_name(name: str) -> str:
    return f"{name}.disk.qcow2"


def seed_name(name: str) -> str:
    return f"{name}.seed.img"


def console_name(name: str) -> str:
    return f"{name}.console.log"


def data_disk_name(name: str, disk: DataDisk) -> str:
    return f"{name}.data-{disk.name}.qcow2"


def owner(volume: str) -> str | None:
    """The domain name an instance volume belongs to (None: not an instance volume)."""
    for suffix in (".disk.qcow2", ".seed.img", ".console.log"):
        if volume.endswith(suffix):
            return volume[: -len(suffix)]
    cut = volume.rfind(".data-")
    return volume[:cut] if cut > 0 and volume.endswith(".qcow2") else None


class InstanceVolumes:
    """The pools of a driver's hosts (one ``pool_name`` per host, created at ``pool_target`` when missing) and
    the instances' volumes in them. ``state_dir``: local scratch."""

    def __init__(self, state_dir: Path | str, *, pool_name: str, pool_target: str) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.scratch = self.state_dir / "scratch"
        self.scratch.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            os.chmod(self.scratch, 0o700)
            # 0711, as before pools: QEMU must still pass through to the files of instances made back then.
            os.chmod(self.state_dir, 0o711)
        self.pool_name = pool_name
        self.pool_target = pool_target
        self._lock = threading.Lock()
        self._pools: dict[str, tuple[Any, Any, str]] = {}  # host -> (connection, pool, its path on the host)

    def pool(self, host: str, conn: Any) -> Any:
        """The host's pool (made and started if needed), once per connection."""
        return self._entry(host, conn)[1]

    def path(self, host: str, conn: Any, volume: str) -> str:
        """Where ``volume`` is (or will be) on the host, for display and domain XML."""
        return f"{self._entry(host, conn)[2].rstrip('/')}/{volume}"

    def legacy_dir(self, name: str) -> Path:
        """Where an instance made before storage pools keeps its files (see the module docstring)."""
        return self.state_dir / "instances" / name

    def _entry(self, host: str, conn: Any) -> tuple[Any, Any, str]:
        with self._lock:
            entry = self._pools.get(host)
            if entry is None or entry[0] is not conn:
                pool = ensure_pool(conn, self.pool_name, self.pool_target)
                entry = self._pools[host] = (conn, pool, pool_path(pool) or self.pool_target)
            return entry

    def prepare(self, host: str, conn: Any, name: str, spec: InstanceSpec, base: str, size: int) -> DomainFiles:
        """A fresh overlay on the base volume at ``base``, a fresh seed and an empty console (replacing any
        old ones), and the data disks."""
        pool = self.pool(host, conn)
        for volume in (overlay_name(name), seed_name(name), console_name(name)):
            delete_volume(pool, volume)
        shutil.rmtree(self.legacy_dir(name), ignore_errors=True)  # a reimage moves an old instance to volumes
        try:
            overlay = create_volume(pool, overlay_name(name), size, "qcow2", backing=base)
        except libvirt.libvirtError as exc:
            raise DriverError("DiskCreationFailed", f"{spec.key!r} on {host}: {exc.get_error_message()}") from exc
        seed = self._seed(pool, conn, name, spec)
        console = create_volume(pool, console_name(name), 0, "raw")
        return DomainFiles(
            overlay=str(overlay.path()),
            backing=base,
            seed=str(seed.path()),
            console=str(console.path()),
            data_disks=self.ensure_data_disks(host, conn, name, spec.data_disks),
        )

    def _seed(self, pool: Any, conn: Any, name: str, spec: InstanceSpec) -> Any:
        with tempfile.TemporaryDirectory(prefix=".seed-", dir=self.scratch) as tmp:
            local = Path(tmp) / "seed.img"
            try:
                build_seed(
                    local,
                    instance_id=spec.vm_id,
                    hostname=spec.computer_name,
                    user_data=spec.custom_data,
                    admin_username=spec.admin_username,
                    ssh_public_keys=spec.ssh_public_keys,
                    mode=0o600,
                )
            except SeedError as exc:
                raise DriverError("SeedCreationFailed", f"{spec.key!r}: {exc}") from exc
            data = local.read_bytes()
        vol = create_volume(pool, seed_name(name), len(data), "raw")
        upload_bytes(conn, vol, data)
        return vol

    def existing(self, host: str, conn: Any, name: str, backing: str, disks: tuple[DataDisk, ...]) -> DomainFiles:
        """The volumes of an instance already made (a redefinition that keeps its disks), new data disks made."""
        legacy = self.legacy_dir(name)
        if legacy.is_dir():
            new = tuple(d for d in disks if _legacy_disk(legacy, d) is None)
            made = dict(self.ensure_data_disks(host, conn, name, new))
            return DomainFiles(
                overlay=str(legacy / "disk.qcow2"),
                backing=backing,
                seed=str(legacy / "seed.img"),
                console=str(legacy / "console.log"),
                data_disks=tuple((d, made.get(d) or str(_legacy_disk(legacy, d))) for d in disks),
            )
        return DomainFiles(
            overlay=self.path(host, conn, overlay_name(name)),
            backing=backing,
            seed=self.path(host, conn, seed_name(name)),
            console=self.path(host, conn, console_name(name)),
            data_disks=self.ensure_data_disks(host, conn, name, disks),
        )

    def ensure_data_disks(
        self, host: str, conn: Any, name: str, disks: tuple[DataDisk, ...]
    ) -> tuple[tuple[DataDisk, str], ...]:
        """Each disk's qcow2 volume, made empty if missing; an existing one keeps its content (a disk detached
        and attached again)."""
        pool = self.pool(host, conn)
        out = []
        for disk in disks:
            volume = data_disk_name(name, disk)
            vol = lookup_volume(pool, volume)
            if vol is None:
                try:
                    vol = create_volume(pool, volume, disk.size_gb << 30, "qcow2")
                except libvirt.libvirtError as exc:
                    vol = lookup_volume(pool, volume)
                    if vol is None:
                        why = exc.get_error_message()
                        raise DriverError("DiskCreationFailed", f"{volume} on {host}: {why}") from exc
            out.append((disk, str(vol.path())))
        return tuple(out)

    def clear_console(self, host: str, conn: Any, name: str) -> None:
        """An empty console before a boot, so that a ready line of the last boot is not read as this one's (QEMU
        truncates it too, but only once it starts)."""
        legacy = self.legacy_dir(name) / "console.log"
        if legacy.parent.is_dir():
            with contextlib.suppress(OSError):
                os.truncate(legacy, 0)
            return
        pool = self.pool(host, conn)
        delete_volume(pool, console_name(name))
        create_volume(pool, console_name(name), 0, "raw")

    def read_console(self, host: str, conn: Any, name: str, offset: int = 0) -> bytes:
        """The console bytes from ``offset`` on (empty before the first boot)."""
        vol = lookup_volume(self.pool(host, conn), console_name(name))
        if vol is None:
            try:
                with (self.legacy_dir(name) / "console.log").open("rb") as f:
                    f.seek(offset)
                    return f.read()
            except OSError:
                return b""
        size = vol.info()[1]  # capacity: the file's length as libvirt sees it now
        if offset >= size:
            return b""
        return read_volume(conn, vol, offset, size - offset)

    def remove(self, host: str, conn: Any, name: str) -> None:
        """Every volume of the instance (idempotent)."""
        pool = self.pool(host, conn)
        for vol in pool.listAllVolumes(0):
            with contextlib.suppress(libvirt.libvirtError):
                if owner(vol.name()) == name:
                    vol.delete(0)
        shutil.rmtree(self.legacy_dir(name), ignore_errors=True)

    def sweep(self, host: str, conn: Any, names: set[str], min_age: float) -> list[str]:
        """Delete the volumes of instances whose domain is not in ``names`` (every domain name of ours on the
        host) and that have not changed for ``min_age`` seconds (a younger one may be a create in progress)."""
        removed: list[str] = []
        now = time.time()
        for vol in self.pool(host, conn).listAllVolumes(0):
            try:
                volume = vol.name()
                domain = owner(volume)
                if domain is None or not domain.startswith(NAME_PREFIX) or domain in names:
                    continue
                if now - volume_mtime(vol) < min_age:
                    continue
                vol.delete(0)
            except libvirt.libvirtError:
                continue
            log.warning("libvirt: %s: removed a volume of a vanished instance: %s", host, volume)
            removed.append(volume)
        return removed

    def sweep_legacy(self, names: set[str], min_age: float) -> list[str]:
        """Old instance directories (from before storage pools) whose domain is gone."""
        removed: list[str] = []
        with contextlib.suppress(OSError):
            for directory in (self.state_dir / "instances").iterdir():
                if directory.name in names or not directory.name.startswith(NAME_PREFIX):
                    continue
                with contextlib.suppress(OSError):
                    if time.time() - directory.stat().st_mtime >= min_age:
                        shutil.rmtree(directory, ignore_errors=True)
                        removed.append(directory.name)
        return removed


def _legacy_disk(directory: Path, disk: DataDisk) -> Path | None:
    path = directory / f"data-{disk.name}.qcow2"
    return path if path.exists() else None
