"""The detector interface and the statistics detectors share.

A detector watches access events one at a time (:meth:`Detector.observe`), keeps its own state
per accessor, and returns a :class:`~custodes.detect._model.Finding` whenever its view of an
accessor gets worse. Batch analysis feeds it every line of a log; streaming feeds it each access
as it is ledgered. Rates come from the accessor's peer group (same role, same type of
organization), never from one global threshold.
"""

from __future__ import annotations

import math
from typing import ClassVar

from custodes.detect._context import Context
from custodes.detect._model import Event, Finding

__all__ = ["MAX_EVIDENCE", "Detector", "poisson_tail", "surprise_score"]

MAX_EVIDENCE = 2_000
"""At most this many event references per finding (the first ones)."""


class Detector:
    """One small detector: a name (its alert kind), a description, and per-accessor state."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    notable_only: ClassVar[bool] = False
    """Whether the detector only cares about notable subjects (canaries, protected persons,
    employees, people at an accessor's address): the pipeline skips it for everyone else."""

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        """Look at one access; ``why`` is its explanation. Return a finding when the accessor's
        evidence crosses or raises this detector's score, else None."""
        raise NotImplementedError


def poisson_tail(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean): how surprising ``count`` events are."""
    if count <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    # Sum the upper tail from ``count`` (terms fall fast once past the mean).
    log_term = -mean + count * math.log(mean) - math.lgamma(count + 1)
    total = 0.0
    k = count
    term = math.exp(log_term)
    while term > 1e-300 and k < count + 1000:
        total += term
        k += 1
        term *= mean / k
        if k > mean and term < total * 1e-12:
            break
    return min(1.0, total)


def surprise_score(count: int, mean: float, *, floor: float = 3.0, span: float = 4.0) -> float:
    """Map the Poisson surprise of ``count`` given ``mean`` to a score in [0, 1]: 0 up to a
    tail probability of 10^-floor, 1 from 10^-(floor + span)."""
    tail = poisson_tail(count, mean)
    bits = -math.log10(tail) if tail > 0 else 300.0
    return max(0.0, min(1.0, (bits - floor) / span))
