"""Listings, shaped like `az`: -o table|json|jsonc|tsv|yaml|none, --query (JMESPath), and tables that keep
every identifier whole on an 80-column terminal (the value a user pastes into the next command)."""

from __future__ import annotations

import json
import os
import subprocess

import yaml

from altostratus.cli.output import human_size
from tests.support.names import unique
from tests.support.server import ALTO, AltoServer


def alto(server: AltoServer, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [ALTO, *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": str(columns)},
    )
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out


def test_upstream_products_and_subscription_ids_are_whole_at_80_columns(server: AltoServer) -> None:
    products = json.loads(alto(server, "marketplace", "list-upstream", "-o", "json").stdout)
    table = alto(server, "marketplace", "list-upstream").stdout
    assert "…" not in table
    assert max(len(line) for line in table.splitlines()) <= 80, "it fits: less important columns were dropped"
    for product in products:
        assert product["name"] in table, f"{product['name']} cut in:\n{table}"
    assert "KiB" in table or "MiB" in table, "sizes are human"

    subs = json.loads(alto(server, "admin", "subscription", "list", "-o", "json").stdout)
    table = alto(server, "admin", "subscription", "list", columns=60).stdout
    assert "…" not in table
    for sub in subs:
        assert sub["name"] in table and sub["properties"]["owner"] in table, table


def test_output_formats_and_query_on_a_listing(server: AltoServer) -> None:
    name = unique("out")
    alto(server, "group", "create", "-n", name, "--tag", "team=out")
    listing = ("group", "list", "--tag", "team=out")

    assert alto(server, *listing, "--query", "[].name", "-o", "tsv").stdout.split() == [name]
    assert yaml.safe_load(alto(server, *listing, "-o", "yaml").stdout)[0]["name"] == name
    assert json.loads(alto(server, *listing, "-o", "jsonc").stdout)[0]["name"] == name
    assert json.loads(alto(server, *listing, "-o", "json", "--query", "[0].tags").stdout) == {"team": "out"}
    assert alto(server, *listing, "-o", "none").stdout == ""
    queried = alto(server, *listing, "--query", "[].{Group:name, Where:location}").stdout
    assert "Group" in queried and "Where" in queried and name in queried and "local" in queried

    bad = subprocess.run(
        [ALTO, *listing, "--query", "[?", "--data-dir", str(server.data_dir)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "Invalid --query" in bad.stderr and "Traceback" not in bad.stderr
    alto(server, "group", "delete", "-n", name, "--yes")


def test_human_sizes() -> None:
    assert [human_size(v) for v in (0, 1023, 1536, 5 * 1024**3, None)] == ["0 B", "1023 B", "1.5 KiB", "5.0 GiB", ""]


def test_help_keeps_option_names_whole_at_80_columns() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run([ALTO, "vmss", "create", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    for option in ("--upgrade-policy-mode", "--computer-name-prefix", "--resource-group", "--ssh-key-value"):
        assert option in out.stdout, out.stdout
    assert "…" not in out.stdout
