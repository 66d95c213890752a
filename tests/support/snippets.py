"""Runs the fenced code blocks of README.md and docs/*.md as a reader would paste them (issue 16, point 4).

Why: the README's SDK snippet once failed as pasted (no CA bundle, no install line) while every test passed;
only running the documentation itself keeps it true.

A file's blocks run in order in **one bash session**, like a reader's terminal: shell blocks (``sh``, ``bash``,
the ``$ `` lines of ``console``) are sourced with ``set -e``, so a variable or ``source .venv/bin/activate`` in
one block holds in the next; a ``python`` block runs as a script of its own through the session's environment.
Every other block, and any block that cannot run in a test, carries a marker in an HTML comment on the line(s)
just before it (the reason is required, and shows in the rendered markdown's source only)::

    <!-- snippet: skip (why it cannot run in a test) -->   or an info string: ```sh no-run (why)
    <!-- snippet: clone-only (why) -->     run only by the fresh-clone test (e.g. installs into the clone's .venv)
    <!-- snippet: continues -->            a python block that goes on from the file's previous python blocks
    <!-- snippet: venv=current -->         a python block for the current SDK line (.venv-current's python)
    <!-- snippet: files=docs/examples/a.json,... -->   copies those repository files into the working directory

An unmarked block in any other language fails :func:`unmarked`: new documentation cannot drift silently.

The one rewrite: the documented default address ``127.0.0.1:8443`` becomes the test server's (a shared machine
cannot promise that port to a test).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = {"sh", "bash", "console", "shell"}
RUNNABLE = SHELL | {"python"}
DEFAULT_ADDRESS = "127.0.0.1:8443"
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")
MARKER = re.compile(r"<!--\s*snippet:\s*(?P<body>.*?)\s*-->", re.DOTALL)
REASONED = ("skip", "clone-only")


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marks: dict[str, str] = field(default_factory=dict)  # directive -> value or reason

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"

    def runs(self, clone: bool) -> bool:
        if self.lang not in RUNNABLE or "skip" in self.marks:
            return False
        if "clone-only" in self.marks:
            return clone
        return not (clone and self.marks.get("venv") == "current")  # scripts/up makes .venv only


def _parse_marks(body: str) -> dict[str, str]:
    marks: dict[str, str] = {}
    for m in re.finditer(r"([a-z-]+)(?:=(\S+))?(?:\s*\((.*?)\))?", body, re.DOTALL):
        name, value, reason = m.group(1), m.group(2), m.group(3)
        marks[name] = value if value is not None else (reason or "").strip()
    return marks


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a markdown file with the snippet markers just above each."""
    lines = path.read_text().splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m.group("fence"), len(m.group("indent"))
        info = m.group("info").strip().split()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        above = "\n".join(lines[max(0, start - 3) : start])
        marker = None
        for candidate in MARKER.finditer(above):  # the last marker above, if nothing but blank lines follow it
            if above[candidate.end() :].strip() == "":
                marker = candidate
        marks = _parse_marks(marker.group("body")) if marker else {}
        if info[1:2] == ["no-run"]:  # ```sh no-run (reason): the same as a skip marker
            marks.setdefault("skip", " ".join(info[2:]).strip("() "))
        found.append(Block(path, start + 1, info[0] if info else "", "\n".join(body) + "\n", marks))
    return found


def unmarked(block: Block) -> str | None:
    """Why this block breaks the rule (every block runs or says why not), or None."""
    for name in REASONED:
        if name in block.marks and not block.marks[name]:
            return f"{block.where}: '{name}' needs a reason in parentheses"
    if block.lang not in RUNNABLE and "skip" not in block.marks:
        lang = block.lang or "no language"
        return f"{block.where}: a ```{lang} block that does not run: mark it <!-- snippet: skip (reason) -->"
    return None


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _shell_code(block: Block) -> str:
    if block.lang != "console":
        return block.code
    return "".join(line[2:] + "\n" for line in block.code.splitlines() if line.startswith("$ "))


@dataclass
class Session:
    """Where and how a file's blocks run: a working directory, an environment, the python of each SDK line."""

    cwd: Path
    env: dict[str, str]
    python: str
    python_current: str | None = None
    address: str = DEFAULT_ADDRESS
    clone: bool = False
    root: Path = ROOT  # the repository the documents are from (``files=`` paths are relative to it)


def script(doc: list[Block], session: Session) -> tuple[str, list[Block]]:
    """The bash script that runs a file's blocks in order, and the blocks it runs."""
    work = session.cwd / ".snippets"
    work.mkdir(exist_ok=True)
    out = ["set -eo pipefail"]
    ran: list[Block] = []
    program = ""
    for n, block in enumerate(doc):
        if block.lang == "python":
            program = (program if "continues" in block.marks else "") + block.code
        if not block.runs(session.clone):
            continue
        for name in filter(None, block.marks.get("files", "").split(",")):
            shutil.copy(session.root / name, session.cwd / Path(name).name)
        code = (program if block.lang == "python" else _shell_code(block)).replace(DEFAULT_ADDRESS, session.address)
        file = work / f"{n:03d}.{'py' if block.lang == 'python' else 'sh'}"
        file.write_text(code)
        out.append(f"echo '::snippet {n} {block.where}' >&2")
        if block.lang == "python":
            python = session.python_current if block.marks.get("venv") == "current" else session.python
            if python is None:
                raise AssertionError(f"{block.where}: no .venv-current to run it with")
            out.append(f"{python} {file}")
        else:
            out.append(f"source {file}")
        ran.append(block)
    out.append("echo '::snippet done' >&2")
    return "\n".join(out) + "\n", ran


def run(doc: list[Block], session: Session, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a file's blocks; on failure, the assertion names the block that failed and shows its output."""
    text, ran = script(doc, session)
    proc = subprocess.run(
        ["bash", "-c", text], cwd=session.cwd, env=session.env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0 or "::snippet done" not in proc.stderr:
        started = re.findall(r"::snippet (\d+) (\S+)", proc.stderr)
        where = started[-1][1] if started else "(before the first block)"
        raise AssertionError(
            f"the snippet at {where} failed (exit {proc.returncode}) as pasted:\n"
            f"--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def clean_env(home: Path, path: str, **extra: str) -> dict[str, str]:
    """A reader's environment: their PATH and HOME, a locale; nothing of ours (no ALTO_*, no virtualenv, no CA
    bundle) so that a snippet that forgets to say something fails here as it would for them."""
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TERM", "TMPDIR")}
    return {**keep, "HOME": str(home), "PATH": path, "COLUMNS": "120", **extra}
