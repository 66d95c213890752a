"""`alto admin host add|list|show|drain|enable|remove`: the operator's hypervisor hosts through the CLI, a client of
the Compute.Admin hosts API (bad input answered with the API's clear errors, never a traceback)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.test_cli import alto
from tests.support.server import AltoServer


def ok(out: object) -> str:
    assert out.returncode == 0, out.stderr  # type: ignore[attr-defined]
    return str(out.stdout)  # type: ignore[attr-defined]


def test_operator_adds_lists_drains_and_removes_hosts(tmp_path: Path) -> None:
    server = AltoServer(tmp_path / "data").start()
    try:
        ok(alto(server, "admin", "host", "add", "hv1", "--uri", "sim://hv1", "--cores", "8", "--memory-mb", "16384",
                "-o", "json"))  # fmt: skip
        wide = {**os.environ, "COLUMNS": "250"}
        table = ok(alto(server, "admin", "host", "list", env=wide))
        assert "hv1" in table and "local" in table and "sim://hv1" in table and "Fault domain" in table
        listed = json.loads(ok(alto(server, "admin", "host", "list", "-o", "json")))
        hosts = {h["name"]: h["properties"] for h in listed}
        assert hosts["hv1"]["capacity"] == {"cores": 8, "memoryMB": 16384, "diskGB": 0}
        assert hosts["local"]["kind"] == "sim" and hosts["local"]["state"] == "Enabled"

        assert "draining" in ok(alto(server, "admin", "host", "drain", "hv1"))
        shown = json.loads(ok(alto(server, "admin", "host", "show", "hv1")))
        assert shown["properties"]["state"] == "Draining"
        ok(alto(server, "admin", "host", "enable", "hv1"))

        bad = alto(server, "admin", "host", "add", "hv2", "--uri", "http://hv2/system")
        assert bad.returncode == 1 and "not supported" in bad.stderr and "Traceback" not in bad.stderr
        missing = alto(server, "admin", "host", "drain", "nosuch")
        assert missing.returncode == 1 and "HostNotFound" in missing.stderr
        ok(alto(server, "admin", "host", "remove", "hv1", "--yes"))
        assert "hv1" not in ok(alto(server, "admin", "host", "list", "-o", "json"))
        refused = alto(server, "host", "list")  # no such tenant command: hosts are the operator's
        assert refused.returncode != 0
    finally:
        server.close()
