"""bench/api.py --quick end to end: the SDK's captured requests replay with the statuses they had, on both servers.

The figures of a quick run mean nothing and are not checked; what is checked is that the bench still works
(setup through the SDK, capture, baseline, every route answered as captured), so a change to the API or the SDK
that breaks it shows here and not when someone needs the figures. ~15 s.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROUTES = [
    "poll",
    "get_set",
    "get_vm",
    "list_vms",
    "get_group",
    "list_groups",
    "read_mix",
    "patch_capacity",
    "put_delete_group",
]


def test_quick_run_replays_every_route_without_errors() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "api.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    errors: dict[str, dict[str, int]] = {}
    route = ""
    for line in run.stdout.splitlines():  # rows: route (first row only), target, requests, errors, ...
        target = line[18:28].strip()
        if target in ("baseline", "alto"):
            route = line[:18].strip() or route
            errors.setdefault(route, {})[target] = int(line[28:].split()[1])
    assert errors == {r: {"baseline": 0, "alto": 0} for r in ROUTES}, run.stdout
    assert "goals on SQLite:" in run.stdout
