"""CLI start-up: wall time of `alto --help` and `alto group list`, next to `python -c pass` as the floor.

Each command runs ``--runs`` times as a fresh process (the way a user or a script runs it), alternating between
the commands so that a burst of load on the machine hits all of them alike; the table gives min, median and max
in seconds of wall time, and the median CPU time (user + system) of the process, which a loaded machine hardly
changes. ``group list`` runs against ``alto up`` (SQLite in a temporary data dir, controllers off, log level
warning): it includes the token request and one ARM list call over HTTPS, i.e. everything a simple command does.

Rows:

* **python -c pass**: the interpreter's own start, the floor nothing here can beat;
* **import typer + rich**: the CLI framework alone, what any typer command pays before our code runs;
* **alto --help**: builds the whole command tree and prints it. Goal: median ≤ 0.3 s;
* **alto group list**: goal median ≤ 0.5 s.

``python -X importtime -c "import altostratus.cli.main"`` shows where a start-up's import time goes; the command
tree must not import httpx, the server, the template engine or the marketplace (tests/cli/test_cli_imports.py).

``--compare DIR`` adds the same two commands run from another source tree (rows marked "(compare)"), for a
before/after on one machine under one load, e.g. ``git archive <commit> src | tar -x -C /tmp/before`` and
``--compare /tmp/before/src``.

Run:  .venv/bin/python bench/cli.py [--runs 15] [--no-server] [--compare DIR]

The exit status is 0 whatever the figures: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.server import ALTO, AltoServer  # noqa: E402

GOALS = {"alto --help": 0.3, "alto group list": 0.5}


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def from_tree(src: Path, *args: str) -> list[str]:
    """`alto ARGS` with the altostratus package of another source tree first on the path (same interpreter)."""
    code = (
        f"import sys; sys.path.insert(0, {str(src.resolve())!r}); sys.argv = ['alto', *{list(args)!r}]\n"
        "from altostratus.cli.main import main\nmain()"
    )
    return [sys.executable, "-c", code]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of one run. The CPU time is what the command itself burns: on a
    loaded machine the wall time also counts the waits for a core, the CPU time hardly changes."""
    cpu = _children_cpu()
    start = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({out.returncode}):\n{out.stderr}")
    return elapsed, _children_cpu() - cpu


Samples = dict[str, list[tuple[float, float]]]


def measure(commands: dict[str, list[str]], runs: int) -> Samples:
    for argv in commands.values():  # warm the page cache and the .pyc files, unmeasured
        run_once(argv)
    times: Samples = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            times[name].append(run_once(argv))
    return times


def report(times: Samples) -> None:
    floor = statistics.median(wall for wall, _ in times["python -c pass"])
    print(f"{'command':26} {'min':>7} {'median':>7} {'max':>7} {'- floor':>8} {'cpu med':>8}  goal (wall median)")
    for name, samples in times.items():
        walls = [wall for wall, _ in samples]
        median, cpu = statistics.median(walls), statistics.median(c for _, c in samples)
        goal = GOALS.get(name)
        verdict = "" if goal is None else f"≤ {goal} s: {'met' if median <= goal else 'NOT met'}"
        print(
            f"{name:26} {min(walls):7.3f} {median:7.3f} {max(walls):7.3f} {median - floor:8.3f} {cpu:8.3f}  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--no-server", action="store_true", help="skip `alto group list` (needs `alto up`)")
    parser.add_argument("--compare", type=Path, help="also run the commands from this src directory")
    args = parser.parse_args()

    python = sys.executable
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "import typer + rich": [python, "-c", "import typer, rich.console"],
        "alto --help": [ALTO, "--help"],
    }
    if args.compare:
        commands["alto --help (compare)"] = from_tree(args.compare, "--help")
    with tempfile.TemporaryDirectory(prefix="alto-bench-cli-") as tmp:
        server = None
        if not args.no_server:
            server = AltoServer(Path(tmp) / "data", extra_args=("--no-controllers", "--log-level", "warning"))
            server.start()
            commands["alto group list"] = [ALTO, "group", "list", "--data-dir", str(server.data_dir)]
            if args.compare:
                commands["alto group list (compare)"] = from_tree(
                    args.compare, "group", "list", "--data-dir", str(server.data_dir)
                )
        try:
            print(f"{args.runs} runs of each command; load average before: {loadavg()}", flush=True)
            times = measure(commands, args.runs)
            report(times)
            print(f"load average after: {loadavg()}")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
