"""Options, consoles and helpers shared by every ``custodes`` sub-command module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from custodes.config import Settings, default_home
from custodes.vault import Vault

__all__ = [
    "As",
    "AsJson",
    "BreakGlass",
    "CaseOpt",
    "FieldsOpt",
    "Home",
    "Justification",
    "Purpose",
    "Subject",
    "emit",
    "err",
    "open_vault",
    "out",
    "progress_bars",
]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Home = Annotated[
    Path | None,
    typer.Option("--home", help="Vault home (default: $CUSTODES_HOME, else ./.custodes)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
As = Annotated[str, typer.Option("--as", help="The accessor making this call.")]
Purpose = Annotated[
    str | None, typer.Option("--purpose", help="Why: a purpose declared in the policy.")
]
CaseOpt = Annotated[str | None, typer.Option("--case", help="The case that explains this access.")]
Subject = Annotated[str, typer.Option("--subject", help="The subject's ID number.")]
FieldsOpt = Annotated[
    str | None, typer.Option("--fields", help="Comma-separated fields (default: the grant's).")
]
BreakGlass = Annotated[
    bool, typer.Option("--break-glass", help="Emergency access where policy permits; flagged.")
]
Justification = Annotated[
    str | None, typer.Option("--justification", help="Why break-glass access is needed.")
]


@contextmanager
def open_vault(home: Path | None) -> Iterator[Vault]:
    with Vault.open(Settings.load(home or default_home())) as vault:
        yield vault


def emit(data: Any, as_json: bool, render: Any = None) -> None:
    if as_json or render is None:
        out.print_json(json.dumps(data, ensure_ascii=False, default=str))
    else:
        render()


def progress_bars(width: int, *, hidden: bool) -> Progress:
    """Progress bars on standard error (a label ``width`` wide, bar, count, time); nothing is
    drawn when ``hidden`` (for ``--json``) and nothing is left on screen afterwards."""
    return Progress(
        TextColumn(f"{{task.description:<{width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=hidden,
    )
