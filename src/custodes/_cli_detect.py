"""``custodes detect``: misuse detection over interchange files (DESIGN.md §6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from custodes._cli_common import AsJson, out

__all__ = ["detect_command"]


EventsFile = Annotated[Path, typer.Option("--events", help="The access log (events.jsonl).")]
AccessorsFile = Annotated[
    Path, typer.Option("--accessors", help="Who the accessors are (accessors.jsonl).")
]
SubjectsFile = Annotated[
    Path, typer.Option("--subjects", help="Subjects, as pseudonyms and tokens (subjects.jsonl).")
]
CasesFile = Annotated[Path, typer.Option("--cases", help="Cases and their subjects (cases.jsonl).")]
HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Unused: detect reads only the files given.")
]


def detect_command(
    events: EventsFile,
    accessors: AccessorsFile,
    subjects: SubjectsFile,
    cases: CasesFile,
    home: HomeOpt = None,
    as_json: AsJson = False,
) -> None:
    """Detect misuse in an access log given as interchange files."""
    from custodes.detect import detect_files  # detectors load only for this command

    report = detect_files(events=events, accessors=accessors, subjects=subjects, cases=cases)
    if as_json:
        for alert in report.alerts:
            out.file.write(json.dumps(alert.as_dict(), ensure_ascii=False) + "\n")
        out.file.flush()
        return
    out.print(
        f"[bold]{len(report.alerts)} alert(s)[/bold] over {report.events:,} events of "
        f"{report.accessors} accessors ({report.seconds:.1f} s)"
    )
    for alert in report.alerts:
        out.print(
            f"\n[bold]{alert.score:.2f}[/bold]  {escape(alert.kind)}  {escape(alert.accessor)}  "
            f"{_when(alert.first_ts)} to {_when(alert.last_ts)}  "
            f"({len(alert.evidence):,} events, first at line {alert.evidence[0] + 1})"
            if alert.evidence
            else f"\n[bold]{alert.score:.2f}[/bold]  {escape(alert.kind)}  {escape(alert.accessor)}"
        )
        out.print(f"      {escape(alert.explanation)}")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")
