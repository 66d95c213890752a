"""`alto up` and the first command say what is true (issue 16, point 6).

The "serving at" banner used to come before a failed bind, followed by a log record and a traceback-free but
multi-line exit; and the missing-credentials hint told a user of --data-dir / ALTO_DATA_DIR to run a plain
`alto up`, which writes its credentials somewhere else.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.server import ALTO, AltoServer


def test_port_in_use_is_one_line_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [ALTO, "up", "--data-dir", str(tmp_path / "data"), "--port", str(port), "--no-controllers"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
    assert out.returncode == 1, out.stderr
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert f"127.0.0.1:{port}" in lines[0] and "already in use" in lines[0] and "--port" in lines[0], lines[0]
    assert "serving" not in lines[0]
    # Nothing was set up for a server that never ran: no database, no credentials.
    assert not (tmp_path / "data" / "credentials.json").exists()


def test_banner_comes_once_the_socket_is_bound(tmp_path: Path) -> None:
    server = AltoServer(tmp_path / "data", extra_args=("--no-controllers",)).start()
    try:
        log = server.log_path.read_text()
        assert f"serving the ARM API at https://127.0.0.1:{server.port}" in log
        # The portals' address and who signs in (the passwords stay in credentials.json, never in a log).
        assert f"portal       https://127.0.0.1:{server.port}/" in log
        assert "operator (operator), tenant (tenant)" in log
        for user in server.credentials["users"].values():
            assert user["password"] not in log
    finally:
        server.stop()


def _missing_credentials_hint(tmp_path: Path, args: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(
        [ALTO, "group", "list", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300", **env},
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stderr
    return " ".join(out.stderr.split())


def test_missing_credentials_hint_names_the_data_dir_flag(tmp_path: Path) -> None:
    data_dir = tmp_path / "elsewhere"
    hint = _missing_credentials_hint(tmp_path, ["--data-dir", str(data_dir)], {})
    assert f"alto up --data-dir {data_dir}" in hint, hint


def test_missing_credentials_hint_names_alto_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "from-env"
    hint = _missing_credentials_hint(tmp_path, [], {"ALTO_DATA_DIR": str(data_dir)})
    assert f"alto up --data-dir {data_dir}" in hint, hint


def test_upstream_listing_shows_that_it_is_working(server: AltoServer) -> None:
    """The first listing of the demo marketplace builds it on the server (~6 s): a terminal sees a spinner."""
    out = subprocess.run(
        [ALTO, "marketplace", "list-upstream", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "300", "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert "Listing the upstream's products" in out.stderr, out.stderr
