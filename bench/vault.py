"""Audited read vs plaintext primary-key read, same data, same run (DESIGN.md §7).

An audited read is the whole choke point in process on SQLite: policy decision, access event
committed, data key from the LRU, AES-256-GCM decryption of every permitted field. The baseline
reads the same people from a plaintext SQLite table by primary key, with the same pragmas.
Prints one JSON object; the target is ``ratio >= 0.25``.

    python bench/vault.py [--subjects 100000] [--reads 20000]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from rich.progress import Progress

from _machine import reference
from custodes._home import init_home
from custodes.model import Access, Accessor
from custodes.sim import Person, generate_people
from custodes.vault import Vault

BENCH_GRANT = """
[purposes.benchmark]
description = "Benchmark reads (bench/vault.py only)."

[[grants]]
role = "bench_reader"
purpose = "benchmark"
actions = ["get"]
collections = ["identity"]
fields = ["*"]
"""


def _plain_table(path: Path, people: list[Person]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE people(id_number TEXT PRIMARY KEY, name TEXT, birth_date TEXT, "
        "birth_place TEXT, address TEXT, phone TEXT)"
    )
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO people(name, id_number, birth_date, birth_place, address, phone) "
        "VALUES (?,?,?,?,?,?)",
        [tuple(p.identity_record().values()) for p in people],
    )
    conn.execute("COMMIT")
    conn.execute("CREATE TABLE log(seq INTEGER PRIMARY KEY, ts TEXT, accessor TEXT, subject TEXT)")
    return conn


def _plain_read_and_log(conn: sqlite3.Connection, id_number: str) -> object:
    """A plaintext read that also commits one plaintext log row: the cost of the commit alone."""
    row = conn.execute("SELECT * FROM people WHERE id_number = ?", (id_number,)).fetchone()
    conn.execute("BEGIN")
    conn.execute("INSERT INTO log(ts, accessor, subject) VALUES (?, ?, ?)", ("t", "a", id_number))
    conn.execute("COMMIT")
    return row


def _rate(fn: Callable[[str], object], ids: list[str]) -> float:
    start = time.perf_counter()
    for id_number in ids:
        fn(id_number)
    return len(ids) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    people = generate_people(args.subjects, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        settings = init_home(Path(tmp) / "home")
        with settings.policy_path.open("a", encoding="utf-8") as handle:
            handle.write(BENCH_GRANT)
        vault = Vault.open(settings)
        # A role that is only in the benchmark policy.
        vault.add_accessor(Accessor("reg", "org", "registrar"))
        vault.add_accessor(Accessor("bench", "org", "bench_reader"))
        registrar = Access(vault.principal("reg"), "registration")
        with Progress(transient=True) as progress:
            task = progress.add_task("loading the vault", total=len(people))
            for start in range(0, len(people), 5_000):
                chunk = people[start : start + 5_000]
                items = [(p.id_number, p.identity_record()) for p in chunk]
                vault.put_many(registrar, "identity", items)
                progress.advance(task, len(chunk))
        plain = _plain_table(Path(tmp) / "plain.db", people)
        reader = Access(vault.principal("bench"), "benchmark")
        rng = random.Random(2)
        sample = [rng.choice(people).id_number for _ in range(args.reads)]
        query = "SELECT * FROM people WHERE id_number = ?"
        audited, baseline, logged = [], [], []
        for _ in range(args.rounds):  # interleaved, so drift hits all alike
            baseline.append(_rate(lambda i: plain.execute(query, (i,)).fetchone(), sample))
            logged.append(_rate(lambda i: _plain_read_and_log(plain, i), sample))
            audited.append(_rate(lambda i: vault.get(reader, "identity", i), sample))
        events = vault.store.event_count()
        vault.close()
        plain.close()
    best_audited, best_plain = max(audited), max(baseline)
    print(
        json.dumps(
            {
                "benchmark": "vault.audited_get",
                "subjects": args.subjects,
                "reads_per_round": args.reads,
                "rounds": args.rounds,
                "audited_reads_per_s": round(best_audited),
                "plaintext_pk_reads_per_s": round(best_plain),
                "ratio": round(best_audited / best_plain, 3),
                "plaintext_read_plus_log_commit_per_s": round(max(logged)),
                "ratio_to_read_plus_commit": round(best_audited / max(logged), 3),
                "target_ratio": 0.25,
                "events_in_ledger": events,
                "durability": "normal",
                "machine_reference": reference(),
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
