"""The CLI's documentation says what `alto --help` says (issue 16, point 9): the getting-started table names
every top-level command, and docs/cli.md and `--help` give the same default SSH key."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import typer

from altostratus.cli.main import app
from altostratus.cli.vmss import DEFAULT_SSH_KEYS
from tests.support.server import ALTO

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_getting_started_lists_every_top_level_command() -> None:
    group = typer.main.get_command(app)
    commands = set(group.list_commands(typer.Context(group)))  # type: ignore[attr-defined]
    section = (DOCS / "getting-started.md").read_text().split("## The `alto` CLI", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `alto ([a-z-]+)", section, re.MULTILINE))
    assert commands == documented


def test_cli_md_and_help_agree_on_the_default_ssh_key() -> None:
    row = next(line for line in (DOCS / "cli.md").read_text().splitlines() if line.startswith("| `--ssh-key-value"))
    out = subprocess.run(
        [ALTO, "vmss", "create", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "400", "NO_COLOR": "1"},
    )
    help_text = " ".join(out.stdout.replace("│", " ").split())
    for name in DEFAULT_SSH_KEYS:
        assert f"~/.ssh/{name}" in row, row
        assert name in help_text, help_text
