"""``custodes trace-leak FILE``: is a leaked file ours, whose records, which export, whose reads."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from custodes._cli_common import AsJson, Home, emit, open_vault, out, progress_bars

if TYPE_CHECKING:
    from custodes.forensics import LeakReport

__all__ = ["trace_leak_command"]

LeakFile = Annotated[
    Path,
    typer.Argument(
        metavar="FILE",
        help="The leaked file: CSV, TSV, JSON lines or a JSON array (gzip/zip too).",
    ),
]
_VERDICTS = {
    "ours": "[bold red]ours[/bold red]",
    "not ours": "[bold green]not ours[/bold green]",
    "inconclusive": "[bold yellow]inconclusive[/bold yellow]",
}


def trace_leak_command(leak: LeakFile, home: Home = None, as_json: AsJson = False) -> None:
    """Trace a leaked file: which rows are ours, canaries, the export it came from, suspects."""
    from custodes.forensics import trace_leak  # forensics loads only for this command

    with (
        open_vault(home) as vault,
        progress_bars(10, hidden=as_json) as bars,
    ):
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        report = trace_leak(vault, leak, progress=progress)
    emit(report.as_dict(), as_json, lambda: _render(report))


def _render(report: LeakReport) -> None:
    out.print(
        f"{_VERDICTS.get(report.verdict, escape(report.verdict))}  {escape(report.source)}  "
        f"({report.format}, {report.rows:,} rows, {report.bad_rows:,} unreadable, "
        f"{report.seconds:.2f} s)"
    )
    out.print(escape(report.summary))
    for problem in report.problems[:5]:
        out.print(f"[dim]  unreadable: {escape(problem)}[/dim]")
    _columns(report)
    _exports(report)
    _canaries(report)
    _suspects(report)


def _columns(report: LeakReport) -> None:
    table = Table(title="columns", title_justify="left")
    for name in ("column", "holds", "matched as"):
        table.add_column(name, overflow="fold")
    for column, role in report.columns.items():
        table.add_row(escape(column), role, escape(report.keys.get(column, "")))
    out.print(table)
    likely = [s for s in report.collections if s.likely]
    if likely:
        shown = ", ".join(
            f"{s.collection} ({s.holders}/{s.sampled} subjects hold records)" for s in likely
        )
        out.print(f"collections: {escape(shown)}")


def _exports(report: LeakReport) -> None:
    if not report.exports:
        return
    table = Table(title="export fingerprints", title_justify="left")
    for name in ("export", "to", "org", "collection", "created", "confidence", "by", "evidence"):
        table.add_column(name, overflow="fold")
    for match in report.exports:
        table.add_row(
            escape(str(match.export_id)),
            escape(str(match.accessor)),
            escape(str(match.org)),
            escape(str(match.collection)),
            f"{match.created_at:%Y-%m-%d %H:%M}",
            f"{match.confidence:.6f}",
            escape(str(match.method)),
            escape(", ".join(f"{k}={v}" for k, v in dict(match.evidence).items())),
        )
    out.print(table)


def _canaries(report: LeakReport) -> None:
    if not report.canaries:
        return
    table = Table(title="canaries", title_justify="left")
    for name in ("pseudonym", "kind", "scope"):
        table.add_column(name, overflow="fold")
    for hit in report.canaries:
        table.add_row(escape(str(hit.pseudonym)), escape(str(hit.kind)), escape(str(hit.scope)))
    out.print(table)


def _suspects(report: LeakReport) -> None:
    if not report.suspects:
        if report.matched_rows:
            out.print("[dim]no ledgered read covers the leaked subjects[/dim]")
        return
    table = Table(title="ledger: whose reads cover the leak", title_justify="left")
    for name in (
        "accessor",
        "org",
        "role",
        "covered",
        "all fields",
        "precision",
        "reads",
        "window",
    ):
        table.add_column(name, overflow="fold")
    for s in report.suspects:
        table.add_row(
            escape(s.accessor),
            escape(s.org),
            escape(s.role),
            f"{s.coverage:.0%} ({s.covered}/{s.sampled})",
            f"{s.full}/{s.sampled}",
            f"{s.precision:.0%}",
            f"{'≥' if s.read_capped else ''}{s.read_subjects:,}",
            f"{s.first_read:%Y-%m-%d %H:%M} to {s.last_read:%Y-%m-%d %H:%M}",
        )
    out.print(table)
