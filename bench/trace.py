"""Leak tracing: a 100,000-row dump against a 1,000,000-subject vault, beside a naive baseline.

Builds (or reuses, with ``--keep DIR``) a SQLite vault whose ``identity`` collection holds
``--subjects`` synthetic people, written by a registrar through ``Vault.put_many`` (the build
time is reported apart). Three duty officers then read some of them through the audited path,
so the ledger has reads to attribute. The dump is ``--rows`` rows: people of the vault (a
random subset, shuffled) plus 5% people who are not in it, with renamed and reordered columns,
as CSV. ``custodes.forensics.trace_leak`` traces it ``--repeat`` times (the best and the first
run are reported; the DESIGN.md §7 target is under 5 s).

The vault also holds 3,000 flight records exported, fingerprinted, to three analysts, so the
trace tests every registered export against the dump (none matches: the dump is of identity
records).

The baseline is what tracing without blind indexes costs: decrypt the identity records of a
``--naive`` slice of subjects (data key unwrapped, fields opened, as a custodian with the master
key would) and compare their ID numbers with the dump's. Its time is extrapolated linearly to
the whole vault.

Prints one JSON object.

    python bench/trace.py [--subjects 1000000] [--rows 100000] [--naive 10000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.progress import Progress

from _machine import reference
from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import Settings
from custodes.forensics import export_fingerprinted, trace_leak
from custodes.model import Access, Accessor
from custodes.sim._people import MOBILE_PREFIXES, REGIONS, SURNAMES
from custodes.vault import Vault

TARGET_SECONDS = 5.0
OUTSIDERS = 0.05  # share of dump rows about people the vault does not hold
READS = {"duty-a": 3_000, "duty-b": 1_000, "duty-c": 1_000}  # audited reads per officer
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文博宇浩然子涵欣怡梓轩"
_FIRST_BIRTH = date(1950, 1, 1).toordinal()
_LAST_BIRTH = date(2007, 12, 31).toordinal()


def _people(count: int, seed: int, taken: set[str] | None = None) -> list[dict[str, str]]:
    """``count`` synthetic identity records with valid, distinct ID numbers, fast.

    (``custodes.sim.generate_people`` makes richer people, at about 100 us each: too slow to
    make a million for a benchmark; these have the same ID-number rules.)
    """
    rng = random.Random(seed)
    seen = set(taken or ())
    surnames = [name for name, _ in SURNAMES]
    out: list[dict[str, str]] = []
    while len(out) < count:
        born = date.fromordinal(rng.randint(_FIRST_BIRTH, _LAST_BIRTH))
        code, city, _district, first_year = rng.choice(REGIONS)
        if first_year > born.year:
            continue
        body = f"{code}{born:%Y%m%d}{rng.randrange(1000):03d}"
        checksum = (1 - 2 * int(body, 13)) % 11
        number = body + ("X" if checksum == 10 else str(checksum))
        if number in seen:
            continue
        seen.add(number)
        name = rng.choice(surnames) + "".join(rng.choices(_GIVEN, k=rng.randint(1, 2)))
        out.append(
            {
                "name": name,
                "id_number": number,
                "birth_date": born.isoformat(),
                "birth_place": city,
                "phone": f"+86{rng.choice(MOBILE_PREFIXES)}{rng.randrange(10**8):08d}",
            }
        )
    return out


def _batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _build(home: Path, people: list[dict[str, str]], batch: int) -> float:
    settings = init_home(home)
    with Vault.open(settings, monitor=False) as vault:
        vault.add_accessor(Accessor("bulk-loader", "registry", "registrar"))
        for officer in READS:
            vault.add_accessor(Accessor(officer, "police-1", "duty_officer"))
        loader = Access(vault.principal("bulk-loader"), "registration")
        start = time.perf_counter()
        with Progress(transient=True) as progress:
            task = progress.add_task("building the vault (put_many)", total=len(people))
            for chunk in _batches(people, batch):
                vault.put_many(loader, "identity", [(p["id_number"], p) for p in chunk])
                progress.advance(task, len(chunk))
        return time.perf_counter() - start


def _read(
    home: Path, leaked: list[dict[str, str]], people: list[dict[str, str]], seed: int
) -> None:
    """Officer ``duty-a`` reads leaked people; the others read people at random."""
    rng = random.Random(seed + 1)
    # Reads spread over days: the policy allows an officer 200 subjects a day.
    clock = ManualClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    with Vault.open(Settings.load(home), clock=clock, monitor=False) as vault:
        for officer, count in READS.items():
            pool = leaked if officer == "duty-a" else people
            access = Access(vault.principal(officer), "identity_check")
            for done, person in enumerate(rng.sample(pool, count), 1):
                vault.get(access, "identity", person["id_number"])
                clock.advance(timedelta(days=1) if done % 150 == 0 else timedelta(seconds=20))


EXPORT_GRANT = """
[[grants]]
role = "analyst"
purpose = "statistics"
actions = ["export"]
collections = ["flights"]
fields = ["*"]
"""
ANALYSTS = ("ana-1", "ana-2", "ana-3")
FLIGHTS = 3_000  # flight records exported, fingerprinted, to each analyst


def _exports(home: Path, people: list[dict[str, str]], seed: int) -> None:
    """Three fingerprinted exports of a small collection, so that tracing also tests every
    registered export's fingerprint (canary rows and watermark) against the dump."""
    settings = Settings.load(home)
    policy = settings.policy_path.read_text(encoding="utf-8")
    if EXPORT_GRANT not in policy:
        settings.policy_path.write_text(policy + EXPORT_GRANT, encoding="utf-8")
    rng = random.Random(seed + 3)
    flights = [
        (
            person["id_number"],
            {
                "flight_number": f"CA{rng.randint(1001, 9899)}",
                "departs_at": f"2026-02-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
                f"{rng.randrange(60):02d}:00+08:00",
                "seat": f"{rng.randint(1, 60)}{rng.choice('ABCDEFHJK')}",
                "booking_ref": "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=6)),
            },
        )
        for person in people[:FLIGHTS]
    ]
    with Vault.open(settings, monitor=False) as vault:
        vault.put_many(Access(vault.principal("bulk-loader"), "registration"), "flights", flights)
        for analyst in ANALYSTS:
            vault.add_accessor(Accessor(analyst, "stats-1", "analyst"))
            export_fingerprinted(vault, Access(vault.principal(analyst), "statistics"), "flights")


