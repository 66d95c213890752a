"""bench/concurrency.py end to end on a tiny load: the clients' mix runs against ``alto up`` with no errors.

The figures of such a run mean nothing and are not checked; what is checked is that the bench still works (the
setup, every request type of the mix answered with its expected status), so a change that breaks it shows here
and not when someone needs the figures. ~20 s.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_tiny_run_answers_the_whole_mix_without_errors() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "concurrency.py"), "--clients", "4", "--duration", "3",
         "--rounds", "1", "--warmup", "0.5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = re.search(r"this tree: (\d+) requests in .*?, (\d+) errors", run.stdout)
    assert summary is not None, run.stdout
    assert int(summary.group(1)) > 0 and int(summary.group(2)) == 0, run.stdout
    rows = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^(all \w+)\s+(\d+)\s+(\d+)", run.stdout, re.M)
    }
    assert rows["all reads"][0] > 0 and rows["all writes"][0] > 0, run.stdout
    assert rows["all reads"][1] == 0 and rows["all writes"][1] == 0, run.stdout
    assert "goal (write p99" in run.stdout
