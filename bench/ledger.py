"""The persistent Merkle log: append throughput and proof latency, with same-run baselines.

Measured in one run on one machine (DESIGN.md §7, issue 3):

* batched appends/s into the SQLite store (entry bytes + leaf + completed subtree hashes,
  committed per batch, WAL, ``synchronous=NORMAL``), as a fraction of this machine's hashing
  limit — two SHA-256 per entry of the same size in a tight loop, measured here;
* ``pymerkle``'s ``SqliteTree.append_entries`` on the same entries, and our ratio to it;
* inclusion- and consistency-proof latency from a log of ``--big`` entries (default 10,000,000,
  built here with small entries), and pymerkle's ``prove_inclusion`` at ``--pymerkle-size``.

Prints one JSON object.

    python bench/ledger.py [--entries 200000] [--big 10000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pymerkle import SqliteTree
from rich.progress import Progress

from custodes.config import StoreSettings
from custodes.ledger import Ledger, merkle
from custodes.model import AccessEvent
from custodes.store import Store, open_store

BATCH = 10_000
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def _entries(n: int) -> list[bytes]:
    """Canonical access-event entries, as the vault writes them (about 330 bytes each)."""
    out = []
    for i in range(n):
        event = AccessEvent(
            T0 + timedelta(seconds=i), f"inv-{i % 97}", "police-3", "investigator", "get",
            "hotel_stays", ("hotel", "room", "check_in", "check_out"), f"{i * 7919:032x}",
            "criminal_investigation", f"C-{i % 501:08d}", "allow", "allowed by grant", 2,
        )  # fmt: skip
        out.append(event.canonical(i))
    return out


def _hash_limit(entries: list[bytes]) -> float:
    sha256 = hashlib.sha256
    start = time.perf_counter()
    for entry in entries:
        digest = sha256(b"\x00" + entry).digest()
        sha256(b"\x01" + digest + digest).digest()
    return len(entries) / (time.perf_counter() - start)


def _store(path: Path) -> Store:
    store = open_store(StoreSettings(backend="sqlite", path=path))
    store.migrate()
    return store


def _append_all(store: Store, entries: list[bytes]) -> None:
    for first in range(0, len(entries), BATCH):
        with store.transaction() as tx:
            tx.append_entries(entries[first : first + BATCH])


def _ours(tmp: Path, entries: list[bytes], run: int) -> float:
    store = _store(tmp / f"ours-{run}.db")
    start = time.perf_counter()
    _append_all(store, entries)
    rate = len(entries) / (time.perf_counter() - start)
    ledger = Ledger(store=store)
    assert ledger.root() == merkle.root(entries), "the stored tree disagrees with the reference"
    store.close()
    return rate


def _pymerkle(tmp: Path, entries: list[bytes], run: int) -> float:
    tree = SqliteTree(str(tmp / f"pymerkle-{run}.db"))
    start = time.perf_counter()
    tree.append_entries(entries, chunksize=BATCH)
    rate = len(entries) / (time.perf_counter() - start)
    assert tree.get_root() == merkle.root(entries), "pymerkle and RFC 9162 disagree"
    tree.close()
    return rate


def _latency_ms(fn: Callable[[], object], calls: int) -> dict[str, float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "mean_ms": round(statistics.fmean(times), 4),
        "p50_ms": round(times[len(times) // 2], 4),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 4),
    }


def _small_batches(n: int) -> Iterator[list[bytes]]:
    for first in range(0, n, 50_000):
        yield [b"entry %012d" % i for i in range(first, min(n, first + 50_000))]


def _proofs(tmp: Path, big: int, calls: int, progress: Progress) -> dict[str, object]:
    store = _store(tmp / "big.db")
    task = progress.add_task(f"building a {big:,}-entry log", total=big)
    for batch in _small_batches(big):
        _append_all(store, batch)
        progress.advance(task, len(batch))
    ledger = Ledger(store=store)
    rng = random.Random(3)
    size = ledger.size()
    root = ledger.root()

    def inclusion() -> None:
        index = rng.randrange(size)
        proof = ledger.inclusion_proof(index, size)
        merkle.verify_inclusion(b"entry %012d" % index, index, size, proof, root)

    def consistency() -> None:
        ledger.consistency_proof(rng.randrange(1, size), size)

    result = {
        "log_entries": size,
        "inclusion_proof_and_verify": _latency_ms(inclusion, calls),
        "consistency_proof": _latency_ms(consistency, calls),
    }
    store.close()
    return result


def _pymerkle_proof(tmp: Path, n: int, calls: int) -> dict[str, float]:
    tree = SqliteTree(str(tmp / "pymerkle-proofs.db"))
    tree.append_entries([b"entry %012d" % i for i in range(n)], chunksize=BATCH)
    rng = random.Random(4)
    latency = _latency_ms(lambda: tree.prove_inclusion(rng.randrange(1, n + 1), n), calls)
    tree.close()
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--proofs", type=int, default=1_000)
    parser.add_argument("--pymerkle-size", type=int, default=100_000)
    args = parser.parse_args()
    entries = _entries(args.entries)
    limit, ours, theirs = [], [], []
    with tempfile.TemporaryDirectory() as name, Progress(transient=True) as progress:
        tmp = Path(name)
        task = progress.add_task("append rounds", total=args.rounds)
        for run in range(args.rounds):  # interleaved, so drift hits all alike
            limit.append(_hash_limit(entries))
            ours.append(_ours(tmp, entries, run))
            theirs.append(_pymerkle(tmp, entries, run))
            progress.advance(task)
        proofs = _proofs(tmp, args.big, args.proofs, progress)
        pymerkle_proof = _pymerkle_proof(tmp, args.pymerkle_size, 20)
    best_ours, best_limit, best_theirs = max(ours), max(limit), max(theirs)
    print(
        json.dumps(
            {
                "benchmark": "ledger",
                "entries_per_round": args.entries,
                "mean_entry_bytes": round(sum(map(len, entries)) / len(entries)),
                "batch": BATCH,
                "rounds": args.rounds,
                "appends_per_s": round(best_ours),
                "target_appends_per_s": 200_000,
                "hashing_limit_per_s": round(best_limit),
                "fraction_of_hashing_limit": round(best_ours / best_limit, 3),
                "target_fraction": 0.5,
                "pymerkle_appends_per_s": round(best_theirs),
                "ratio_to_pymerkle": round(best_ours / best_theirs, 2),
                "target_ratio_to_pymerkle": 1.8,
                "proofs": proofs,
                "pymerkle_prove_inclusion": {"log_entries": args.pymerkle_size, **pymerkle_proof},
                "durability": "normal (WAL, synchronous=NORMAL, one commit per batch)",
                "python": platform.python_version(),
                "sqlite": __import__("sqlite3").sqlite_version,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
