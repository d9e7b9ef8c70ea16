"""Bulk loading in worker processes (``custodes.bulk.load``) on both backends.

Every test here writes through real worker processes (spawned, each with its own vault on the
same home) unless it says ``workers=1``; what is checked is what a person relies on after a bulk
load: every record there and readable, one event per record, a verifying ledger, one key per
subject, and on failure exactly the batches reported as committed.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import random
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.bulk import Batch, BulkLoadError, default_workers, load
from custodes.clock import ManualClock
from custodes.config import Settings, StoreSettings
from custodes.errors import AccessDenied, AuditFailure, ConfigError, InputError
from custodes.model import Access, Accessor
from custodes.schema import Schema
from custodes.sim import generate_people, sample_records
from custodes.vault import Vault
from tests.helpers import (
    START,
    access,
    assert_records_open,
    break_event_table,
    count_rows,
    home_with_grants,
    make_vault,
)

PEOPLE = generate_people(60, seed=33)
SCHEMA = Schema.default()


def _batches(size: int) -> list[Batch]:
    rng = random.Random(8)
    by_collection: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for person in PEOPLE:
        for collection, records in sample_records(person, rng).items():
            by_collection.setdefault(collection, []).extend((person.id_number, r) for r in records)
    return [
        (name, items[start : start + size])
        for name, items in by_collection.items()
        for start in range(0, len(items), size)
    ]


BATCHES = _batches(25)
TOTAL = sum(len(items) for _, items in BATCHES)


@pytest.fixture
def vault(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Vault]:
    with make_vault(tmp_path / "home", store_settings, ManualClock(START)) as v:
        yield v


def _key_count(settings: Settings) -> int:
    with sqlite3.connect(settings.keystore_path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM subject_keys").fetchone()[0])


def _read_back(vault: Vault, ids: dict[int, list[str]]) -> None:
    """Every record of every batch opens, in its place, under its subject, to its values."""
    for position, (name, items) in enumerate(BATCHES):
        assert_records_open(vault, name, items, ids[position])


def test_parallel_load_writes_every_record_once_with_its_event(vault: Vault) -> None:
    reg = access(vault, "reg-1", "registration")
    ids: dict[int, list[str]] = {}
    report = load(vault.settings, reg, BATCHES, workers=2, on_batch=ids.__setitem__)
    assert (report.batches, report.records, report.workers) == (len(BATCHES), TOTAL, 2)
    assert sorted(ids) == list(range(len(BATCHES)))
    assert len({i for batch in ids.values() for i in batch}) == TOTAL
    _read_back(vault, ids)
    assert vault.store.event_count() == TOTAL
    vault.ledger.verify()
    # Every batch's events are together and in its items' order: one put_many each.
    events = [event for _, event in vault.store.events()]
    assert {e.action for e in events} == {"put"} and {e.accessor for e in events} == {"reg-1"}
    # One data key per subject, although most subjects were in batches written side by side.
    assert _key_count(vault.settings) == len(PEOPLE)


def test_workers_yield_the_cpu_to_the_committing_process_and_are_gone_after(
    vault: Vault,
) -> None:
    """The commits are the load's one serial step: workers run 5 nice levels below the loading
    process, and none is left running (or unreaped) once the load has returned."""
    reg = access(vault, "reg-1", "registration")
    lowered = min(os.getpriority(os.PRIO_PROCESS, 0) + 5, 19)
    seen: dict[int, int] = {}

    def note_workers(position: int, ids: list[str]) -> None:
        # Both workers were started before the first commit, but one may still be starting
        # (it lowers its priority first thing): wait for that, up to a generous bound.
        deadline = time.monotonic() + (30 if not seen else 0)
        while not seen or set(seen.values()) != {lowered}:
            for child in multiprocessing.active_children():
                assert child.pid is not None
                seen[child.pid] = os.getpriority(os.PRIO_PROCESS, child.pid)
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)

    load(vault.settings, reg, BATCHES, workers=2, on_batch=note_workers)
    assert len(seen) == 2 and set(seen.values()) == {lowered}
    assert multiprocessing.active_children() == []
    assert vault.store.event_count() == TOTAL


def test_parallel_load_matches_the_same_load_in_one_process(
    tmp_path: Path, store_settings: StoreSettings, vault: Vault
) -> None:
    """Three workers on this backend write what one process writes on SQLite."""
    reg = access(vault, "reg-1", "registration")
    load(vault.settings, reg, BATCHES, workers=3)
    with make_vault(tmp_path / "other", StoreSettings(backend="sqlite")) as other:
        load(other.settings, access(other, "reg-1", "registration"), BATCHES, workers=1)
        for v in (vault, other):
            v.ledger.verify()

        # The same records (by subject, collection and values), whatever order batches took.
        def contents(v: Vault) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
            out = []
            for person in PEOPLE:
                ref = v._subject(person.id_number).ref
                for name in SCHEMA.collections:
                    fields = list(SCHEMA.collection(name).fields)
                    stored = v.store.records(name, ref)
                    for rec in v._open_records(stored, ref, fields):
                        out.append((person.id_number, name, tuple(sorted(rec.values.items()))))
            return sorted(out)

        assert contents(vault) == contents(other)
        assert vault.store.event_count() == other.store.event_count() == TOTAL


_STOP_CAP = 5000


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_batch_writes_nothing_and_stops_the_load(vault: Vault, workers: int) -> None:
    """The failing batch writes nothing, and once its failure is known nothing more is taken
    from the input. How many batches commit before the failure comes back depends on timing
    (a worker's first batch may be slowed by cold caches), so the input does not end: a
    loader that did not stop would take batches until the cap and fail this test."""
    bad = 5
    name, items = BATCHES[bad]
    subject, values = items[3]
    bad_batch = (name, [*items[:3], ("110105194912310021", values), *items[4:]])  # bad checksum
    given: list[Batch] = []

    def endless() -> Iterator[Batch]:
        while len(given) < _STOP_CAP:
            position = len(given)
            if position < len(BATCHES):
                batch = bad_batch if position == bad else BATCHES[position]
            else:  # one-record batches after the sample, as long as the loader asks
                again, again_items = BATCHES[position % len(BATCHES)]
                batch = (again, again_items[:1])
            given.append(batch)
            yield batch
        raise AssertionError(f"the load took {_STOP_CAP} batches: it did not stop")

    ids: dict[int, list[str]] = {}
    reg = access(vault, "reg-1", "registration")
    with pytest.raises(BulkLoadError) as info:
        load(vault.settings, reg, endless(), workers=workers, on_batch=ids.__setitem__)
    err = info.value
    assert err.failed == bad and err.cause == "InputError"
    assert bad not in err.committed and sorted(ids) == list(err.committed)
    assert set(range(bad)) <= set(err.committed)  # every earlier batch had committed
    if workers == 1:
        assert len(given) == bad + 1 and err.committed == tuple(range(bad))
    else:
        # At most three batches per worker are taken and not yet committed (two being prepared
        # or queued for a worker, one prepared and waiting for the commit), the failed one
        # among them: so at most 3 * workers - 1 were taken beyond those that committed.
        assert len(given) <= len(err.committed) + 3 * workers
    msg = err.diagnostics()
    assert f"batch {bad} ({name})" in msg and "wrote nothing" in msg
    assert subject not in msg  # the error names no one
    # Exactly the committed batches are there: their records, one event each, nothing else.
    written = sum(len(given[p][1]) for p in err.committed)
    assert vault.store.event_count() == written
    assert sum(len(v) for v in ids.values()) == written
    assert count_rows(vault, "records") == written
    vault.ledger.verify()


def test_a_denied_load_is_recorded_and_writes_nothing(vault: Vault) -> None:
    duty = access(vault, "duty-1", "identity_check")  # may read identities, not write them
    with pytest.raises(BulkLoadError) as info:
        load(vault.settings, duty, BATCHES, workers=2)
    assert info.value.cause == "AccessDenied" and info.value.committed == ()
    assert info.value.failed == 0 and "access denied" in info.value.diagnostics()
    # The first batch's denial, and those of the batches already running: nothing else.
    events = [event for _, event in vault.store.events()]
    assert 1 <= len(events) <= 4
    assert {(e.decision, e.accessor) for e in events} == {("deny", "duty-1")}
    assert count_rows(vault, "records") == 0


def test_a_single_batch_is_written_in_this_process(vault: Vault) -> None:
    reg = access(vault, "reg-1", "registration")
    report = load(vault.settings, reg, BATCHES[:1], workers=4)
    assert (report.batches, report.workers) == (1, 1)
    assert multiprocessing.active_children() == []
    assert vault.store.event_count() == len(BATCHES[0][1])


def test_a_failing_commit_fails_the_load_closed(vault: Vault) -> None:
    break_event_table(vault)
    with pytest.raises(BulkLoadError) as info:
        load(vault.settings, access(vault, "reg-1", "registration"), BATCHES, workers=2)
    assert info.value.cause == "AuditFailure" and info.value.committed == ()
    assert vault.store.event_count() == 0
    assert count_rows(vault, "records") == 0


def test_a_killed_worker_leaves_whole_batches_only(vault: Vault) -> None:
    """A worker killed mid-load (SIGKILL, as the OOM killer would): the load fails with a clear
    error, and whatever reached the database is whole batches with their events."""
    reg = access(vault, "reg-1", "registration")
    killed: list[int] = []

    def kill_workers(position: int, ids: list[str]) -> None:
        if not killed:
            for child in multiprocessing.active_children():
                assert child.pid is not None
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)

    with pytest.raises(BulkLoadError) as info:
        load(vault.settings, reg, BATCHES * 4, workers=2, on_batch=kill_workers)
    assert killed
    assert info.value.cause == "BrokenProcessPool"
    assert "stopped unexpectedly" in info.value.diagnostics()
    assert "was not committed" in info.value.diagnostics()
    vault.ledger.verify()
    # Workers only prepare; this process commits. So what is there is exactly the batches
    # reported as committed, with their events, and nothing of the killed workers' batches.
    reported = sum(len((BATCHES * 4)[p][1]) for p in info.value.committed)
    assert count_rows(vault, "records") == vault.store.event_count() == reported


def test_workers_must_be_a_small_positive_number(vault: Vault) -> None:
    reg = access(vault, "reg-1", "registration")
    for bad in (0, -1, 33, True, 1.5, "2"):
        with pytest.raises(InputError, match="workers must be"):
            load(vault.settings, reg, BATCHES, workers=bad)  # type: ignore[arg-type]
    assert vault.store.event_count() == 0
    assert 1 <= default_workers() <= 32


def test_a_missing_home_fails_before_any_worker_starts(tmp_path: Path, vault: Vault) -> None:
    reg = access(vault, "reg-1", "registration")
    broken = vault.settings
    os.remove(broken.root_key_path)
    with pytest.raises(ConfigError):
        load(broken, reg, BATCHES, workers=2)
    assert multiprocessing.active_children() == []


def test_public_names_are_pinned() -> None:
    import custodes.bulk

    assert sorted(custodes.bulk.__all__) == [
        "Batch",
        "BulkLoadError",
        "LoadReport",
        "default_workers",
        "load",
    ]
    assert issubclass(BulkLoadError, custodes.errors.CustodesError)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("bad", [("identity",), ("identity", "abc"), (3, []), "identity", None])
def test_a_batch_that_is_not_a_pair_stops_the_load_there(
    vault: Vault, workers: int, bad: object
) -> None:
    batches: list[object] = [*BATCHES[:3], bad, *BATCHES[3:6]]
    with pytest.raises(BulkLoadError) as info:
        load(vault.settings, access(vault, "reg-1", "registration"), batches, workers=workers)  # type: ignore[arg-type]
    assert info.value.failed == 3 and info.value.cause == "InputError"
    assert "not a (collection name, items) pair" in info.value.diagnostics()
    assert info.value.committed == (0, 1, 2)
    assert vault.store.event_count() == sum(len(items) for _, items in BATCHES[:3])


LIMITED = """
[purposes.limited_registration]
description = "Registration of at most eight people a day (tests only)."

[[grants]]
role = "registrar"
purpose = "limited_registration"
actions = ["put"]
collections = ["identity"]
fields = ["*"]
max_subjects_per_day = 8
"""


def test_a_daily_limit_is_counted_exactly_so_such_loads_run_in_order(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    """Workers deciding side by side would each count the day's subjects without the
    others'; a load under a limited grant is decided in one process, and the limit holds."""
    settings = home_with_grants(tmp_path / "home", store_settings, LIMITED)
    identity = [batch for batch in BATCHES if batch[0] == "identity"]
    batches = [("identity", items[i : i + 5]) for _, items in identity for i in range(0, 25, 5)]
    with Vault.open(settings) as vault:
        vault.add_accessor(Accessor("reg-1", "registry", "registrar"))
        limited = Access(vault.principal("reg-1"), "limited_registration")
        with pytest.raises(BulkLoadError) as info:
            load(settings, limited, batches, workers=2)
        assert (info.value.failed, info.value.committed) == (1, (0,))
        assert info.value.cause == "AccessDenied" and "daily limit of 8" in info.value.reason
        decisions = [event.decision for _, event in vault.store.events()]
        assert decisions == ["allow"] * 5 + ["deny"]
        # The same access with no limit is decided by names: it runs in parallel.
        report = load(settings, Access(limited.principal, "registration"), batches, workers=2)
        assert report.workers == 2


def test_one_batch_cannot_carry_more_new_subjects_than_the_daily_limit(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    """``put_many`` counts the batch's own subjects against the limit: ten new people in one
    batch under a limit of eight are refused whole (the ninth is the denial recorded)."""
    settings = home_with_grants(tmp_path / "home", store_settings, LIMITED)
    items = [item for name, batch in BATCHES if name == "identity" for item in batch][:10]
    with Vault.open(settings) as vault:
        vault.add_accessor(Accessor("reg-1", "registry", "registrar"))
        limited = Access(vault.principal("reg-1"), "limited_registration")
        with pytest.raises(AccessDenied) as info:
            vault.put_many(limited, "identity", items)
        assert info.value.missing == ("quota",)
        ((_, event),) = list(vault.store.events())
        assert event.decision == "deny" and event.subject == vault._subject(items[8][0]).pseudonym
        assert count_rows(vault, "records") == 0
        # Eight fit; the same person twice is one subject.
        vault.put_many(limited, "identity", items[:8])
        with pytest.raises(AccessDenied):
            vault.put(limited, "identity", *items[8])
        assert count_rows(vault, "records") == 8


def test_a_prepared_batch_writes_nothing_until_it_is_committed(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    """What a worker does (``prepare_puts``) leaves no record and no event; the commit, in
    another vault on the same home as the loading process's, writes them all at once."""
    with make_vault(tmp_path / "home", store_settings, ManualClock(START)) as worker:
        reg = access(worker, "reg-1", "registration")
        name, items = BATCHES[0]
        prepared = worker.prepare_puts(reg, name, items)
        assert count_rows(worker, "records") == worker.store.event_count() == 0
        with Vault.open(worker.settings) as loader:
            crossed = pickle.loads(pickle.dumps(prepared))  # noqa: S301 (our own bytes)
            ids = loader.commit_puts(crossed)  # as it crosses from a worker process
        assert ids == prepared.ids and len(ids) == len(items)
        assert_records_open(worker, name, items, ids)
        assert worker.store.event_count() == len(items)
        worker.ledger.verify()


def test_prepared_events_are_those_put_many_writes(vault: Vault) -> None:
    """The events of a prepared batch (encoded without being made, one run per field set) are
    the very events put_many writes for the same items at the same moment, in the same order,
    with field sets that change from record to record."""
    reg = access(vault, "reg-1", "registration")
    name, items = BATCHES[0]
    assert name == "identity"
    mixed = [
        (subject, {k: v for k, v in values.items() if i % 3 or k not in ("address", "phone")})
        for i, (subject, values) in enumerate(items)
    ]
    assert len({tuple(values) for _, values in mixed}) > 1
    vault.commit_puts(vault.prepare_puts(reg, name, mixed))
    vault.put_many(reg, name, mixed)
    events = [event for _, event in vault.store.events()]
    assert len(events) == 2 * len(mixed)
    assert events[: len(mixed)] == events[len(mixed) :]
    assert [e.fields for e in events[: len(mixed)]] == [
        tuple(vault.schema.collection(name).validate(values)) for _, values in mixed
    ]
    vault.ledger.verify()


def test_a_failing_commit_of_a_prepared_batch_writes_nothing(vault: Vault) -> None:
    reg = access(vault, "reg-1", "registration")
    name, items = BATCHES[0]
    prepared = vault.prepare_puts(reg, name, items)
    break_event_table(vault)
    with pytest.raises(AuditFailure):
        vault.commit_puts(prepared)
    assert count_rows(vault, "records") == vault.store.event_count() == 0


def test_writes_decided_by_more_than_names_cannot_be_prepared(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    """A daily limit counts subjects as writes commit, so a batch decided under one must go
    through ``put_many``: ``prepare_puts`` refuses it and writes nothing, denial included."""
    settings = home_with_grants(tmp_path / "home", store_settings, LIMITED)
    with Vault.open(settings) as vault:
        vault.add_accessor(Accessor("reg-1", "registry", "registrar"))
        limited = Access(vault.principal("reg-1"), "limited_registration")
        name, items = next(batch for batch in BATCHES if batch[0] == "identity")
        with pytest.raises(InputError, match="put_many"):
            vault.prepare_puts(limited, name, items[:3])
        assert vault.store.event_count() == 0
        assert len(vault.put_many(limited, name, items[:3])) == 3  # the way they go
