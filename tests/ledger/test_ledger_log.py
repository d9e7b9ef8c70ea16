"""The persistent ledger: roots and proofs from stored nodes, tamper detection, atomicity."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.helpers import explode_ledger

from custodes.config import StoreSettings
from custodes.errors import InputError, StoreError, VerificationError
from custodes.ledger import Ledger, LedgerTamperError, merkle
from custodes.model import AccessEvent
from custodes.store import Store, open_store
from custodes.store._codec import BUNDLE_MAX, level_start, pack_entries

RawSQL = Callable[[str], list[Any]]
T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)
BATCHES = (1, 1, 2, 3, 5, 8, 13, 1, 21, 34, 55, 7, 64, 1, 90)  # 306 events in uneven batches


def _event(i: int) -> AccessEvent:
    return AccessEvent(
        T0 + timedelta(seconds=i), f"clerk-{i % 7}", "city", "clerk", "get", "people",
        ("name",), f"psn-{i}", "benefits", None, "allow", "ok", 1,
    )  # fmt: skip


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[Store]:
    opened = open_store(store_settings)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def intruder(store_settings: StoreSettings) -> RawSQL:
    """Raw SQL straight through the driver, as someone with the database's credentials."""

    def run(sql: str) -> list[Any]:
        if store_settings.backend == "sqlite":
            with closing(sqlite3.connect(store_settings.path, isolation_level=None)) as conn:
                return conn.execute(sql).fetchall()
        assert store_settings.url is not None
        with psycopg.connect(store_settings.url, autocommit=True) as pg:
            cur = pg.execute(sql)
            return cur.fetchall() if cur.description else []

    return run


def _drop_triggers(intruder: RawSQL, backend: str) -> None:
    if backend == "sqlite":
        for name in ("events_no_update", "events_no_delete"):
            intruder(f"DROP TRIGGER {name}")
        for name in ("ledger_bundles_no_update", "ledger_bundles_no_delete"):
            intruder(f"DROP TRIGGER {name}")
    else:
        intruder("DROP TRIGGER events_append_only ON events")
        intruder("DROP TRIGGER ledger_bundles_append_only ON ledger_bundles")


def _one(entry: bytes) -> bytes:
    packed = pack_entries([entry])
    assert isinstance(packed, bytes)
    return packed


def _blob(data: bytes, backend: str) -> str:
    return f"X'{data.hex()}'" if backend == "sqlite" else f"'\\x{data.hex()}'::bytea"


def _append(store: Store, first: int, count: int) -> None:
    with store.transaction() as tx:
        tx.append_events([_event(first + i) for i in range(count)])


def _filled(store: Store, n: int) -> Ledger:
    _append(store, 0, n)
    return Ledger(store=store)


