"""Asking before a command destroys something, as `az` does: ``--yes`` skips the question; without a terminal to
ask on (a script, a pipe) the command refuses rather than guess, and says how to go ahead."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from altostratus.cli.output import err_console

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def confirm(question: str, yes: bool) -> None:
    """Return if the user agrees (or gave --yes); otherwise exit: 1 when they said no, 2 when nobody could answer."""
    if yes:
        return
    if not sys.stdin.isatty():
        err_console.print(
            f"{question} Not asked: stdin is not a terminal. Add --yes to go ahead.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    if not typer.confirm(question, default=False, err=True):
        err_console.print("Nothing was changed.")
        raise typer.Exit(1)
