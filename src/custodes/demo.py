"""``custodes demo``: a month in a records system, with the reported abuses injected.

A fresh vault (reproducible keys derived from the seed: demo data only), a synthetic population
and its organizations, a month of normal work and injected misuse through the real vault, then
the ledger verified, a checkpoint signed and cosigned by an independent witness, and a summary
of what happened with the ground truth. Optionally the interchange files and ``truth.json``.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import Settings
from custodes.detect import Alert, detect_files
from custodes.errors import InputError
from custodes.ledger import CheckpointLog
from custodes.ledger.export import ExportSummary, export_ledger
from custodes.ledger.witness import Witness, publish_cosignature
from custodes.model import Accessor

if TYPE_CHECKING:
    from custodes.forensics import LeakReport
from custodes.policy import new_case_id
from custodes.sim import (
    MIXES,
    Misuse,
    SimResult,
    World,
    accessor_rows,
    build_world,
    simulate,
    subject_rows,
)
from custodes.vault import Vault

__all__ = ["AUDITOR", "DEMO_START", "DemoReport", "Victim", "run_demo"]

# The simulated month starts on a Monday; every timestamp is simulated, never wall-clock.
DEMO_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
MIN_PEOPLE = 100  # enough for every organization, household and kind of misuse
MAX_PEOPLE = 1_000_000
# Simulated time jumps between operations, so a checkpoint every 60 simulated seconds would be
# one per event; the demo signs one per simulated hour (and every 1,000 entries).
DEMO_CHECKPOINT_SECONDS = 3600
MAX_DAYS = 366

Progress = Callable[[str, int, int], None]
# The custodian's oversight officer: reviews alerts on the dashboard, has no access to records.
AUDITOR = Accessor(accessor="auditor-1", org="oversight-office", role="auditor")
WITNESS_NAME = "witness.custodes.local/demo"


@dataclass(frozen=True)
class Leak:
    """The simulated leak: a cut-down, reformatted sample of one export, and what tracing said."""

    path: Path
    export_id: str
    recipient: str
    rows: int
    trace: LeakReport

    @property
    def attributed(self) -> bool:
        """Whether tracing named the export the sample came from, first."""
        found = self.trace.exports
        return bool(found) and found[0].export_id == self.export_id

    def as_dict(self) -> dict[str, Any]:
        """The leak and its trace as JSON-able data."""
        return {
            "file": str(self.path),
            "export_id": self.export_id,
            "recipient": self.recipient,
            "rows": self.rows,
            "attributed": self.attributed,
            "trace": self.trace.as_dict(),
        }


@dataclass(frozen=True)
class Victim:
    """A subject whose record an injected abuser read: who to sign in as in the portal."""

    subject: str  # ID number (synthetic)
    name: str
    accessor: str
    kind: str
    events: tuple[int, ...]  # ledger seqs of the abuser's reads of this subject

    def as_dict(self) -> dict[str, Any]:
        """The victim as JSON-able data."""
        return {
            "subject": self.subject,
            "name": self.name,
            "accessor": self.accessor,
            "kind": self.kind,
            "events": list(self.events),
        }


@dataclass
class DemoReport:
    """What one demo run did and found; ``as_dict`` is the ``--json`` output."""

    home: Path
    seed: int
    people: int
    days: int
    mix: str
    organizations: int
    accessors: int
    result: SimResult
    ledger_size: int
    ledger_root: str
    verified: bool
    checkpoint: str
    witness: str
    cosigned: bool
    seconds: float
    export: ExportSummary | None = None
    by_kind: dict[str, list[Misuse]] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    victims: list[Victim] = field(default_factory=list)
    leak: Leak | None = None

    @property
    def caught(self) -> set[str]:
        """Accessors with an alert."""
        return {a.accessor for a in self.alerts}

    def detection(self) -> dict[str, Any]:
        """Detection against the ground truth: misusers caught per kind, false alerts."""
        misusers = {m.accessor for m in self.result.truth}
        by_kind = {
            kind: {
                "misusers": len({m.accessor for m in found}),
                "caught": len({m.accessor for m in found} & self.caught),
            }
            for kind, found in sorted(self.by_kind.items())
        }
        return {
            "misusers": len(misusers),
            "caught": len(misusers & self.caught),
            "false_alerts": len(self.caught - misusers),
            "by_kind": by_kind,
        }

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-able data, ground truth included."""
        r = self.result
        return {
            "home": str(self.home),
            "seed": self.seed,
            "people": self.people,
            "days": self.days,
            "mix": self.mix,
            "organizations": self.organizations,
            "accessors": self.accessors,
            "records": r.records,
            "events": r.events,
            "denied": r.denied,
            "cases": r.cases,
            "operations": dict(sorted(r.operations.items())),
            "simulated_from": r.start.isoformat(),
            "simulated_to": r.end.isoformat(),
            "ledger": {
                "size": self.ledger_size,
                "root": self.ledger_root,
                "verified": self.verified,
                "checkpoint": self.checkpoint,
                "witness": self.witness,
                "cosigned": self.cosigned,
            },
            "truth": [_misuse(m) for m in r.truth],
            "export": None if self.export is None else str(self.export.directory),
            "detection": self.detection(),
            "alerts": [a.as_dict() for a in self.alerts],
            "victims": [v.as_dict() for v in self.victims],
            "leak": None if self.leak is None else self.leak.as_dict(),
            "auditor": AUDITOR.accessor,
            "seconds": round(self.seconds, 1),
        }


