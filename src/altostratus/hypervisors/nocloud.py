"""NoCloud seeds: the small disk cloud-init (and the demo images) read their instance configuration from.

A seed is a FAT filesystem labelled ``cidata`` holding ``meta-data`` (instance-id, local-hostname),
``user-data`` (the VM's custom data as given, or a ``#cloud-config`` creating the admin user with its SSH keys)
and, when custom data replaces that user-data, ``vendor-data`` carrying the admin user instead (cloud-init
merges vendor-data under user-data, as Azure's agent creates the admin user whatever the custom data says).
Built without root or mounts: ``mkfs.vfat -C`` then ``mcopy`` (dosfstools, mtools).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

LABEL = "cidata"
_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


class SeedError(RuntimeError):
    """The seed could not be built (a missing tool or a failing command; the message says which)."""


def _yaml_scalar(value: str) -> str:
    """A YAML scalar: bare when obviously safe, else a JSON string (JSON strings are valid YAML)."""
    return value if _PLAIN.match(value) else json.dumps(value)


def meta_data(instance_id: str, hostname: str) -> str:
    return f"instance-id: {_yaml_scalar(instance_id)}\nlocal-hostname: {_yaml_scalar(hostname)}\n"


def admin_cloud_config(admin_username: str | None, ssh_public_keys: Sequence[str]) -> str:
    """``#cloud-config`` creating the admin user (passwordless sudo) with its SSH keys; empty config without one."""
    lines = ["#cloud-config"]
    if admin_username:
        lines += [
            "users:",
            "  - default",
            f"  - name: {_yaml_scalar(admin_username)}",
            "    sudo: 'ALL=(ALL) NOPASSWD:ALL'",
            "    shell: /bin/sh",
            "    lock_passwd: true",
        ]
        if ssh_public_keys:
            lines.append("    ssh_authorized_keys:")
            lines += [f"      - {json.dumps(key)}" for key in ssh_public_keys]
    elif ssh_public_keys:
        lines.append("ssh_authorized_keys:")
        lines += [f"  - {json.dumps(key)}" for key in ssh_public_keys]
    return "\n".join(lines) + "\n"


def seed_files(
    *,
    instance_id: str,
    hostname: str,
    user_data: bytes | None,
    admin_username: str | None = None,
    ssh_public_keys: Sequence[str] = (),
) -> dict[str, bytes]:
    """The files of a seed, by name."""
    admin = admin_cloud_config(admin_username, ssh_public_keys).encode()
    files = {"meta-data": meta_data(instance_id, hostname).encode()}
    if user_data is None:
        files["user-data"] = admin
    else:
        files["user-data"] = user_data
        if admin_username or ssh_public_keys:
            files["vendor-data"] = admin
    return files


def _tool(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise SeedError(f"`{name}` not found: install it with `apt-get install -y {package}`")
    return path


def _run(cmd: list[str]) -> None:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SeedError(f"{' '.join(cmd)}: {exc}") from exc
    if proc.returncode:
        raise SeedError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.stdout.strip()}")


def build_seed(
    path: Path,
    *,
    instance_id: str,
    hostname: str,
    user_data: bytes | None,
    admin_username: str | None = None,
    ssh_public_keys: Sequence[str] = (),
    mode: int = 0o644,
) -> Path:
    """Write a vfat NoCloud seed image to ``path`` (atomically replaced) and return ``path``."""
    files = seed_files(
        instance_id=instance_id,
        hostname=hostname,
        user_data=user_data,
        admin_username=admin_username,
        ssh_public_keys=ssh_public_keys,
    )
    mkfs = _tool("mkfs.vfat", "dosfstools")
    mcopy = _tool("mcopy", "mtools")
    payload_kib = sum(len(data) for data in files.values()) // 1024
    size_kib = 1024 + 2 * payload_kib  # FAT12 with room to spare; custom data is at most 64 KiB on Azure
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".seed-", dir=path.parent) as tmp:
        work = Path(tmp)
        image = work / "seed.img"
        for name, data in files.items():
            (work / name).write_bytes(data)
        _run([mkfs, "-n", LABEL, "-C", str(image), str(size_kib)])
        _run([mcopy, "-i", str(image), *(str(work / name) for name in files), "::"])
        os.chmod(image, mode)
        os.replace(image, path)
    return path
