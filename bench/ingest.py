"""Bulk ingest through the full vault path vs a plaintext bulk insert, same rows, same run.

The vault path is ``Vault.put_many`` as a bulk loader would call it: a ``registrar`` with
purpose ``registration`` writes every default-schema collection in large batches. Each batch is
validated and normalized, gets its subjects' data keys (new ones made and wrapped under the KEK
in the key store), every field sealed with AES-256-GCM, blind-index tokens for indexed fields,
one policy decision and one ledger event per record; records, index entries and events commit
in one transaction per batch. The baseline inserts the same normalized rows as plaintext into
one plain table per collection (record id, subject ID number, one column per field; primary key
and subject index), ``executemany`` per batch, one commit per batch, on the same backend.

The vault path runs twice: ``put_many`` batch after batch in this process, then the same
batches through ``custodes.bulk.load`` with ``--workers`` worker processes (default: one per
core), the workers' start-up included in its time. Each run gets a fresh vault, and its ledger
is verified afterwards (outside the timing).

Prints one JSON object (DESIGN.md §7 targets: ≥ 20,000 records/s on SQLite, ≥ 10,000/s on
PostgreSQL). PostgreSQL gets a fresh database, dropped at the end.

    python bench/ingest.py [--people 20000] [--batch 5000] [--backends sqlite,postgres]
                           [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from rich.progress import Progress

from _machine import reference
from custodes import bulk
from custodes._home import init_home
from custodes.config import Settings
from custodes.model import Access, Accessor
from custodes.schema import Schema
from custodes.sim import generate_people, sample_records
from custodes.vault import Vault

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGETS = {"sqlite": 20_000, "postgres": 10_000}
Items = dict[str, list[tuple[str, dict[str, str]]]]


def _workload(people: int, seed: int) -> Items:
    """Every default-schema record of ``people`` synthetic people, grouped by collection."""
    rng = random.Random(seed)
    items: Items = {name: [] for name in Schema.default().collections}
    for person in generate_people(people, seed=seed):
        for collection, records in sample_records(person, rng).items():
            items[collection].extend((person.id_number, values) for values in records)
    return items


def _batches(items: Mapping[str, Sequence[Any]], size: int) -> Iterator[tuple[str, Sequence[Any]]]:
    # identity first: the batch that meets each subject first makes their data key.
    for collection, rows in items.items():
        for start in range(0, len(rows), size):
            yield collection, rows[start : start + size]


def _time_batches(
    items: Mapping[str, Sequence[Any]],
    size: int,
    label: str,
    write: Callable[[str, Sequence[Any]], object],
) -> float:
    total = sum(len(rows) for rows in items.values())
    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=total)
        elapsed = 0.0
        for collection, batch in _batches(items, size):
            start = time.perf_counter()
            write(collection, batch)
            elapsed += time.perf_counter() - start
            progress.advance(task, len(batch))
    return elapsed


# -- the vault path ----------------------------------------------------------------------------


def _vault_ingest(
    home: Path, backend: str, url: str | None, items: Items, size: int, workers: int
) -> float:
    """Seconds to write ``items``: ``put_many`` per batch in this process (``workers`` 0), or
    ``custodes.bulk.load`` with that many worker processes (their start-up counted)."""
    settings = init_home(home, backend=backend, url=url)
    vault = Vault.open(settings)
    try:
        vault.add_accessor(Accessor("bulk-loader", "registry", "registrar"))
        loader = Access(vault.principal("bulk-loader"), "registration")
        if workers == 0:
            with vault.store.bulk_writes():  # as custodes.bulk.load does
                elapsed = _time_batches(
                    items,
                    size,
                    f"vault put_many ({backend})",
                    lambda collection, batch: vault.put_many(loader, collection, batch),
                )
        else:
            elapsed = _time_load(settings, loader, items, size, workers)
        written = sum(len(rows) for rows in items.values())
        if vault.store.event_count() != written:  # one event per record, all committed
            raise SystemExit("the vault's ledger does not hold one event per record")
        vault.ledger.verify(check_events=False)
    finally:
        vault.close()
    return elapsed


def _time_load(settings: Settings, loader: Access, items: Items, size: int, workers: int) -> float:
    total = sum(len(rows) for rows in items.values())
    with Progress(transient=True) as progress:
        label = f"bulk.load ({settings.store.backend}, {workers} workers)"
        task = progress.add_task(label, total=total)
        start = time.perf_counter()
        bulk.load(
            settings,
            loader,
            _batches(items, size),
            workers=workers,
            on_batch=lambda _, ids: progress.advance(task, len(ids)),
        )
        return time.perf_counter() - start


# -- the plaintext baseline --------------------------------------------------------------------


def _plain_rows(items: Items) -> dict[str, tuple[list[str], list[tuple[str | None, ...]]]]:
    """Per collection: the column names and the normalized rows (as the vault stores them)."""
    schema = Schema.default()
    out: dict[str, tuple[list[str], list[tuple[str | None, ...]]]] = {}
    for name, rows in items.items():
        coll = schema.collection(name)
        fields = list(coll.fields)
        plain: list[tuple[str | None, ...]] = []
        for subject, values in rows:
            clean = coll.validate(values)
            record = (secrets.token_hex(16), schema.normalize_subject(subject))
            plain.append((*record, *(clean.get(f) for f in fields)))
        out[name] = (fields, plain)
    return out


def _ddl(collection: str, fields: list[str], text: str) -> list[str]:
    columns = ", ".join(f"{f} {text}" for f in fields)
    return [
        f"CREATE TABLE plain_{collection} (record_id {text} PRIMARY KEY, subject {text} "
        f"NOT NULL, {columns})",
        f"CREATE INDEX plain_{collection}_subject ON plain_{collection} (subject)",
    ]


def _insert(collection: str, fields: list[str], mark: str) -> str:
    marks = ", ".join([mark] * (len(fields) + 2))
    return f"INSERT INTO plain_{collection} VALUES ({marks})"


def _plain_sqlite(path: Path, items: Items, size: int) -> float:
    tables = _plain_rows(items)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    for name, (fields, _) in tables.items():
        for statement in _ddl(name, fields, "TEXT"):
            conn.execute(statement)
    sql = {name: _insert(name, fields, "?") for name, (fields, _) in tables.items()}

    def write(collection: str, batch: Sequence[Any]) -> None:
        conn.execute("BEGIN")
        conn.executemany(sql[collection], batch)
        conn.execute("COMMIT")

    try:
        plain = {name: rows for name, (_, rows) in tables.items()}
        return _time_batches(plain, size, "plaintext insert (sqlite)", write)
    finally:
        conn.close()


def _plain_postgres(url: str, items: Items, size: int) -> float:
    tables = _plain_rows(items)
    with psycopg.connect(url, autocommit=True) as conn:
        for name, (fields, _) in tables.items():
            for statement in _ddl(name, fields, "text"):
                conn.execute(statement.encode())
        sql = {name: _insert(name, fields, "%s").encode() for name, (fields, _) in tables.items()}

        def write(collection: str, batch: Sequence[Any]) -> None:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql[collection], batch)

        plain = {name: rows for name, (_, rows) in tables.items()}
        return _time_batches(plain, size, "plaintext insert (postgres)", write)


@contextmanager
def _fresh_database(admin_url: str) -> Iterator[str]:
    name = "custodes_bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def _measure(backend: str, items: Items, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    records = sum(len(rows) for rows in items.values())
    # os.sync() before each phase: the other phase's write-back does not slow this one.
    one, many = 0.0, 0.0
    if backend == "sqlite":
        os.sync()
        plain = _plain_sqlite(tmp / "plain.db", items, args.batch)
        for run in ("one", "many"):
            os.sync()
            home = tmp / f"home-sqlite-{run}"
            took = _vault_ingest(home, "sqlite", None, items, args.batch, _workers(run, args))
            one, many = (took, many) if run == "one" else (one, took)
    else:
        with _fresh_database(args.pg_url) as url:
            os.sync()
            plain = _plain_postgres(url, items, args.batch)
        for run in ("one", "many"):
            with _fresh_database(args.pg_url) as url:
                os.sync()
                home = tmp / f"home-postgres-{run}"
                took = _vault_ingest(home, "postgres", url, items, args.batch, _workers(run, args))
                one, many = (took, many) if run == "one" else (one, took)
    one_rate, many_rate, plain_rate = records / one, records / many, records / plain
    return {
        "vault_records_per_s": round(one_rate),
        "vault_parallel_records_per_s": round(many_rate),
        "workers": args.workers,
        "plaintext_records_per_s": round(plain_rate),
        "ratio": round(one_rate / plain_rate, 3),
        "ratio_parallel": round(many_rate / plain_rate, 3),
        "speedup_parallel": round(many_rate / one_rate, 2),
        "vault_seconds": round(one, 2),
        "vault_parallel_seconds": round(many, 2),
        "plaintext_seconds": round(plain, 2),
        "target_records_per_s": TARGETS[backend],
        "target_met": max(one_rate, many_rate) >= TARGETS[backend],
    }


def _workers(run: str, args: argparse.Namespace) -> int:
    return 0 if run == "one" else int(args.workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=5_000, help="records per put_many call")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-url", default=PG_ADMIN_URL, help="admin URL (a database is made)")
    parser.add_argument(
        "--workers",
        type=int,
        default=bulk.default_workers(),
        help="worker processes of the parallel run (custodes.bulk.load; default: one per core)",
    )
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(backends) - set(TARGETS)
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    items = _workload(args.people, args.seed)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            results[backend] = _measure(backend, items, args, Path(tmp))
    print(
        json.dumps(
            {
                "benchmark": "vault.ingest",
                "people": args.people,
                "records": sum(len(rows) for rows in items.values()),
                "records_by_collection": {name: len(rows) for name, rows in items.items()},
                "batch": args.batch,
                **results,
                "durability": "sqlite normal (WAL); key store full",
                "machine_reference": reference(),
                "python": platform.python_version(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
