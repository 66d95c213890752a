"""Helpers for the tests that run real VMs through libvirt (tests/hypervisors/test_libvirt_driver.py).

The tests are never skipped: when libvirtd does not answer, ``ensure_libvirtd`` runs ``start_libvirt`` from
scripts/libvirt.sh (installs QEMU/libvirt with apt if needed and starts virtlogd/libvirtd) and fails with
the reason if that does not help.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import libvirt

from altostratus.marketplace.demo_images import build_demo_image

ROOT = Path(__file__).resolve().parents[2]
URI = os.environ.get("ALTO_TEST_LIBVIRT_URI", "qemu:///system")
SHARED_TMP = Path("/var/tmp")  # pytest's own tmp dirs are 0700: QEMU (user libvirt-qemu) could not reach them
T = TypeVar("T")

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def _connects(uri: str) -> str | None:
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError as exc:
        return exc.get_error_message() or str(exc)
    return None


def ensure_libvirtd(uri: str = URI) -> None:
    """libvirtd answers on ``uri``, or AssertionError saying why (after trying scripts/libvirt.sh once)."""
    if _connects(uri) is None:
        return
    proc = subprocess.run(
        ["bash", "-c", f"source {ROOT / 'scripts' / 'libvirt.sh'} && start_libvirt"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    problem = _connects(uri)
    assert problem is None, (
        f"libvirtd does not answer on {uri}: {problem}\n"
        f"`source scripts/libvirt.sh && start_libvirt` said (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    )


def discard_domains(uri: str, pick: Callable[[libvirt.virConnect], Iterable[libvirt.virDomain]]) -> None:
    """Destroys and undefines the domains ``pick`` chooses on ``uri``: after a failed test its guests would keep
    running (slowing every later run) with their files gone. Whatever fails here (a daemon down, a domain gone
    meanwhile) is passed over: this is clean-up."""
    with contextlib.suppress(libvirt.libvirtError):
        conn = libvirt.open(uri)
        try:
            for dom in pick(conn):
                with contextlib.suppress(libvirt.libvirtError):
                    dom.destroy()
                with contextlib.suppress(libvirt.libvirtError):
                    dom.undefine()
        finally:
            conn.close()


def shared_dir(prefix: str) -> Path:
    """A fresh directory that the QEMU user can traverse (0755, under /var/tmp)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SHARED_TMP))
    os.chmod(path, 0o755)
    return path


def remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def build_images(directory: Path, versions: Iterable[str]) -> dict[str, Path]:
    """Demo images ``Altostratus:DemoLinux:demo:<version>`` as raw blobs in ``directory`` (world-readable)."""
    images: dict[str, Path] = {}
    for version in versions:
        path = directory / f"altostratus-demolinux-demo-{version}.raw"
        build_demo_image(path, publisher="Altostratus", offer="DemoLinux", sku="demo", version=version)
        os.chmod(path, 0o644)
        images[version] = path
    return images


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll ``check`` until it returns something truthy; AssertionError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")


def domain_state(uri: str, name: str) -> int | None:
    """libvirt's state of a domain (``libvirt.VIR_DOMAIN_*``), None when there is no such domain."""
    conn = libvirt.open(uri)
    try:
        try:
            return int(conn.lookupByName(name).state()[0])
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise
    finally:
        conn.close()


def seed_file(seed_image: Path, name: str) -> str:
    """A file's text from a vfat NoCloud seed image (mtools, no mount)."""
    proc = subprocess.run(
        ["mtype", "-i", str(seed_image), f"::{name}"],
        capture_output=True,
        text=True,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
        check=True,
    )
    return proc.stdout


def _pool(conn: libvirt.virConnect, pool: str) -> libvirt.virStoragePool:
    return conn.storagePoolLookupByName(pool)