def _dump(
    path: Path, leaked: list[dict[str, str]], outsiders: list[dict[str, str]], seed: int
) -> None:
    """Write the dump as a leaker would: columns renamed and reordered, rows shuffled."""
    rows = [*leaked, *outsiders]
    random.Random(seed + 2).shuffle(rows)
    renamed = {"phone": "手机号", "name": "姓名", "id_number": "证件号码", "birth_date": "出生日期"}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(renamed.values())
        for row in rows:
            writer.writerow([row[key] for key in renamed])


def _trace(home: Path, dump: Path, repeat: int) -> tuple[list[float], dict[str, Any]]:
    runs: list[float] = []
    report: dict[str, Any] = {}
    for _ in range(repeat):
        with Vault.open(Settings.load(home), monitor=False) as vault:
            start = time.perf_counter()
            result = trace_leak(vault, dump)
            runs.append(time.perf_counter() - start)
        if not report or runs[-1] == min(runs):
            report = result.as_dict()
    return runs, report


def _naive(home: Path, dump: Path, slice_size: int) -> float:
    """Decrypt ``slice_size`` subjects' identity records and compare with the dump's IDs."""
    with dump.open(encoding="utf-8") as handle:
        wanted = {row[2] for row in csv.reader(handle)}
    with Vault.open(Settings.load(home), monitor=False) as vault:
        refs = vault.store.subject_refs("identity", limit=slice_size)
        start = time.perf_counter()
        found = 0
        for ref in refs:
            stored = vault.store.records("identity", ref)
            opened = vault._open_records(stored, ref, ("id_number",))
            found += sum(1 for rec in opened if rec.values.get("id_number") in wanted)
        elapsed = time.perf_counter() - start
    if not refs:
        raise SystemExit("the vault holds no identity records")
    return elapsed * slice_size / len(refs)


def _ready(home: Path, subjects: int) -> bool:
    marker = home / "bench-trace.json"
    return marker.exists() and json.loads(marker.read_text())["subjects"] == subjects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--naive", type=int, default=10_000, help="subjects decrypted naively")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="build the vault here once and reuse it")
    args = parser.parse_args()
    if args.rows > args.subjects:
        parser.error("--rows must not exceed --subjects")
    tmp = None if args.keep else tempfile.mkdtemp(prefix="custodes-bench-trace-")
    work = args.keep or Path(str(tmp))
    home = work / "home"
    try:
        people = _people(args.subjects, args.seed)
        insiders = round(args.rows * (1 - OUTSIDERS))
        leaked = random.Random(args.seed).sample(people, insiders)
        build = None
        marker = home / "bench-trace.json"
        if not _ready(home, args.subjects):
            shutil.rmtree(home, ignore_errors=True)
            build = _build(home, people, args.batch)
            _read(home, leaked, people, args.seed)
            marker.write_text(json.dumps({"subjects": args.subjects}))
        if "exports" not in json.loads(marker.read_text()):
            _exports(home, people, args.seed)
            marker.write_text(json.dumps({"subjects": args.subjects, "exports": len(ANALYSTS)}))
        known = {p["id_number"] for p in people}
        outsiders = _people(args.rows - insiders, args.seed + 100, taken=known)
        dump = work / "dump.csv"
        _dump(dump, leaked, outsiders, args.seed)
        runs, report = _trace(home, dump, args.repeat)
        naive = _naive(home, dump, args.naive)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    best = min(runs)
    top = report["suspects"][0] if report["suspects"] else {}
    print(
        json.dumps(
            {
                "benchmark": "forensics.trace",
                "subjects": args.subjects,
                "dump_rows": args.rows,
                "dump_rows_ours": insiders,
                "build_seconds": None if build is None else round(build, 1),
                "trace_seconds_best": round(best, 3),
                "trace_seconds_first": round(runs[0], 3),
                "trace_runs": [round(r, 3) for r in runs],
                "trace_stages_best": report["timings"],
                "matched_rows": report["matched_rows"],
                "registered_exports": len(ANALYSTS),
                "exports_named": [m["export_id"] for m in report["exports"]],
                "verdict": report["verdict"],
                "top_suspect": {k: top.get(k) for k in ("accessor", "coverage", "precision")},
                "naive_slice_subjects": args.naive,
                "naive_slice_seconds": round(naive, 3),
                "naive_whole_vault_seconds_extrapolated": round(
                    naive * args.subjects / args.naive, 1
                ),
                "target_seconds": TARGET_SECONDS,
                "target_met": best < TARGET_SECONDS,
                "machine_reference": reference(),
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
