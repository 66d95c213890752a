"""The real Azure CLI (`az`) as a tenant runs it, as a subprocess against a running `alto up`.

Two lines, each in its own virtualenv built by scripts/test (scripts/lib.sh ``ensure_az_cli_venvs``): 2.66, the
last with Azure Stack's hybrid profiles (registered with ``--profile 2020-09-01-hybrid``, as Azure Stack Hub's docs
tell users), and the current release (profile ``latest``). Each :class:`Az` has its own ``AZURE_CONFIG_DIR``, and
the only other thing it is told is the server's CA (``REQUESTS_CA_BUNDLE``, as ``scripts/up`` tells users): no
``core.instance_discovery`` or any other setting. Telemetry is off so that no upload process outlives a test.

``az`` starts slowly (about a second of imports), so tests share one logged-in :class:`Az` per line and module and
batch their checks into few commands.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import AltoServer

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class AzLine:
    name: str
    venv: str  # under the repository root, as scripts/lib.sh builds it
    register_args: tuple[str, ...]  # what Azure Stack Hub's docs add to `az cloud register` on this line
    version_prefix: str  # the azure-cli release the venv must hold ("" for the current one: any)

    @property
    def az(self) -> Path:
        return ROOT / self.venv / "bin" / "az"


LINES = {
    "2.66": AzLine("2.66", ".venv-az266", ("--profile", "2020-09-01-hybrid"), "2.66."),
    "current": AzLine("current", ".venv-az", (), ""),
}


@dataclass
class AzResult:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None

    def __str__(self) -> str:
        out, err = self.stdout[-3000:], self.stderr[-3000:]
        return f"az {shlex.join(self.args)} -> exit {self.code}\nstdout: {out}\nstderr: {err}"


class Az:
    """One CLI line with its own config directory, signed in to one server."""

    def __init__(self, line: AzLine, server: AltoServer, config_dir: Path) -> None:
        if not line.az.exists():
            pytest.fail(
                f"azure-cli {line.name} is not installed at {line.az}: run scripts/test, which builds {line.venv} "
                "(scripts/lib.sh ensure_az_cli_venvs)."
            )
        self.line = line
        self.server = server
        config_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "REQUESTS_CA_BUNDLE"))},
            "AZURE_CONFIG_DIR": str(config_dir),
            "REQUESTS_CA_BUNDLE": server.ca,
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
        }

    def run(self, *args: str, timeout: float = 600) -> AzResult:
        """``az ARGS -o json``: exit code, output (parsed with :attr:`AzResult.json`) and messages."""
        full = (*args, "-o", "json") if "-o" not in args and "--output" not in args else args
        proc = subprocess.run(
            [str(self.line.az), *full], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        return AzResult(tuple(full), proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, timeout: float = 600) -> Any:
        """The parsed output of a command that must succeed."""
        result = self.run(*args, timeout=timeout)
        assert result.code == 0, str(result)
        return result.json

    def register_and_login(self, principal: str = "tenant") -> dict[str, Any]:
        """What a tenant types: register the cloud by its ARM endpoint, select it, sign in as a service principal.
        Returns the account list ``az login`` prints."""
        self.ok(
            "cloud",
            "register",
            "-n",
            "alto",
            "--endpoint-resource-manager",
            self.server.endpoint,
            *self.line.register_args,
        )
        self.ok("cloud", "set", "-n", "alto")
        creds = self.server.credentials
        accounts = self.ok(
            "login",
            "--service-principal",
            "-u",
            creds[principal]["clientId"],
            # "-p=": a secret may begin with "-", which argparse would take for an option
            f"-p={creds[principal]['clientSecret']}",
            "--tenant",
            creds["tenantId"],
        )
        assert isinstance(accounts, list)
        return accounts[0]  # type: ignore[no-any-return]

    def version(self) -> str:
        return str(self.ok("version")["azure-cli"])
