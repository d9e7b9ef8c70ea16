"""What an insider posts to prove a dump for sale: a cut-down, reformatted sample of an export.

For the demo and tests: the same handling the fingerprints must survive, done the way a person
with a spreadsheet does it.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from custodes.errors import InputError

__all__ = ["HEADERS", "insider_leak"]

HEADERS: Mapping[str, str] = {
    "name": "姓名",
    "id_number": "身份证号",
    "birth_date": "出生日期",
    "birth_place": "籍贯",
    "address": "住址",
    "phone": "手机号",
    "hotel": "酒店",
    "city": "城市",
    "room": "房号",
    "check_in": "入住时间",
    "check_out": "离店时间",
    "airline": "航司",
    "flight_number": "航班号",
    "origin": "始发",
    "destination": "到达",
    "departs_at": "起飞时间",
    "seat": "座位",
    "booking_ref": "订座编码",
}
"""The Chinese headers a leaker's spreadsheet gives the default schema's fields."""


def insider_leak(
    rows: Sequence[Mapping[str, str]],
    path: Path,
    *,
    fraction: float = 0.05,
    seed: int = 0,
    drop: Sequence[str] = (),
) -> Path:
    """Write a random ``fraction`` of ``rows`` to ``path`` as a spreadsheet's CSV (UTF-8 with a
    byte-order mark): rows shuffled, columns renamed (:data:`HEADERS`) and in reverse order,
    ``drop`` columns left out. Returns ``path``.

    Raises:
        InputError: no rows, a fraction outside (0, 1], or ``path`` exists.
    """
    if not rows or not 0 < fraction <= 1:
        raise InputError("a leak needs rows and a fraction within (0, 1]")
    if path.exists():
        raise InputError(f"{path} exists")
    rng = random.Random(seed)  # noqa: S311 - a simulated leaker, not a secret
    sample = rng.sample(list(rows), max(1, round(len(rows) * fraction)))
    columns = [c for c in dict.fromkeys(k for row in sample for k in row) if c not in drop]
    columns.reverse()
    with path.open("x", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow([HEADERS.get(c, c) for c in columns])
        for row in sample:
            writer.writerow([row.get(c, "") for c in columns])
    return path
