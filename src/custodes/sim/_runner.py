"""The simulation's machinery: a time-ordered queue of steps run through the vault.

A step is one vault call by one accessor at one simulated moment. Steps are queued with their
time and run in (time, queue order); before each, the manual clock is set to the step's time (it
never moves back). A refusal (:class:`~custodes.errors.AccessDenied`) is counted, not raised:
the vault has already ledgered it. Steps of an injected misuse record the ledger indexes of the
events they wrote: the ledger grew from ``before`` to ``after`` while the step ran, and nothing
else runs meanwhile.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from custodes.clock import ManualClock
from custodes.errors import AccessDenied
from custodes.model import Access, Principal
from custodes.sim._mix import STANDARD, Mix
from custodes.sim.world import Staff, World
from custodes.vault import Vault

if TYPE_CHECKING:
    from custodes.forensics import FingerprintedExport

__all__ = ["Runner", "Step"]

# Local minutes (from midnight) of each shift's working window; night runs past midnight.
SHIFTS: dict[str, tuple[int, int]] = {
    "day": (8 * 60, 20 * 60),
    "night": (20 * 60, 32 * 60),
    "on_call": (0, 24 * 60),
}


@dataclass(order=True)
class Step:
    """One queued vault call; ``misuse`` is ``(kind, accessor)`` for injected misuse."""

    at: datetime
    order: int
    kind: str = field(compare=False)
    run: Callable[[], object] = field(compare=False)
    misuse: tuple[str, str] | None = field(compare=False, default=None)


class Runner:
    """Queues and runs the steps of a simulation, and counts what they did."""

    def __init__(
        self,
        *,
        vault: Vault,
        world: World,
        clock: ManualClock,
        seed: int,
        first_day: date,
        mix: Mix = STANDARD,
    ) -> None:
        self.vault = vault
        self.world = world
        self.mix = mix
        self.clock = clock
        self.zone = ZoneInfo(vault.policy.timezone)
        self.first_day = first_day
        # Planning draws and run-time draws come from separate generators, each deterministic.
        self.rng = random.Random(f"custodes.sim.plan:{seed}")  # noqa: S311 - simulation data
        self.live = random.Random(f"custodes.sim.live:{seed}")  # noqa: S311 - simulation data
        # Draws of the benign noise added later (cover reads, port rushes) have their own
        # generator, so that adding them left the rest of a seed's month as it was.
        self.noise = random.Random(f"custodes.sim.noise:{seed}")  # noqa: S311 - simulation data
        self.operations: Counter[str] = Counter()
        self.truth: dict[tuple[str, str], list[int]] = {}
        self.notes: dict[tuple[str, str], str] = {}
        self.denied = 0
        self.records = 0
        self.cases = 0
        self.exports: list[FingerprintedExport] = []
        # Export ids and canary rows of fingerprinted exports, reproducible per seed.
        self.forensics = random.Random(f"custodes.sim.forensics:{seed}")  # noqa: S311
        self._queue: list[Step] = []
        self._order = 0
        self._principals: dict[str, Principal] = {}
        # Accessors who leave during the simulation: the day from which they no longer work.
        self.leaving: dict[str, int] = {}
        # Whether a port has a rush on a day, drawn once per (org, day).
        self.rushes: dict[tuple[str, int], bool] = {}

    # -- time ---------------------------------------------------------------------------------

    def when(self, day: int, minute: float) -> datetime:
        """The UTC moment ``minute`` local minutes after midnight of simulated ``day``."""
        midnight = datetime.combine(self.first_day + timedelta(days=day), time(0), self.zone)
        return (midnight + timedelta(seconds=round(minute * 60))).astimezone(UTC)

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the policy's local time zone."""
        return moment.astimezone(self.zone)

    def weekday(self, day: int) -> int:
        """Monday is 0, Sunday 6."""
        return (self.first_day + timedelta(days=day)).weekday()

    def in_shift(self, staff: Staff, day: int, *, misuse: bool = False) -> datetime:
        """A random moment of ``staff``'s shift on ``day``.

        Misuse by on-call staff happens in the day window, when it blends in; misuse by night
        staff in the evening, before midnight.
        """
        shift = "day" if misuse and staff.shift == "on_call" else staff.shift
        lo, hi = SHIFTS[shift]
        if shift == "day":
            lo, hi = lo + 60, hi - 60
        elif misuse:
            # Before midnight, so that the misuse of the last simulated day still happens.
            lo, hi = lo + 30, 24 * 60 - 90
        return self.when(day, self.rng.uniform(lo, hi))

    # -- accessors ----------------------------------------------------------------------------

    def access(
        self,
        staff: Staff,
        purpose: str | None,
        case: str | None = None,
        *,
        justification: str | None = None,
    ) -> Access:
        """The Access of ``staff`` for a purpose (and case); break-glass with a justification."""
        principal = self._principals.get(staff.accessor)
        if principal is None:
            principal = self.vault.principal(staff.accessor)
            self._principals[staff.accessor] = principal
        return Access(
            principal,
            purpose,
            case,
            justification=justification,
            break_glass=justification is not None,
        )

    # -- steps --------------------------------------------------------------------------------

    def schedule(
        self,
        at: datetime,
        kind: str,
        run: Callable[[], object],
        *,
        misuse: tuple[str, str] | None = None,
    ) -> None:
        """Queue one step at ``at``."""
        self._order += 1
        heapq.heappush(self._queue, Step(at, self._order, kind, run, misuse))

    def run_until(self, limit: datetime) -> None:
        """Run every queued step due before ``limit``, in order.

        Ordinary steps planned before the clock's current time (work of the first day, before
        the records were loaded) are dropped; misuse steps then run at the current time.
        """
        while self._queue and self._queue[0].at < limit:
            step = heapq.heappop(self._queue)
            if step.at < self.clock.now:
                if step.misuse is None:
                    continue
            else:
                self.clock.now = step.at
            self._run(step)

    def pending(self) -> int:
        """How many steps are queued."""
        return len(self._queue)

    def _run(self, step: Step) -> None:
        before = self.vault.store.event_count() if step.misuse else 0
        try:
            step.run()
        except AccessDenied:
            self.denied += 1
        self.operations[step.kind] += 1
        if step.misuse is not None:
            after = self.vault.store.event_count()
            self.truth.setdefault(step.misuse, []).extend(range(before, after))

    # -- vault calls that keep the counts -----------------------------------------------------

    def get(
        self, access: Access, collection: str, subject: str, fields: list[str] | None = None
    ) -> Callable[[], object]:
        """A step that reads one subject's records in one collection."""
        return lambda: self.vault.get(access, collection, subject, fields)

    def find(
        self, access: Access, collection: str, field_name: str, value: str
    ) -> Callable[[], object]:
        """A step that looks records up by an exact value."""
        return lambda: self.vault.find(access, collection, field_name, value)

    def put_many(
        self, access: Access, collection: str, items: list[tuple[str, dict[str, str]]]
    ) -> None:
        """Write records, counting them."""
        self.vault.put_many(access, collection, items)
        self.records += len(items)
