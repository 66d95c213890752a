"""`alto --help` and simple commands start fast because building the command tree imports little (issue 16,
point 9): no HTTP client, no server, no template engine, no marketplace or database code until a command that
needs it runs. Timing lives in bench/cli.py; this checks what makes it so, the modules a start-up loads."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "httpx",
    "altostratus.server",
    "altostratus.app",
    "altostratus.marketplace",
    "altostratus.templates",
    "altostratus.store",
    "sqlalchemy",
    "uvicorn",
    "azure",
    # Made lazy after bench/cli.py's first figures (issue 16, point 5): `alto --help` prints through click, so
    # rich, YAML and JMESPath (output formats), ssl and pydantic (typer's parameter conversion) wait for a command.
    "rich",
    "yaml",
    "jmespath",
    "ssl",
    "pydantic",
)


def _loaded_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_building_the_command_tree_imports_nothing_heavy() -> None:
    assert _heavy(_loaded_after("import altostratus.cli.main")) == []


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nsys.argv = ['alto', '--help']\nfrom altostratus.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert _heavy(_loaded_after(code)) == []


def test_the_api_client_leaves_httpx_command_line_tool_alone() -> None:
    """httpx imports its own CLI (click, rich, pygments) when those are installed; `alto` never runs it."""
    code = (
        "from altostratus.cli.client import ApiClient\n"
        "ApiClient({'tenant': {}, 'armEndpoint': 'https://127.0.0.1:1', 'caFile': __import__('certifi').where()})"
    )
    loaded = _loaded_after(code)
    assert "httpx" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in ("click", "rich", "pygments")) == []
