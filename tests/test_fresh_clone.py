"""A new user's first hour, on a fresh clone (issue 16, acceptance): `git clone` of this repository's HEAD into an
empty directory, a new empty $HOME and a minimal environment (PATH to python3 and the system tools; no ALTO_*
variables, no virtualenv, no CA bundle), then the README's two commands and the README's snippets verbatim.

* ``scripts/up`` runs as the README says, in the background, with a free ``--port`` and ``--data-dir`` under the
  new HOME (the README: arguments after scripts/up go to alto up); it must create .venv and answer over HTTPS.
* Every README snippet then runs through the same runner as tests/test_docs_snippets.py (tests/support/
  snippets.py), including the ``clone-only`` ones (``.venv/bin/pip install -e '.[sdk-hybrid]'``), in one bash
  session from the clone, with the one rewrite of 127.0.0.1:8443 to the free port.
* ``scripts/test`` cannot run the whole suite inside the suite: it runs only until it has set up libvirt and
  starts installing its virtualenv (its first steps), then is stopped. Exiting non-zero before that fails.
* The server then stops on SIGTERM with status 0.

To stay bounded, pip uses the invoking user's pip cache (PIP_CACHE_DIR): the packages come from the cache when
they are there, but the clone and its virtualenv are new. Marked ``fresh_clone``: the main pytest run of
scripts/test runs it once (the current-SDK run selects only ``-m sdk``).
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import snippets
from tests.support.server import free_port

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UP_TIMEOUT = 900  # a first install downloads and builds for a minute or more when the pip cache is cold


def new_user_env(home: Path) -> dict[str, str]:
    """PATH to a real python3 (not a shim that needs the old HOME) and the system; the pip cache to reuse."""
    python_bin = Path(sys.base_prefix) / "bin"
    cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip"))
    return snippets.clean_env(home, f"{python_bin}:{SYSTEM_PATH}", PIP_CACHE_DIR=str(cache))


def readme_commands() -> list[str]:
    """The README's quick-start commands, as written in its first block."""
    block = next(b for b in snippets.blocks(snippets.ROOT / "README.md") if "scripts/up" in b.code)
    return [line.split("#")[0].split()[0] for line in block.code.splitlines() if line.strip()]


def wait_ready(proc: subprocess.Popen[bytes], data_dir: Path, port: int, log: Path) -> None:
    deadline = time.time() + UP_TIMEOUT
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"scripts/up exited with {proc.returncode}:\n{log.read_text()[-6000:]}")
        ca = data_dir / "ca.pem"
        if ca.exists() and (data_dir / "credentials.json").exists():
            try:
                r = httpx.get(
                    f"https://127.0.0.1:{port}/metadata/endpoints?api-version=2015-01-01",
                    verify=ssl.create_default_context(cafile=str(ca)),
                    timeout=2,
                )
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    raise AssertionError(f"scripts/up did not answer in {UP_TIMEOUT} s:\n{log.read_text()[-6000:]}")


def stop(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(30)


def scripts_test_starts(clone: Path, env: dict[str, str], log: Path) -> str:
    """Run scripts/test until it starts installing its virtualenv (past its libvirt set-up), then stop it."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["scripts/test"], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            text = log.read_text(errors="replace")
            if "into .venv" in text:
                return text
            if proc.poll() is not None:
                raise AssertionError(f"scripts/test exited with {proc.returncode} as it started:\n{text[-4000:]}")
            time.sleep(0.5)
        raise AssertionError(f"scripts/test did not get to its virtualenv in 300 s:\n{log.read_text()[-4000:]}")
    finally:
        if proc.poll() is None:
            stop(proc)


@pytest.mark.fresh_clone
def test_fresh_clone_through_the_readme(tmp_path: Path) -> None:
    assert readme_commands() == ["scripts/up", "scripts/test"], "the README's quick start changed: update this test"
    home, clone = tmp_path / "home", tmp_path / "altostratus"
    home.mkdir()
    subprocess.run(["git", "clone", "--quiet", str(snippets.ROOT), str(clone)], check=True, timeout=120)
    env = new_user_env(home)
    port, data_dir, up_log = free_port(), home / ".altostratus", tmp_path / "up.log"

    with open(up_log, "wb") as out:
        up = subprocess.Popen(
            ["scripts/up", "--port", str(port), "--data-dir", str(data_dir)],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(up, data_dir, port, up_log)
        assert (clone / ".venv" / "bin" / "alto").exists()
        session = snippets.Session(
            cwd=clone,
            env=env,
            python=str(clone / ".venv" / "bin" / "python"),
            address=f"127.0.0.1:{port}",
            clone=True,
            root=clone,
        )
        readme = snippets.blocks(clone / "README.md")
        ran = snippets.run(readme, session, timeout=UP_TIMEOUT)
        assert "/resourceGroups/demo" in ran.stdout  # the SDK snippet's print
        assert sum(b.runs(clone=True) for b in readme) >= 3
    finally:
        code = stop(up)
    assert code == 0, f"scripts/up did not stop cleanly ({code}):\n{up_log.read_text()[-4000:]}"

    started = scripts_test_starts(clone, env, tmp_path / "test.log")
    assert "Traceback" not in started
