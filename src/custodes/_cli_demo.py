"""``custodes demo``: the main job, with progress bars and a one-screen summary."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from custodes._cli_common import AsJson, emit, err, out

if TYPE_CHECKING:
    from custodes.demo import DemoReport

__all__ = ["demo_command"]

People = Annotated[int, typer.Option("--people", help="Size of the synthetic population.")]
Days = Annotated[int, typer.Option("--days", help="Days of simulated work.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed: the same seed gives the same run.")]
Mix = Annotated[
    str,
    typer.Option(
        "--mix",
        help="Scenario mix: standard, or shifted (other noise levels and misuse intensities).",
    ),
]
NoServe = Annotated[
    bool, typer.Option("--no-serve", help="Do not serve the portal and dashboard afterwards.")
]
Export = Annotated[
    Path | None,
    typer.Option("--export", help="Also write the interchange files and truth.json here."),
]
Force = Annotated[bool, typer.Option("--force", help="Overwrite existing export files.")]
DemoHome = Annotated[
    Path | None,
    typer.Option("--home", help="New vault home for the demo (default: a fresh temp directory)."),
]


def demo_command(
    people: People = 2_000,
    days: Days = 30,
    seed: Seed = 7,
    mix: Mix = "standard",
    no_serve: NoServe = False,
    export: Export = None,
    force: Force = False,
    home: DemoHome = None,
    as_json: AsJson = False,
) -> None:
    """Run a month in a records system with the reported abuses injected, and summarize it."""
    from custodes.demo import run_demo  # the simulator loads only for the demo

    target = home if home is not None else Path(tempfile.mkdtemp(prefix="custodes-demo-")) / "vault"
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=as_json,
    ) as bars:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        report = run_demo(
            target, people=people, days=days, seed=seed, export=export, force=force,
            progress=progress, mix=mix,
        )  # fmt: skip
    emit(report.as_dict(), as_json, lambda: _summary(report))
    if not no_serve and not as_json:
        out.print(
            "[dim]The transparency portal and auditor dashboard come with the service (issue "
            "6); nothing to serve yet. Inspect the vault with[/dim] "
            f"custodes ledger verify --home {report.home}"
        )


def _summary(report: DemoReport) -> None:
    r = report.result
    facts = Table.grid(padding=(0, 2))
    facts.add_column(justify="right", style="bold")
    facts.add_column()
    facts.add_row("population", f"{report.people:,} people (seed {report.seed}, {report.mix} mix)")
    facts.add_row("organizations", f"{report.organizations} with {report.accessors} accessors")
    facts.add_row("simulated", f"{report.days} days, {r.start:%Y-%m-%d} to {r.end:%Y-%m-%d}")
    facts.add_row("records", f"{r.records:,} (encrypted per field, keys per subject)")
    facts.add_row("access events", f"{r.events:,}, of which {r.denied:,} denied")
    facts.add_row("cases", f"{r.cases:,}")
    facts.add_row(
        "ledger",
        f"{report.ledger_size:,} entries, verified; checkpoint signed and cosigned by a witness",
    )
    facts.add_row("root", report.ledger_root)
    if report.export is not None:
        facts.add_row("exported", f"{report.export.directory} (interchange files + truth.json)")
    facts.add_row("vault home", str(report.home))
    facts.add_row("took", f"{report.seconds:.1f} s")
    out.print(Panel(facts, title="custodes demo", expand=False))

    caught = report.caught
    truth = Table(
        title="Injected misuse (ground truth) and what detection caught", title_justify="left"
    )
    truth.add_column("kind")
    truth.add_column("accessor")
    truth.add_column("events", justify="right")
    truth.add_column("caught")
    truth.add_column("what happened")
    for kind in sorted(report.by_kind):
        for m in report.by_kind[kind]:
            mark = "[green]yes[/green]" if m.accessor in caught else "[red]no[/red]"
            truth.add_row(kind, m.accessor, f"{len(m.events):,}", mark, m.note)
    out.print(truth)
    d = report.detection()
    out.print(
        f"detection: caught [bold]{d['caught']} of {d['misusers']}[/bold] misusing accessors, "
        f"{d['false_alerts']} false alert(s) among the others; every access above is in the "
        "verifiable ledger. [dim]custodes detect --help[/dim]"
    )
