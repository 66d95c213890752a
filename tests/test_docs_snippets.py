"""Every fenced block of README.md and docs/*.md runs as pasted, against a running `alto up` (issue 16, point 4);
what cannot run says why in a marker. How blocks run and the markers: tests/support/snippets.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import snippets
from tests.support.server import AltoServer

DOCS = snippets.documents()
RUN = [doc for doc in DOCS if any(block.runs(clone=False) for block in snippets.blocks(doc))]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
VENV = Path(sys.prefix)


def test_every_block_runs_or_says_why_not() -> None:
    problems = [problem for doc in DOCS for block in snippets.blocks(doc) if (problem := snippets.unmarked(block))]
    assert problems == []


def reader_home(home: Path) -> None:
    """What a reader's HOME has that the docs take for granted: an SSH key (vmss create's default). And a
    ~/.curlrc that makes curl fail on an HTTP error, so a curl snippet the server refuses fails here."""
    (home / ".ssh").mkdir(mode=0o700, parents=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / ".ssh/id_ed25519")], check=True)
    (home / ".curlrc").write_text("--fail-with-body\n--no-progress-meter\n")


def workdir(path: Path) -> Path:
    """The repository as a reader's working directory: its files, and the virtualenvs scripts/up and scripts/test
    make (here: the ones running this test). Snippets write their own files here, not into the repository."""
    path.mkdir()
    for entry in snippets.ROOT.iterdir():
        if entry.name not in (".git", ".venv", ".venv-current") and not entry.name.startswith(".snippets"):
            (path / entry.name).symlink_to(entry)
    (path / ".venv").symlink_to(VENV)
    current = VENV.with_name(".venv-current")
    if current.exists():
        (path / ".venv-current").symlink_to(current)
    return path


@pytest.mark.parametrize("doc", RUN, ids=[str(d.relative_to(snippets.ROOT)) for d in RUN])
def test_snippets_run_as_pasted(doc: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    reader_home(home)
    server = AltoServer(home / ".altostratus", extra_args=("--log-level", "warning")).start()
    try:
        current = VENV.with_name(".venv-current") / "bin" / "python"
        session = snippets.Session(
            cwd=workdir(tmp_path / "work"),
            # As after README's `source .venv/bin/activate`; the repository's src, as the editable install points.
            env=snippets.clean_env(
                home, f"{VENV}/bin:{SYSTEM_PATH}", PYTHONPATH=str(snippets.ROOT / "src"), PIP_DRY_RUN="1"
            ),
            python=str(VENV / "bin" / "python"),
            python_current=str(current) if current.exists() else None,
            address=f"127.0.0.1:{server.port}",
        )
        proc = snippets.run(snippets.blocks(doc), session)
        # pip runs dry here: a version the docs name that the virtualenv lacks is a wrong install line.
        assert "Would install" not in proc.stdout, proc.stdout
    finally:
        server.close()


def test_the_rules_catch_what_would_drift(tmp_path: Path) -> None:
    """The checks themselves: an unmarked output block or a skip without a reason is reported; markers, the
    ``no-run`` info string and console prompts are read as documented in tests/support/snippets.py."""
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n```\nsome output\n```\n\n"
        "<!-- snippet: skip -->\n```sh\nrm -rf /\n```\n\n"
        "<!-- snippet: skip (an output sample) -->\n```text\nfine\n```\n\n"
        "```sh no-run (an example)\nalso fine\n```\n\n"
        "```console\n$ alto group list\nName  Location\n```\n\n"
        "<!-- snippet: continues venv=current -->\n```python\nprint(1)\n```\n"
    )
    found = snippets.blocks(page)
    assert [b.lang for b in found] == ["", "sh", "text", "sh", "console", "python"]
    problems = [snippets.unmarked(b) for b in found]
    assert problems[0] is not None and "does not run" in problems[0] and ":3" in problems[0]
    assert problems[1] is not None and "needs a reason" in problems[1]
    assert problems[2:] == [None, None, None, None]
    assert [b.runs(clone=False) for b in found] == [False, False, False, False, True, True]
    assert found[5].marks == {"continues": "", "venv": "current"} and not found[5].runs(clone=True)
    text, ran = snippets.script(found, snippets.Session(cwd=tmp_path, env={}, python="py", python_current="py3"))
    assert ran == found[4:] and (tmp_path / ".snippets" / "004.sh").read_text() == "alto group list\n"
    assert "source " in text and "py3 " in text  # the console block is sourced, the python block runs in venv=current
