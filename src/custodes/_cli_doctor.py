"""``custodes doctor``: check a deployment for unsafe settings (see :mod:`custodes.doctor`)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from custodes._cli_common import AsJson, Home, emit, out
from custodes.config import Settings, default_home
from custodes.doctor import Report, Status, run_doctor

__all__ = ["doctor_command"]

Strict = Annotated[
    bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on failures.")
]
_STYLE = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


def doctor_command(home: Home = None, strict: Strict = False, as_json: AsJson = False) -> None:
    """Check a deployment for unsafe settings: keys, files, database guards, ledger, policy.

    Exits 1 if a check fails (or, with --strict, warns); changes nothing.
    """
    report = run_doctor(Settings.load(home or default_home()))
    emit(report.as_dict(), as_json, lambda: _render(report))
    if report.worst is Status.FAIL or (strict and report.worst is Status.WARN):
        raise typer.Exit(1)


def _render(report: Report) -> None:
    table = Table(show_lines=False)
    table.add_column("", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("finding", overflow="fold")
    for finding in report.findings:
        style = _STYLE[finding.status]
        text = escape(finding.message)
        if finding.fix and finding.status is not Status.OK:
            text += f"\n[dim]→ {escape(finding.fix)}[/dim]"
        table.add_row(f"[{style}]{finding.status}[/{style}]", finding.check, text)
    out.print(table)
    counts = ", ".join(f"{report.count(s)} {s}" for s in Status)
    verdict = {
        Status.OK: "[green]nothing unsafe found[/green]",
        Status.WARN: "[yellow]safe to run; fix the warnings before holding real data[/yellow]",
        Status.FAIL: "[bold red]unsafe: fix the failures first[/bold red]",
    }[report.worst]
    out.print(f"{escape(str(report.home))}: {counts} — {verdict}")
