"""Scenario mixes: how much benign noise a simulated month carries and how hard each misuse
presses.

``standard`` is the month detection was tuned on. ``shifted`` is a held-out mix for judging
detectors on a scenario they were not tuned to: more night and on-call work, busier ports,
cases that gain more subjects more often, more warrant reads by operators covering a colleague's
shift, and quieter misuse (sellers reading fewer people a day, a smaller and slower bulk pull,
shorter enumeration runs, a stalker who tries less often). Every misuse kind is present in
both.
"""

from __future__ import annotations

from dataclasses import dataclass

from custodes.errors import InputError

__all__ = ["MIXES", "Mix", "mix_named"]

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Mix:
    """The knobs of a scenario mix; ``(lo, hi)`` spans are inclusive random ranges."""

    name: str
    # -- benign noise --
    duty_checks: dict[str, Span]  # identity checks per duty officer and shift
    border_checks: dict[str, Span]  # travellers per border officer and shift
    port_rush: float  # chance a port has a rush day (day-shift officers see 1.8x travellers)
    case_growth: float  # daily chance an approved case of an investigator gains subjects
    case_growth_size: Span  # how many subjects it gains
    cover_read: float  # chance a warrant is also read by an operator not assigned to it
    # -- misuse intensity --
    seller_days: int
    seller_people: Span  # strangers a seller sells per day
    covered_people: Span  # strangers a covered seller adds per day
    purpose_days: int
    purpose_people: Span
    bulk_divisor: int  # the bulk pull reads pool // divisor people ...
    bulk_cap: int  # ... at most this many ...
    bulk_gap: tuple[float, float]  # ... seconds apart
    enumeration_finds: Span  # lookups per enumeration day
    low_slow_people: Span  # strangers per day
    departing_people: Span  # customers pulled per day in the last days
    stalking_share: float  # share of the days the stalker tries
    probes: Span  # probes per day


STANDARD = Mix(
    name="standard",
    duty_checks={"day": (14, 24), "night": (8, 16), "on_call": (1, 4)},
    border_checks={"day": (10, 16), "night": (5, 10), "on_call": (2, 5)},
    port_rush=0.1,
    case_growth=0.08,
    case_growth_size=(1, 1),
    cover_read=0.4,
    seller_days=3,
    seller_people=(2, 4),
    covered_people=(2, 3),
    purpose_days=4,
    purpose_people=(3, 5),
    bulk_divisor=8,
    bulk_cap=520,
    bulk_gap=(2.0, 6.0),
    enumeration_finds=(40, 70),
    low_slow_people=(1, 3),
    departing_people=(30, 60),
    stalking_share=0.6,
    probes=(4, 8),
)

SHIFTED = Mix(
    name="shifted",
    duty_checks={"day": (12, 22), "night": (12, 22), "on_call": (3, 8)},
    border_checks={"day": (12, 20), "night": (8, 14), "on_call": (4, 8)},
    port_rush=0.25,
    case_growth=0.2,
    case_growth_size=(1, 4),
    cover_read=0.8,
    seller_days=4,
    seller_people=(1, 2),
    covered_people=(1, 2),
    purpose_days=3,
    purpose_people=(2, 3),
    bulk_divisor=14,
    bulk_cap=300,
    bulk_gap=(6.0, 14.0),
    enumeration_finds=(15, 30),
    low_slow_people=(1, 2),
    departing_people=(22, 40),
    stalking_share=0.35,
    probes=(3, 5),
)

MIXES: dict[str, Mix] = {mix.name: mix for mix in (STANDARD, SHIFTED)}
"""The scenario mixes by name."""


def mix_named(name: str) -> Mix:
    """Return the mix called ``name``.

    Raises:
        InputError: no such mix.
    """
    mix = MIXES.get(name) if isinstance(name, str) else None
    if mix is None:
        raise InputError(f"unknown scenario mix {name!r} (mixes: {', '.join(MIXES)})")
    return mix
