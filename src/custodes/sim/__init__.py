"""Synthetic population and records, for tests and benchmarks (and later the full simulator).

Nothing here is real personal data: the people are drawn from a seeded random generator.
"""

from __future__ import annotations

from custodes.sim._people import Person, generate_people, sample_records

__all__ = ["Person", "generate_people", "sample_records"]
