"""A simulated month of work in a vault, with injected misuse and its ground truth.

:func:`simulate` registers the world's staff, loads everyone's records, then runs ``days`` days
of ordinary work (hotels, airlines, ports, banks, police stations, the telecom operator and the
ministry) and the misuse planned in the world, each call at its own simulated moment and always
through the vault, so that every access is decided by policy and ledgered. It returns the
ground truth: for each misuse, the ledger indexes of the events it wrote.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from custodes.clock import ManualClock
from custodes.errors import InputError
from custodes.model import Accessor
from custodes.sim._misuse import deactivate_leavers, plan_misuse
from custodes.sim._mix import mix_named
from custodes.sim._people import Person, sample_records
from custodes.sim._runner import Runner
from custodes.sim._work import Police, plan_day
from custodes.sim.world import MISUSE_KINDS, World
from custodes.vault import Vault

if TYPE_CHECKING:
    from custodes.forensics import FingerprintedExport

__all__ = ["Misuse", "SimResult", "simulate"]

Progress = Callable[[str, int, int], None]

_LOAD_PEOPLE = 1_000  # people per loading round: one put_many per collection and round
# Collections a statistics export may cover. Canaries hold none of them, so that no legitimate
# work (statistics exports included) ever touches a canary.
_EXPORTABLE = frozenset({"hotel_stays", "flights", "border_crossings", "rentals"})
_REGISTRY = "registrar"


@dataclass(frozen=True)
class Misuse:
    """One injected misuse: who, which kind, the ledger indexes of its events, and what it was."""

    accessor: str
    kind: str
    events: tuple[int, ...]
    note: str


@dataclass
class SimResult:
    """What a simulation did: the ground truth of misuse, and counts.

    ``records`` written, ``events`` ledgered, ``denied`` refusals, ``cases`` opened,
    ``operations`` run per kind of work; ``start`` and ``end`` are simulated times.
    """

    truth: list[Misuse]
    records: int
    events: int
    denied: int
    cases: int
    start: datetime
    end: datetime
    operations: dict[str, int]
    # The fingerprinted exports the month's legitimate work made (custodes.forensics), in order;
    # not compared: record ids are random per vault.
    exports: list[FingerprintedExport] = field(default_factory=list, compare=False, repr=False)


def simulate(
    vault: Vault,
    world: World,
    *,
    days: int,
    seed: int,
    clock: ManualClock,
    progress: Progress | None = None,
    mix: str = "standard",
) -> SimResult:
    """Run ``days`` days of ``world`` in ``vault``, starting at ``clock``'s time.

    ``mix`` names the scenario mix (``standard`` or ``shifted``: see ``custodes.sim.MIXES``):
    how much benign noise the month carries and how hard each misuse presses.

    The vault should be empty and read time from ``clock``; day 0 is the local (policy time
    zone) date of the clock's time. The departing employee's leaving date depends on ``days``,
    so the simulation records it in ``world.staff`` (``active_to``).

    Raises:
        InputError: ``days`` is less than 1, an unknown mix, or the world has no registrar
            to load records.
    """
    if days < 1:
        raise InputError(f"days must be at least 1, not {days}")
    scenario = mix_named(mix)
    start = clock.now
    first_events = vault.store.event_count()
    runner = Runner(
        vault=vault,
        world=world,
        clock=clock,
        seed=seed,
        first_day=_local_day(vault, start),
        mix=scenario,
    )
    _register(runner, progress)
    _load(runner, seed, progress)
    police = Police(runner)
    plan_misuse(runner, police, days)
    for day in range(days):
        plan_day(runner, police, day, days)
        runner.run_until(runner.when(day + 1, 0))
        if progress is not None:
            progress("simulating the month", day + 1, days)
    deactivate_leavers(runner)
    return SimResult(
        truth=_truth(runner),
        records=runner.records,
        events=vault.store.event_count() - first_events,
        denied=runner.denied,
        cases=runner.cases,
        start=start,
        end=clock.now,
        operations=dict(sorted(runner.operations.items())),
        exports=list(runner.exports),
    )


def _local_day(vault: Vault, moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(vault.policy.timezone)).date()


def _register(runner: Runner, progress: Progress | None) -> None:
    staff = runner.world.staff
    for done, member in enumerate(staff, 1):
        runner.vault.add_accessor(Accessor(member.accessor, member.org, member.role))
        if progress is not None and (done % 50 == 0 or done == len(staff)):
            progress("registering staff", done, len(staff))


def _load(runner: Runner, seed: int, progress: Progress | None) -> None:
    """Load identity and history for everyone, and the canaries, in large batches."""
    world = runner.world
    registrar = next((s for s in world.staff if s.org == "ministry" and s.role == _REGISTRY), None)
    if registrar is None:
        raise InputError("the world has no ministry registrar to load the records")
    access = runner.access(registrar, "registration")
    rng = random.Random(f"custodes.sim.records:{seed}")  # noqa: S311 - simulation data
    canaries = {p.id_number for p in world.canaries}
    everyone: list[Person] = [*world.people, *world.canaries]
    for lo in range(0, len(everyone), _LOAD_PEOPLE):
        batch: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for person in everyone[lo : lo + _LOAD_PEOPLE]:
            for collection, records in sample_records(person, rng).items():
                if person.id_number in canaries and collection in _EXPORTABLE:
                    continue
                batch.setdefault(collection, []).extend((person.id_number, r) for r in records)
        for collection, items in batch.items():
            if items:
                runner.put_many(access, collection, items)
        runner.operations["load_batch"] += 1
        # Loading takes simulated time too: a second per batch.
        runner.clock.now += timedelta(seconds=1)
        if progress is not None:
            progress("loading records", min(lo + _LOAD_PEOPLE, len(everyone)), len(everyone))


def _truth(runner: Runner) -> list[Misuse]:
    order = {kind: i for i, kind in enumerate(MISUSE_KINDS)}
    out = [
        Misuse(
            accessor=accessor,
            kind=kind,
            events=tuple(sorted(events)),
            note=runner.notes[(kind, accessor)],
        )
        for (kind, accessor), events in runner.truth.items()
    ]
    return sorted(out, key=lambda m: (order[m.kind], m.accessor))