def _misuse(m: Misuse) -> dict[str, Any]:
    return {"accessor": m.accessor, "kind": m.kind, "events": list(m.events), "note": m.note}


def _check(people: int, days: int, mix: str) -> None:
    if not MIN_PEOPLE <= people <= MAX_PEOPLE:
        raise InputError(f"--people must be between {MIN_PEOPLE} and {MAX_PEOPLE:,}, not {people}")
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"--days must be between 1 and {MAX_DAYS}, not {days}")
    if mix not in MIXES:
        raise InputError(f"--mix must be one of {', '.join(MIXES)}, not {mix!r}")


def run_demo(
    home: Path,
    *,
    people: int,
    days: int,
    seed: int,
    export: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    mix: str = "standard",
) -> DemoReport:
    """Run the whole demo in a new vault home ``home`` and return the report.

    ``mix`` is the simulator's scenario mix (``standard``, or ``shifted``: held out from
    detection tuning, with other benign-noise levels and misuse intensities).

    Raises:
        InputError: bad sizes, an unknown mix, or ``home`` already holds a vault.
        ConfigError: the home cannot be created.
        VerificationError: the ledger does not verify or the witness refuses (a bug: report it).
    """
    _check(people, days, mix)
    if export is not None and export.exists() and not export.is_dir():
        raise InputError(f"--export {export} is not a directory")
    began = time.perf_counter()
    settings = _demo_home(home, seed)
    clock = ManualClock(DEMO_START)
    ids = random.Random(f"custodes demo case ids {seed}")  # noqa: S311 - reproducible demo ids
    world = build_world(people, seed=seed)
    with Vault.open(settings, clock=clock, case_ids=lambda: new_case_id(ids.randbytes(8))) as vault:
        result = simulate(
            vault, world, days=days, seed=seed, clock=clock, progress=progress, mix=mix
        )
        if progress is not None:
            progress("verifying the ledger", 0, 1)
        ledger = vault.ledger
        ledger.verify()
        size = ledger.size()
        root = ledger.root(size)
        signed = CheckpointLog.open(settings).sign(ledger, clock())
        witness = Witness.create(home / "witness", WITNESS_NAME)
        witness.trust(CheckpointLog.open(settings).vkey)
        publish_cosignature(
            settings.ledger_dir, witness.name, witness.cosign(signed.note, ledger, clock())
        )
        _trust_witness(settings, witness.vkey)
        vault.add_accessor(AUDITOR)
        victims = _victims(vault, world, result)
        leak = _leak(vault, result, home, seed, progress)
        if progress is not None:
            progress("verifying the ledger", 1, 1)
        summary = None
        if export is not None:
            summary = _export(vault, world, result, export, force=force, seed=seed, mix=mix)
        alerts = _detect(vault, world, result, export, progress)
        _annotate(home, vault, world, alerts)
    report = DemoReport(
        home=home,
        seed=seed,
        people=people,
        days=days,
        mix=mix,
        organizations=len(world.orgs),
        accessors=len(world.staff),
        result=result,
        ledger_size=size,
        ledger_root=root.hex(),
        verified=True,
        checkpoint=signed.note,
        witness=witness.vkey,
        cosigned=True,
        seconds=time.perf_counter() - began,
        export=summary,
        alerts=alerts,
        victims=victims,
        leak=leak,
    )
    for m in result.truth:
        report.by_kind.setdefault(m.kind, []).append(m)
    return report


# The abuses whose victims are worth signing in as: someone read their record for no reason.
_VICTIM_KINDS = ("seller", "covered_seller", "stalking", "family_lookup", "vip_snooping")


def _victims(vault: Vault, world: World, result: SimResult) -> list[Victim]:
    """For each kind of targeted abuse, the subject its abuser read most (ties: lowest seq)."""
    people = {vault.pseudonym(p.id_number): p for p in world.people}
    reads: dict[tuple[str, str, str], list[int]] = {}
    wanted = {m.kind: m for m in result.truth if m.kind in _VICTIM_KINDS}
    for kind, misuse in wanted.items():
        picked = set(misuse.events)
        for seq, event in vault.store.events(min(picked), max(picked) + 1):
            if seq in picked and event.subject in people and event.decision == "allow":
                reads.setdefault((kind, misuse.accessor, event.subject), []).append(seq)
    best: dict[str, tuple[str, str, list[int]]] = {}
    for (kind, accessor, pseudonym), seqs in reads.items():
        if kind not in best or (len(seqs), -seqs[0]) > (len(best[kind][2]), -best[kind][2][0]):
            best[kind] = (accessor, pseudonym, seqs)
    return [
        Victim(
            subject=people[pseudonym].id_number,
            name=people[pseudonym].name,
            accessor=accessor,
            kind=kind,
            events=tuple(seqs),
        )
        for kind in _VICTIM_KINDS
        if kind in best
        for accessor, pseudonym, seqs in [best[kind]]
    ]


