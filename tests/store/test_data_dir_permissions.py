"""The data dir holds the token signing key (in the database), the CA and server keys and the generated secrets:
no other local user may read any of it, whatever the directory looked like before ``alto up``."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.server import ALTO, AltoServer, free_port

SECRETS = ("altostratus.db", "altostratus.db-wal", "altostratus.db-shm", "credentials.json", "ca-key.pem",
           "server-key.pem")  # fmt: skip


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def refused(data_dir: Path) -> str:
    """Runs ``alto up`` on ``data_dir``, expecting it to refuse at once; its output."""
    proc = subprocess.Popen(
        [ALTO, "up", "--data-dir", str(data_dir), "--port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={"COLUMNS": "300", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"alto up served on {data_dir} ({oct(mode(data_dir))}) instead of refusing")
    assert proc.returncode != 0 and "Traceback" not in out, out
    return out


def test_secrets_are_private_in_an_existing_private_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    server = AltoServer(data).start()
    try:
        with server.client() as c:
            assert c.get("/subscriptions?api-version=2016-06-01").status_code == 200
        for name in SECRETS:
            assert mode(data / name) == 0o600, f"{name} is {oct(mode(data / name))}"
    finally:
        server.close()


def test_a_new_data_dir_is_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    server = AltoServer(data).start()
    server.close()
    assert mode(data) == 0o700


def test_refuses_a_data_dir_others_can_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    data.chmod(0o755)
    out = refused(data)
    assert str(data) in out and "chmod 700" in out, out
    assert not (data / "altostratus.db").exists(), "nothing is created in a directory it refuses"


def test_refuses_a_database_others_can_read(tmp_path: Path) -> None:
    """o+x on the data dir (what the libvirt driver gives QEMU) with a readable database: the key is exposed."""
    data = tmp_path / "data"
    AltoServer(data).start().stop()
    (data / "altostratus.db").chmod(0o644)
    data.chmod(0o711)
    out = refused(data)
    assert str(data / "altostratus.db") in out and "chmod 600" in out, out
    assert mode(data / "altostratus.db") == 0o644, "left for the operator to judge"


def test_secrets_made_private_where_nobody_else_could_reach_them(tmp_path: Path) -> None:
    """A database left 0644 by an older `alto up` in a 0700 dir: nobody else could open it, so it is fixed."""
    data = tmp_path / "data"
    server = AltoServer(data).start()
    server.stop()
    for name in ("altostratus.db", "credentials.json", "server-key.pem"):
        (data / name).chmod(0o644)
    server.start()
    try:
        for name in SECRETS:
            assert mode(data / name) == 0o600, f"{name} is {oct(mode(data / name))}"
    finally:
        server.close()
