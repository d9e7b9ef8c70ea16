"""``custodes demo``: the main job, with progress bars and a one-screen summary."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.panel import Panel
from rich.table import Table

from custodes._cli_common import AsJson, emit, out, progress_bars

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
Host = Annotated[str, typer.Option("--host", help="Address to serve the portal and dashboard on.")]
Port = Annotated[int, typer.Option("--port", help="Port to serve the portal and dashboard on.")]
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
    host: Host = "127.0.0.1",
    port: Port = 8470,
    as_json: AsJson = False,
) -> None:
    """Run a month in a records system with the reported abuses injected, and summarize it."""
    from custodes.demo import run_demo  # the simulator loads only for the demo

    if not no_serve and not as_json:
        _check_port(host, port)  # before the month of work, not after
    target = home if home is not None else Path(tempfile.mkdtemp(prefix="custodes-demo-")) / "vault"
    with progress_bars(28, hidden=as_json) as bars:
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
        _serve(report, host, port)


def _check_port(host: str, port: int) -> None:
    import socket

    from custodes.errors import InputError

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise InputError(
            f"cannot serve on {host}:{port} ({exc.strerror}); pass another --port, or --no-serve"
        ) from exc


def _serve(report: DemoReport, host: str, port: int) -> None:
    """Serve the API, portal and dashboard of the demo vault, with sign-in instructions."""
    from datetime import timedelta

    from custodes._cli_serve import run_server
    from custodes.api import Credentials, create_app
    from custodes.config import Settings
    from custodes.demo import AUDITOR
    from custodes.model import CredentialKind

    settings = Settings.load(report.home)
    app = create_app(settings)
    service = app.state.service
    credentials: Credentials = service.credentials
    token = credentials.issue(
        CredentialKind.API_TOKEN, AUDITOR.accessor, timedelta(days=settings.api.token_days)
    )
    base = f"http://{host}:{port}"
    lines = [f"[bold]Serving[/bold] {base}  (Ctrl-C stops it)", ""]
    lines.append(f"[bold]Transparency portal[/bold] {base}/portal/login — sign in as a victim:")
    for victim in report.victims:
        code = credentials.issue(
            CredentialKind.PORTAL_CODE,
            service.vault.pseudonym(victim.subject),
            timedelta(minutes=settings.api.portal_code_minutes),
        )
        lines.append(
            f"  {victim.kind:<16} {victim.name} ({victim.subject}): one-time code [bold]{code}"
            f"[/bold]  — {len(victim.events)} reads by {victim.accessor}"
        )
    lines += [
        f"  new codes: custodes portal-code --home {report.home} SUBJECT_ID",
        "",
        f"[bold]Auditor dashboard[/bold] {base}/dashboard/login — paste the auditor's API token:",
        f"  {token}",
        "",
        f"[bold]API[/bold] {base}/openapi.json — e.g. curl -H 'Authorization: Bearer {token}' "
        f"{base}/v1/alerts",
    ]
    out.print(Panel("\n".join(lines), title="custodes is serving", expand=False))
    run_server(app, host=host, port=port, access_log=False)  # as `custodes serve` does


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
    if report.leak is not None:
        _leak_summary(report)


def _leak_summary(report: DemoReport) -> None:
    leak = report.leak
    assert leak is not None  # noqa: S101 - checked by the caller
    found = leak.trace.exports
    if leak.attributed:
        best = found[0]
        named = (
            f"traced to export [bold]{best.export_id}[/bold] of {best.collection} to "
            f"[bold]{best.accessor}[/bold] ({best.org}) on {best.created_at:%Y-%m-%d %H:%M}, "
            f"confidence {best.confidence:.3f} ({best.method})"
        )
    else:
        named = "[red]not attributed to its export[/red]"
    out.print(
        f"leak: an insider's sample of {leak.rows} rows ({leak.path.name}: shuffled, columns "
        f"renamed and reordered) — verdict [bold]{leak.trace.verdict}[/bold], {named}. "
        f"[dim]custodes trace-leak --home {report.home} {leak.path}[/dim]"
    )