def _leak(
    vault: Vault, result: SimResult, home: Path, seed: int, progress: Progress | None
) -> Leak | None:
    """An insider posts 5% of the month's last export, reformatted, as a 'sample'; trace it."""
    if not result.exports:
        return None
    from custodes.forensics import insider_leak, trace_leak

    if progress is not None:
        progress("tracing a leaked sample", 0, 1)
    done = result.exports[-1]
    rows = [record.values for record in done.records]
    path = insider_leak(rows, home / "leak-sample.csv", fraction=0.05, seed=seed)
    trace = trace_leak(vault, path)
    if progress is not None:
        progress("tracing a leaked sample", 1, 1)
    mark = next(vault.store.events(done.ledger_index, done.ledger_index + 1))[1]
    return Leak(
        path=path,
        export_id=done.export_id,
        recipient=mark.accessor,
        rows=max(1, round(len(rows) * 0.05)),
        trace=trace,
    )


def _trust_witness(settings: Settings, vkey: str) -> None:
    """Name the demo's witness in custodes.toml, so the portal shows and checks its cosignature."""
    config = settings.home / "custodes.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[ledger]\n", f"[ledger]\nwitnesses = [{json.dumps(vkey)}]\n", 1),
        encoding="utf-8",
    )


def _detect(
    vault: Vault, world: World, result: SimResult, export: Path | None, progress: Progress | None
) -> list[Alert]:
    """Run the batch detectors over the month, from the same interchange files as an export."""
    if progress is not None:
        progress("detecting misuse", 0, 1)
    with tempfile.TemporaryDirectory(prefix="custodes-demo-") as scratch:
        directory = export
        if directory is None:
            directory = Path(scratch)
            _export(vault, world, result, directory, force=True, seed=0)
        report = detect_files(
            events=directory / "events.jsonl",
            accessors=directory / "accessors.jsonl",
            subjects=directory / "subjects.jsonl",
            cases=directory / "cases.jsonl",
        )
    if progress is not None:
        progress("detecting misuse", 1, 1)
    return report.alerts


def _annotate(home: Path, vault: Vault, world: World, alerts: list[Alert]) -> None:
    # What the simulator knows about people (canaries, protected persons, employers, households,
    # as keyed tokens) goes where the vault's streaming detector looks for it.
    directory = home / "detect"
    directory.mkdir(mode=0o700, exist_ok=True)
    _write_lines(directory / "subjects.jsonl", subject_rows(vault, world))
    _write_lines(directory / "accessors.jsonl", accessor_rows(vault, world))
    # The month's alerts, so that `custodes alerts --home` lists them (found in batch after
    # the fact, hence not "live").
    written = datetime.now(UTC).isoformat()
    lines = [{**a.as_dict(), "live": False, "written_at": written} for a in alerts]
    _write_lines(directory / "alerts.jsonl", lines)


def _demo_home(home: Path, seed: int) -> Settings:
    settings = init_home(home, demo_seed=seed)
    config = settings.home / "custodes.toml"
    text = config.read_text(encoding="utf-8")
    text = text.replace(
        "checkpoint_seconds = 60", f"checkpoint_seconds = {DEMO_CHECKPOINT_SECONDS}", 1
    )
    config.write_text(
        "# A custodes demo vault: its root key is derived from the seed (reproducible runs).\n"
        "# It holds synthetic people only; never put real personal data in it.\n" + text,
        encoding="utf-8",
    )
    return Settings.load(settings.home)


def _export(
    vault: Vault,
    world: World,
    result: SimResult,
    directory: Path,
    *,
    force: bool,
    seed: int,
    mix: str = "standard",
) -> ExportSummary:
    summary = export_ledger(vault, directory, force=force)
    # The simulator knows what a plain vault export cannot: employers, households, protected
    # persons, canaries and relationships (as keyed tokens and flags, never plaintext).
    _write_lines(directory / "subjects.jsonl", subject_rows(vault, world))
    _write_lines(directory / "accessors.jsonl", accessor_rows(vault, world))
    truth = {
        "seed": seed,
        "mix": mix,
        "people": len(world.people),
        "ledger_size": summary.size,
        "misuse": [_misuse(m) for m in result.truth],
    }
    _write_text(directory / "truth.json", json.dumps(truth, indent=2, sort_keys=True) + "\n")
    return summary


def _write_lines(path: Path, rows: list[dict[str, object]]) -> None:
    text = "".join(
        json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"
        for row in rows
    )
    _write_text(path, text)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
