"""Store.lookup_many: the batched exact-match lookup leak tracing uses, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

from custodes.model import IndexEntry, StoredRecord
from custodes.store import Store

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)


def _record(record_id: str, ref: bytes) -> StoredRecord:
    return StoredRecord(record_id, "people", ref, T0, {"name": b"\x00sealed"})


def test_lookup_many_equals_lookup_of_each_token(store: Store) -> None:
    tokens = [n.to_bytes(2, "big") * 16 for n in range(1, 1_201)]  # more than one chunk
    with store.transaction() as tx:
        for n, token in enumerate(tokens):
            if n % 3:  # a third of the tokens are not in the index
                refs = [bytes([n % 256, k]) for k in range(1 + n % 4)]
                tx.insert_records(
                    [
                        (_record(f"r{n}-{k}", ref), [IndexEntry(token, f"r{n}-{k}", ref)])
                        for k, ref in enumerate(refs)
                    ]
                )
    wanted = [*tokens, b"%", tokens[1][:-1], tokens[1] + b"\x00"]  # patterns match nothing
    many = store.lookup_many(wanted, limit=2)
    assert many == {t: store.lookup(t, limit=2) for t in wanted if store.lookup(t, limit=2)}
    assert store.lookup_many(tokens, limit=0) == {}
    assert store.lookup_many([], limit=5) == {}
