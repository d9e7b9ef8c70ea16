"""The machine's speed, measured the same way in every benchmark: a reference for its figures.

The machines these benchmarks run on differ from day to day (the same 2-core kind has given
tight-loop hashing rates four times apart). Every benchmark reports this reference beside its
own figures, so that an absolute rate from one day can be compared with one from another:
the loop is ``bench/ledger.py``'s hashing limit, two SHA-256 per 407-byte entry, in CPython.
"""

from __future__ import annotations

import hashlib
import os
import time

ENTRY_BYTES = 407  # the mean canonical ledger entry of bench/ledger.py
ENTRIES = 100_000


def reference(rounds: int = 3) -> dict[str, object]:
    """Return the best of ``rounds`` runs of the reference loop, in entries per second."""
    entries = [os.urandom(ENTRY_BYTES) for _ in range(ENTRIES)]
    sha256 = hashlib.sha256
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for entry in entries:
            digest = sha256(b"\x00" + entry).digest()
            sha256(b"\x01" + digest + digest).digest()
        best = max(best, ENTRIES / (time.perf_counter() - start))
    return {
        "sha256_pairs_per_s": round(best),
        "what": f"two SHA-256 per {ENTRY_BYTES}-byte entry in a CPython loop, best of {rounds}",
        "load_average": round(os.getloadavg()[0], 2),
    }