def pool_volumes(uri: str, pool: str, prefix: str = "") -> list[str]:
    """The names of the volumes in a pool that start with ``prefix``, sorted."""
    conn = libvirt.open(uri)
    try:
        return sorted(v.name() for v in _pool(conn, pool).listAllVolumes(0) if v.name().startswith(prefix))
    finally:
        conn.close()


def download_volume(uri: str, pool: str, name: str, dest: Path) -> Path:
    """A volume's content in the local file ``dest``, read through libvirt (the host's files may be elsewhere)."""
    conn = libvirt.open(uri)
    try:
        vol = _pool(conn, pool).storageVolLookupByName(name)
        stream = conn.newStream(0)
        vol.download(stream, 0, 0, 0)
        with dest.open("wb") as f:
            stream.recvAll(lambda _s, buf, _o: f.write(buf), None)
        stream.finish()
        return dest
    finally:
        conn.close()


def volume_text(uri: str, pool: str, name: str) -> str:
    """A volume's content as text ("" when there is no such volume): console logs."""
    conn = libvirt.open(uri)
    try:
        try:
            vol = _pool(conn, pool).storageVolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() in (libvirt.VIR_ERR_NO_STORAGE_VOL, libvirt.VIR_ERR_NO_STORAGE_POOL):
                return ""
            raise
        chunks: list[bytes] = []
        stream = conn.newStream(0)
        vol.download(stream, 0, 0, 0)
        stream.recvAll(lambda _s, buf, _o: chunks.append(buf), None)
        stream.finish()
        return b"".join(chunks).decode("utf-8", "replace")
    finally:
        conn.close()


def make_volume(uri: str, pool: str, name: str) -> None:
    conn = libvirt.open(uri)
    try:
        _pool(conn, pool).createXML(
            f"<volume><name>{name}</name><capacity>0</capacity><target><format type='raw'/></target></volume>", 0
        )
    finally:
        conn.close()


def delete_volume_of(uri: str, pool: str, name: str) -> None:
    conn = libvirt.open(uri)
    try:
        try:
            _pool(conn, pool).storageVolLookupByName(name).delete(0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
    finally:
        conn.close()


# -- private libvirtd hosts (scripts/libvirt.sh start_libvirt_hosts; docs/several-machines.md) ------------------

HOSTS_DIR = Path(os.environ.get("ALTO_LIBVIRT_HOSTS_DIR", "/var/lib/alto-hosts"))


def host_uri(name: str) -> str:
    return f"qemu+unix:///system?socket={HOSTS_DIR / name / 'run' / 'libvirt-sock'}"


def _libvirt_sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"source {ROOT / 'scripts' / 'libvirt.sh'} && {command}"],
        capture_output=True,
        text=True,
        timeout=1200,
    )


def start_hosts(names: Iterable[str]) -> list[str]:
    """The private hosts running (started by scripts/libvirt.sh if not); the names of those it had to start."""
    started = []
    for name in names:
        if _connects(host_uri(name)) is None:
            continue
        proc = _libvirt_sh(f"start_libvirt && start_libvirt_host {name}")
        problem = _connects(host_uri(name))
        assert problem is None, f"host {name} does not answer: {problem}\n{proc.stderr[-3000:]}"
        started.append(name)
    return started


def start_host(name: str) -> None:
    proc = _libvirt_sh(f"start_libvirt_host {name}")
    assert proc.returncode == 0, proc.stderr[-3000:]


def stop_host(name: str) -> None:
    proc = _libvirt_sh(f"stop_libvirt_host {name}")
    assert proc.returncode == 0, proc.stderr[-3000:]


def kill_host(name: str) -> int:
    """SIGKILL the host's libvirtd (its guests keep running, as on a real host whose daemon died); its pid."""
    pid = int((HOSTS_DIR / name / "run" / "libvirtd.pid").read_text().strip())
    os.kill(pid, 9)
    wait_for(lambda: _connects(host_uri(name)) is not None, 10, f"{name}'s libvirtd to die")
    return pid
