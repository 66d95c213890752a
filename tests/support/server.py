"""Runs a real `alto up` process for tests: HTTPS, real tokens, real database."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ALTO = str(Path(sys.executable).with_name("alto"))
# Tests serve linked templates from a web server on 127.0.0.1; the outbound policy refuses loopback to tenants
# unless the operator allows it, as a test's operator does with this flag.
OUTBOUND_ALLOW_TEST_WEB = ("--outbound-allow", "127.0.0.1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AltoServer:
    """One server instance; stop/kill/start keep the data dir and port, as an operator restart would."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.extra_args = extra_args
        self.env = env or {}  # e.g. PYTHONPATH of an older release's source, for upgrade tests
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self, *args: str) -> AltoServer:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)  # `alto up` refuses one others can read
        cmd = [ALTO, "up", "--data-dir", str(self.data_dir), "--port", str(self.port), *self.extra_args, *args]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200", **self.env}
        )
        log.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alto up exited with {self.proc.returncode}:\n{self.log_path.read_text()[-4000:]}")
            ca = self.data_dir / "ca.pem"
            if ca.exists() and (self.data_dir / "credentials.json").exists():
                try:
                    r = httpx.get(
                        f"{self.endpoint}/metadata/endpoints?api-version=2015-01-01",
                        verify=ssl.create_default_context(cafile=str(ca)),
                        timeout=2,
                    )
                    if r.status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        self.close()  # never leave a server that did not come up running after the test
        raise RuntimeError(f"alto up did not become ready:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> int:
        """SIGTERM and wait: the clean shutdown path."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(30)
        self.proc = None
        return code

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)
        self.proc = None

    def restart(self, *args: str) -> AltoServer:
        self.stop()
        return self.start(*args)

    @property
    def credentials(self) -> dict[str, Any]:
        return dict(json.loads((self.data_dir / "credentials.json").read_text()))

    @property
    def ca(self) -> str:
        return str(self.data_dir / "ca.pem")

    @property
    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def token(self, principal: str = "tenant", creds: dict[str, Any] | None = None) -> str:
        c = creds or self.credentials[principal]
        r = httpx.post(
            self.credentials["tokenEndpoint"],
            data={
                "grant_type": "client_credentials",
                "client_id": c["clientId"],
                "client_secret": c["clientSecret"],
                "scope": f"{self.endpoint}/.default",
            },
            verify=self.tls,
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def client(self, principal: str = "tenant", creds: dict[str, Any] | None = None) -> httpx.Client:
        """An httpx client that speaks to the server as that principal."""
        return httpx.Client(
            base_url=self.endpoint,
            verify=self.tls,
            headers={"Authorization": f"Bearer {self.token(principal, creds)}"},
            timeout=30,
        )

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(30)
            self.proc = None