def test_roots_and_proofs_match_the_pure_tree_at_every_size(store: Store) -> None:
    ledger = Ledger(store=store)
    entries: list[bytes] = []
    assert ledger.root() == merkle.root([])
    for batch in BATCHES:
        if batch == 1:  # single appends go through append_event
            with store.transaction() as tx:
                tx.append_event(_event(len(entries)))
        else:
            _append(store, len(entries), batch)
        entries += [_event(len(entries) + i).canonical(len(entries) + i) for i in range(batch)]
    assert ledger.size() == len(entries)
    hashes = [merkle.leaf_hash(e) for e in entries]
    for size in range(1, len(entries) + 1):
        expected = merkle.root_from_hashes(hashes[:size])
        assert ledger.root(size) == expected
        for index in {0, size // 3, size - 1}:
            proof = ledger.inclusion_proof(index, size)
            assert proof == merkle.inclusion_proof_from_hashes(hashes[:size], index)
            merkle.verify_inclusion(entries[index], index, size, proof, expected)
        for old in {1, size // 2 or 1, size - 1 or 1, size}:
            proof = ledger.consistency_proof(old, size)
            assert proof == merkle.consistency_proof_from_hashes(hashes[:size], old)
            old_root = merkle.root_from_hashes(hashes[:old])
            merkle.verify_consistency(old, size, old_root, expected, proof)
    ledger.verify(expect_size=len(entries), expect_root=ledger.root())


def test_every_inclusion_and_consistency_pair_at_a_small_size(store: Store) -> None:
    ledger = _filled(store, 37)
    entries = [_event(i).canonical(i) for i in range(37)]
    for size in range(1, 38):
        r = merkle.root(entries[:size])
        for index in range(size):
            proof = ledger.inclusion_proof(index, size)
            merkle.verify_inclusion(entries[index], index, size, proof, r)
        for old in range(1, size + 1):
            old_root = merkle.root(entries[:old])
            merkle.verify_consistency(old, size, old_root, r, ledger.consistency_proof(old, size))


def test_proofs_beyond_the_log_are_refused(store: Store) -> None:
    ledger = _filled(store, 5)
    with pytest.raises(InputError, match="size 6"):
        ledger.root(6)
    with pytest.raises(InputError):
        ledger.inclusion_proof(5, 5)
    with pytest.raises(InputError):
        ledger.consistency_proof(3, 6)


def test_each_row_keeps_its_leaf_and_the_subtrees_it_completes(store: Store) -> None:
    _filled(store, 11)  # 8 + 2 + 1: levels 0..3
    levels = [len(hashes) // merkle.HASH_SIZE - 1 for _, _, hashes in store.ledger_rows()]
    assert levels == [0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0]
    assert store.node(3, 0) == merkle.root([_event(i).canonical(i) for i in range(8)])
    assert store.node(3, 1) is None


def test_entries_name_their_own_position(store: Store) -> None:
    _filled(store, 3)
    assert [entry for _, entry, _ in store.ledger_rows()] == [
        _event(i).canonical(i) for i in range(3)
    ]
    assert b'"seq":2' in _event(2).canonical(2)


def test_a_rolled_back_append_leaves_no_orphan_hashes(store: Store) -> None:
    ledger = _filled(store, 6)
    before = ledger.root()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.append_events([_event(6 + i) for i in range(10)])
        raise RuntimeError("caller failed after appending")
    assert ledger.size() == 6
    assert list(store.ledger_rows(6)) == []
    assert store.node(3, 0) is None
    assert ledger.root() == before
    ledger.verify()
    _append(store, 6, 10)  # the right edge is read afresh after the rollback
    assert ledger.root() == merkle.root([_event(i).canonical(i) for i in range(16)])
    ledger.verify()


def test_ledger_bundles_are_append_only(store: Store, intruder: RawSQL) -> None:
    _filled(store, 4)
    with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
        intruder("UPDATE ledger_bundles SET hashes = hashes WHERE seq = 0")
    with pytest.raises((sqlite3.Error, psycopg.Error), match="append-only"):
        intruder("DELETE FROM ledger_bundles WHERE seq = 0")


def _tamper(store: Store, intruder: RawSQL, backend: str, settings: StoreSettings) -> Ledger:
    ledger = _filled(store, 300)
    explode_ledger(settings)  # one row per entry, so that one edit touches one entry
    ledger.verify()
    _drop_triggers(intruder, backend)
    return ledger


def _bad_index(ledger: Ledger, **expect: Any) -> int | None:
    with pytest.raises(VerificationError) as caught:
        ledger.verify(**expect)
    assert isinstance(caught.value, LedgerTamperError)
    if caught.value.index is not None:
        assert str(caught.value).startswith(f"entry {caught.value.index}:")
    return caught.value.index


def test_editing_one_event_is_found_at_its_index(
    store: Store, intruder: RawSQL, backend: str, store_settings: StoreSettings
) -> None:
    ledger = _tamper(store, intruder, backend, store_settings)
    intruder("UPDATE events SET accessor = 'someone-else' WHERE seq = 173")
    with pytest.raises(VerificationError, match=r"^entry 173: .* does not match the event"):
        ledger.verify()


def test_editing_an_entry_and_its_event_is_found_at_its_index(
    store: Store, intruder: RawSQL, backend: str, store_settings: StoreSettings
) -> None:
    ledger = _tamper(store, intruder, backend, store_settings)
    intruder("UPDATE events SET accessor = 'someone-else' WHERE seq = 173")
    forged = next(store.events(173, 174))[1].canonical(173)
    packed = _blob(_one(forged), backend)
    intruder(f"UPDATE ledger_bundles SET entries = {packed} WHERE seq = 173")
    with pytest.raises(VerificationError, match=r"^entry 173: .* does not match its stored leaf"):
        ledger.verify()


def test_editing_an_entry_and_its_leaf_hash_is_found_at_its_index(
    store: Store, intruder: RawSQL, backend: str, store_settings: StoreSettings
) -> None:
    ledger = _tamper(store, intruder, backend, store_settings)
    intruder("UPDATE events SET accessor = 'someone-else' WHERE seq = 173")
    forged = next(store.events(173, 174))[1].canonical(173)
    hashes = next(store.ledger_rows(173, 174))[2]
    new = merkle.leaf_hash(forged) + hashes[merkle.HASH_SIZE :]
    intruder(
        f"UPDATE ledger_bundles SET entries = {_blob(_one(forged), backend)}, "
        f"hashes = {_blob(new, backend)} WHERE seq = 173"
    )
    # 173 completes the subtree over 172..173, whose stored hash no longer matches.
    assert _bad_index(ledger) == 173


def test_deleting_one_entry_is_found_at_its_index(
    store: Store, intruder: RawSQL, backend: str, store_settings: StoreSettings
) -> None:
    ledger = _tamper(store, intruder, backend, store_settings)
    intruder("DELETE FROM ledger_bundles WHERE seq = 42")
    intruder("DELETE FROM events WHERE seq = 42")
    assert _bad_index(ledger) == 42


def test_deleting_only_the_event_is_found_at_its_index(
    store: Store, intruder: RawSQL, backend: str, store_settings: StoreSettings
) -> None:
    ledger = _tamper(store, intruder, backend, store_settings)
    intruder("DELETE FROM events WHERE seq = 42")
    assert _bad_index(ledger) == 42


def test_swapping_two_entries_is_found_at_the_first(
    store: Store, intruder: RawSQL, backend: str, store_settings: StoreSettings
) -> None:
    ledger = _tamper(store, intruder, backend, store_settings)
    for table in ("events", "ledger_bundles"):
        intruder(f"UPDATE {table} SET seq = 100000 WHERE seq = 57")
        intruder(f"UPDATE {table} SET seq = 57 WHERE seq = 210")
        intruder(f"UPDATE {table} SET seq = 210 WHERE seq = 100000")
    assert _bad_index(ledger) == 57


def test_truncating_the_tail_is_found_against_a_checkpoint(
    store: Store, intruder: RawSQL, backend: str, store_settings: StoreSettings
) -> None:
    ledger = _tamper(store, intruder, backend, store_settings)
    size, root = ledger.size(), ledger.root()
    intruder("DELETE FROM ledger_bundles WHERE seq >= 250")
    assert _bad_index(ledger) == 250  # its events are still there
    intruder("DELETE FROM events WHERE seq >= 250")
    ledger.verify()  # a clean truncation is self-consistent ...
    assert _bad_index(ledger, expect_size=size) == 250  # ... but not with the checkpoint
    assert _bad_index(ledger, expect_size=size, expect_root=root) == 250
    assert _bad_index(ledger, expect_root=root) is None


def test_a_rewritten_log_of_equal_size_fails_the_checkpoint_root(
    store: Store, intruder: RawSQL, backend: str, store_settings: StoreSettings
) -> None:
    ledger = _tamper(store, intruder, backend, store_settings)
    size, root = ledger.size(), ledger.root()
    intruder("DELETE FROM ledger_bundles WHERE seq >= 200")
    intruder("DELETE FROM events WHERE seq >= 200")
    with store.transaction() as tx:
        tx.append_events([_event(i + 1000) for i in range(100)])
    ledger.verify()
    assert _bad_index(ledger, expect_size=size, expect_root=root) is None


def test_events_never_commit_without_their_ledger_entries(
    store: Store, intruder: RawSQL, backend: str
) -> None:
    ledger = _filled(store, 5)
    intruder("INSERT INTO events (seq, ts, accessor, org, role, action, fields, decision, "
             "reason, count, break_glass) VALUES (5, 't', 'a', 'o', 'r', 'get', '[]', 'allow', "
             f"'x', 1, {'0' if backend == 'sqlite' else 'false'})")  # fmt: skip
    with pytest.raises(StoreError, match="rolled back"), store.transaction() as tx:
        with pytest.raises(StoreError):
            tx.append_event(_event(5))
        # The caller swallows the error and leaves the block normally: still no commit.
    assert ledger.size() == 5
    assert [seq for seq, _, _ in store.ledger_rows()] == [0, 1, 2, 3, 4]


def test_raw_entries_append_and_verify_without_events(store: Store) -> None:
    entries = [f"entry {i}".encode() for i in range(70)]
    with store.transaction() as tx:
        assert tx.append_entries(entries[:33]) == list(range(33))
    with store.transaction() as tx:
        assert tx.append_entries(entries[33:]) == list(range(33, 70))
    ledger = Ledger(store=store)
    assert ledger.root() == merkle.root(entries)
    ledger.verify(check_events=False)


def _bundled(store: Store) -> list[bytes]:
    """10 single appends, then 5,000 events in one batch: three bundles, two compressed."""
    for i in range(10):
        with store.transaction() as tx:
            tx.append_event(_event(i))
    _append(store, 10, 5000)
    return [_event(i).canonical(i) for i in range(5010)]


def _bundled_open(store: Store, intruder: RawSQL, backend: str) -> Ledger:
    """The bundled log of :func:`_bundled`, with its append-only triggers dropped."""
    _bundled(store)
    _drop_triggers(intruder, backend)
    return Ledger(store=store)


def test_bundles_hold_each_entrys_leaf_and_the_subtrees_it_completes(
    store: Store, intruder: RawSQL
) -> None:
    entries = _bundled(store)
    assert [tuple(row) for row in intruder("SELECT seq, n FROM ledger_bundles ORDER BY seq")][
        9:
    ] == [(9, 1), (10, BUNDLE_MAX), (10 + BUNDLE_MAX, BUNDLE_MAX), (10 + 2 * BUNDLE_MAX, 904)]
    rows = list(store.ledger_rows())
    assert [seq for seq, _, _ in rows] == list(range(len(entries)))
    for seq, entry, hashes in rows:
        assert entry == entries[seq]
        expected = [merkle.leaf_hash(entry)]
        level = 1
        while (seq + 1) % (1 << level) == 0:
            expected.append(merkle.root(entries[seq + 1 - (1 << level) : seq + 1]))
            level += 1
        assert hashes == b"".join(expected), seq
    assert list(store.ledger_rows(2050, 2060)) == rows[2050:2060]  # a range inside a bundle
    Ledger(store=store).verify()


def test_a_corrupted_compressed_bundle_is_found_at_its_first_entry(
    store: Store, intruder: RawSQL, backend: str
) -> None:
    ledger = _bundled_open(store, intruder, backend)
    (blob,) = intruder(f"SELECT entries FROM ledger_bundles WHERE seq = {10 + BUNDLE_MAX}")[0]
    flipped = bytes(blob[:500]) + bytes([blob[500] ^ 1]) + bytes(blob[501:])
    intruder(
        f"UPDATE ledger_bundles SET entries = {_blob(flipped, backend)} "
        f"WHERE seq = {10 + BUNDLE_MAX}"
    )
    assert _bad_index(ledger) == 10 + BUNDLE_MAX


def test_a_forged_node_inside_a_bundle_is_found_at_the_entry_that_completes_it(
    store: Store, intruder: RawSQL, backend: str
) -> None:
    ledger = _bundled_open(store, intruder, backend)
    (blob,) = intruder("SELECT hashes FROM ledger_bundles WHERE seq = 10")[0]
    # Node (3, 2) covers entries 16..23; in the bundle from 10 it follows the bundle's
    # leaves and its level-1 and level-2 nodes.
    offset = (level_start(10, BUNDLE_MAX, 3) + 2 - (10 >> 3)) * merkle.HASH_SIZE
    forged = bytes(blob[:offset]) + bytes(32) + bytes(blob[offset + 32 :])
    intruder(f"UPDATE ledger_bundles SET hashes = {_blob(forged, backend)} WHERE seq = 10")
    assert _bad_index(ledger) == 23
    entries = [_event(i).canonical(i) for i in range(5010)]
    proof = ledger.inclusion_proof(24, 5010)  # node (3, 2) is the sibling of (3, 3) over 24..31
    with pytest.raises(VerificationError):
        merkle.verify_inclusion(entries[24], 24, 5010, proof, merkle.root(entries))


def test_a_forked_child_appends_large_bundles(store_settings: StoreSettings) -> None:
    """The compressing worker thread does not survive fork(); a child must start its own."""
    parent = open_store(store_settings)
    parent.migrate()
    _append(parent, 0, 500)  # starts the worker in this process
    parent.close()
    pid = os.fork()
    if pid == 0:  # the child: append a compressed bundle, exit 0 only if it committed
        code = 1
        try:
            child = open_store(store_settings)
            _append(child, 500, 500)
            child.close()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the child hung appending a bundle")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    reopened = open_store(store_settings)
    try:
        assert Ledger(store=reopened).root() == merkle.root(
            [_event(i).canonical(i) for i in range(1000)]
        )
    finally:
        reopened.close()


@given(first=st.integers(0, 2**40), count=st.integers(1, BUNDLE_MAX))
def test_where_each_level_starts_in_a_bundle_is_the_count_of_the_levels_below(
    first: int, count: int
) -> None:
    """The closed form that locates a node is the plain count of what the bundle completes."""
    completed = [((first + count) >> level) - (first >> level) for level in range(64)]
    for level in range(64):
        assert level_start(first, count, level) == sum(completed[:level])


def test_a_bundle_whose_size_was_inflated_is_one_bad_bundle_not_a_billion_rows(
    store: Store, intruder: RawSQL, backend: str
) -> None:
    ledger = _bundled_open(store, intruder, backend)
    intruder("UPDATE ledger_bundles SET n = 1000000000 WHERE seq = 10")
    assert _bad_index(ledger) == 10
    assert len(list(store.ledger_rows())) <= 10 + BUNDLE_MAX + 2 * BUNDLE_MAX


@pytest.mark.parametrize(
    "entries",
    [b"", b"\x00\x01", b"\x00" + (999).to_bytes(4, "little") + b"short", b"\x07junk-codec"],
)
def test_a_mangled_bundle_of_one_is_found_at_its_index(
    store: Store, intruder: RawSQL, backend: str, entries: bytes
) -> None:
    for i in range(8):
        with store.transaction() as tx:
            tx.append_event(_event(i))
    ledger = Ledger(store=store)
    ledger.verify()
    _drop_triggers(intruder, backend)
    intruder(f"UPDATE ledger_bundles SET entries = {_blob(entries, backend)} WHERE seq = 5")
    assert _bad_index(ledger) == 5
