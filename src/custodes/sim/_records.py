"""Records written during the simulated month: stays, flights and crossings as they happen."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from custodes.sim._people import AIRLINES, AIRPORTS, MOBILE_PREFIXES, REGIONS, Person
from custodes.sim.world import Org

__all__ = [
    "crossing",
    "flight",
    "flight_number",
    "hotel_stay",
    "random_id_number",
    "random_phone",
    "route",
]

_CODES = dict(AIRLINES)
_SEATS = "ABCDEFGHJK"
_PNR_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# Regions whose code has always been in use, so any birth year is valid with them.
_TIMELESS_REGIONS = tuple(code for code, _, _, first_year in REGIONS if first_year == 0)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def hotel_stay(
    org: Org, rng: random.Random, now: datetime, room: str | None = None
) -> dict[str, str]:
    """A check-in at hotel ``org`` at ``now`` (local time, aware)."""
    check_out = (now + timedelta(days=rng.randint(1, 4))).replace(
        hour=rng.randint(7, 12), minute=rng.randrange(60), second=0
    )
    return {
        "hotel": org.name,
        "city": org.city.removesuffix("市"),
        "room": room or f"{rng.randint(2, 25)}{rng.randint(1, 40):02d}",
        "check_in": _iso(now),
        "check_out": _iso(check_out),
    }


def flight_number(org: Org, rng: random.Random) -> str:
    """A flight number of airline ``org``."""
    return f"{_CODES.get(org.name, 'CA')}{rng.randint(1001, 9899)}"


def flight(
    org: Org, rng: random.Random, departs: datetime, number: str, route: tuple[str, str]
) -> dict[str, str]:
    """A passenger's booking on flight ``number`` of airline ``org``."""
    return {
        "airline": org.name,
        "flight_number": number,
        "origin": route[0],
        "destination": route[1],
        "departs_at": _iso(departs),
        "seat": f"{rng.randint(1, 60)}{rng.choice(_SEATS)}",
        "booking_ref": "".join(rng.choices(_PNR_CHARS, k=6)),
    }


def route(rng: random.Random) -> tuple[str, str]:
    """Two different airports."""
    origin, destination = rng.sample(AIRPORTS, 2)
    return origin, destination


def crossing(port: Org, person: Person, rng: random.Random, now: datetime) -> dict[str, str]:
    """A crossing of ``person`` at ``port`` now, with the person's own travel document."""
    # The same derivation as the person's historical crossings (custodes.sim._people), so a
    # traveller keeps their passport and permit numbers.
    own = random.Random(f"custodes.sim:{person.id_number}")  # noqa: S311 - simulation data
    documents = [
        ("普通护照", f"E{own.randrange(10**8):08d}"),
        ("往来港澳通行证", f"C{own.randrange(10**8):08d}"),
    ]
    kind, number = rng.choice(documents)
    return {
        "port": port.name,
        "direction": rng.choice(("exit", "entry")),
        "crossed_at": _iso(now),
        "document_type": kind,
        "document_number": number,
    }


def random_id_number(rng: random.Random) -> str:
    """A well-formed resident ID number (valid region, date and checksum) of nobody known."""
    born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(58 * 365))
    body = f"{rng.choice(_TIMELESS_REGIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
    checksum = (1 - 2 * int(body, 13)) % 11
    return body + ("X" if checksum == 10 else str(checksum))


def random_phone(rng: random.Random) -> str:
    """A well-formed Chinese mobile number in E.164."""
    return f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
