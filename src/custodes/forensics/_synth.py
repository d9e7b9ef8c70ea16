"""Synthetic records for canaries: plausible values of the right shape, about nobody.

A per-export canary row must look like the rows around it. For the collections the simulator
knows, its generators (:func:`custodes.sim.sample_records`, the same ones that make the demo
population) produce a whole record about a fresh synthetic person, consistent within itself
(check-out after check-in, an incident number that encodes its date and district). For other
collections a *donor* row of the same export lends its shape: the same fields present; person
fields (ID number, name, phone) come from a synthetic person; times are shifted by one random
offset (so their order and spacing survive); numbers and positions are jittered; identifiers
(indexed strings) get fresh characters of the same classes; other text is the donor's, so no
new fact about anyone enters the export.

Randomness comes from the caller's generator; exports use the operating system's, so nobody can
regenerate canaries from a seed.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal

from custodes.errors import InputError
from custodes.schema import Collection, FieldType
from custodes.sim import Person, generate_people, sample_records

__all__ = ["canary_record", "person_records", "synthetic_person"]

_SIM_TRIES = 12  # draws of the simulator before falling back to the donor's shape


def synthetic_person(rng: random.Random) -> Person:
    """A fresh synthetic person (valid ID number with a random region, birth date and sex)."""
    return generate_people(1, seed=rng.getrandbits(63))[0]


def person_records(person: Person, rng: random.Random) -> dict[str, list[dict[str, str]]]:
    """Plausible records about ``person`` for every collection the simulator knows."""
    return sample_records(person, rng)


def canary_record(
    coll: Collection, donor: Mapping[str, str], person: Person, rng: random.Random
) -> dict[str, str]:
    """Return normalized values for one canary row of ``coll`` with the fields ``donor`` has.

    Raises:
        InputError: no plausible value could be made for a field (an unusual donor value).
    """
    for _ in range(_SIM_TRIES):
        made = person_records(person, rng).get(coll.name)
        if made is None:
            break
        if made and set(donor) <= set(made[0]):
            try:
                return _normalized(coll, {name: made[0][name] for name in donor})
            except InputError:
                break  # the deployment's fields differ from the simulator's: use the donor
    return _normalized(coll, _from_donor(coll, donor, person, rng))


def _normalized(coll: Collection, values: Mapping[str, str]) -> dict[str, str]:
    return {name: coll.field(name).normalize(value) for name, value in values.items()}


def _from_donor(
    coll: Collection, donor: Mapping[str, str], person: Person, rng: random.Random
) -> dict[str, str]:
    shift = timedelta(days=rng.randint(-60, 60), minutes=rng.randrange(-720, 720))
    out = {}
    for name, value in donor.items():
        spec = coll.field(name)
        out[name] = _value(spec.type, spec.indexed, value, person, shift, rng)
    return out


def _value(
    ftype: FieldType,
    indexed: bool,
    donor: str,
    person: Person,
    shift: timedelta,
    rng: random.Random,
) -> str:
    if ftype is FieldType.ID_NUMBER:
        return person.id_number
    if ftype is FieldType.PHONE:
        return person.phone
    if ftype is FieldType.NAME:
        return person.name
    if ftype is FieldType.DATETIME:
        return (datetime.fromisoformat(donor) + shift).isoformat()
    if ftype is FieldType.DATE:
        return (date.fromisoformat(donor) + timedelta(days=shift.days)).isoformat()
    if ftype is FieldType.GEO:
        lat, lon = (float(part) for part in donor.split(","))
        lat = max(-90.0, min(90.0, lat + rng.uniform(-0.02, 0.02)))
        lon = max(-180.0, min(180.0, lon + rng.uniform(-0.02, 0.02)))
        return f"{lat:.6f},{lon:.6f}"
    if ftype in (FieldType.DECIMAL, FieldType.INTEGER):
        return _jitter(donor, rng)
    if indexed:
        return _same_classes(donor, rng)
    return donor


def _jitter(donor: str, rng: random.Random) -> str:
    """A number near ``donor`` with the same scale (decimal places) and sign."""
    number = Decimal(donor)
    scaled = number * Decimal(rng.uniform(0.6, 1.4)).quantize(Decimal("0.01"))
    exponent = number.as_tuple().exponent
    places = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
    return format(scaled.quantize(places), "f")


def _same_classes(donor: str, rng: random.Random) -> str:
    """A fresh identifier shaped like ``donor``: each digit, upper- or lower-case letter
    replaced by a random one of its class; everything else kept."""
    out = []
    for ch in donor:
        if ch.isascii() and ch.isdigit():
            out.append(rng.choice(string.digits))
        elif ch.isascii() and ch.isupper():
            out.append(rng.choice(string.ascii_uppercase))
        elif ch.isascii() and ch.islower():
            out.append(rng.choice(string.ascii_lowercase))
        else:
            out.append(ch)
    return "".join(out)
