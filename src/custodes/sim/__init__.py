"""Synthetic population, organizations and a month of their work, with injected misuse.

Nothing here is real personal data: the people are drawn from seeded random generators.
:func:`build_world` makes a population, its organizations and their staff; :func:`simulate`
runs a month of their work through a vault, misuse included, and returns the ground truth;
:func:`subject_rows` and :func:`accessor_rows` describe the world to detectors (keyed tokens
only).
"""

from __future__ import annotations

from custodes.sim._mix import MIXES, Mix
from custodes.sim._people import Person, generate_people, sample_records
from custodes.sim.workload import Misuse, SimResult, simulate
from custodes.sim.world import (
    MISUSE_KINDS,
    Org,
    Staff,
    World,
    accessor_rows,
    build_world,
    subject_rows,
)

__all__ = [
    "MISUSE_KINDS",
    "MIXES",
    "Misuse",
    "Mix",
    "Org",
    "Person",
    "SimResult",
    "Staff",
    "World",
    "accessor_rows",
    "build_world",
    "generate_people",
    "sample_records",
    "simulate",
    "subject_rows",
]
