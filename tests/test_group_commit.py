"""Group commit: concurrent readers share transactions, and each still gets only its own result,
only once its event is durable; a failed write fails every caller of its batch and no other."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from custodes._groupcommit import GroupCommit
from custodes.config import StoreSettings
from custodes.errors import AuditFailure
from custodes.sim import generate_people
from tests.helpers import access, break_event_table, make_vault


def _hammer(threads: int, fn: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * threads
    start = threading.Barrier(threads)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = fn(i)
        except Exception as exc:
            results[i] = exc

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return results


def test_concurrent_submissions_share_writes_and_keep_their_own_results() -> None:
    written: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        time.sleep(0.01)  # a slow commit, so that callers pile up behind it
        written.append(list(items))
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    results = _hammer(16, lambda i: [group.submit(i * 100 + k) for k in range(5)])
    for i, got in enumerate(results):
        assert got == [(i * 100 + k) * 10 for k in range(5)]
    assert sorted(x for batch in written for x in batch) == sorted(
        i * 100 + k for i in range(16) for k in range(5)
    )
    assert group.batches == len(written) < 16 * 5  # some writes carried several callers


def test_a_failed_write_fails_exactly_the_callers_in_its_batch() -> None:
    calls = 0

    def write(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        time.sleep(0.01)
        if "poison" in items:
            raise OSError("disk full")
        return items

    group: GroupCommit[str, str] = GroupCommit(write)
    results = _hammer(8, lambda i: group.submit("poison" if i == 3 else f"ok-{i}"))
    failed = [r for r in results if isinstance(r, OSError)]
    assert failed, "the caller whose item was in the failed write must see the error"
    for i, got in enumerate(results):
        assert isinstance(got, OSError) or got == f"ok-{i}"
    assert group.submit("after") == "after"  # the group recovers


def test_a_lone_caller_writes_alone() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: [len(items)] * len(items))
    assert [group.submit(0) for _ in range(3)] == [1, 1, 1]
    assert group.batches == 3


def test_concurrent_vault_reads_are_all_ledgered_and_verify(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    vault = make_vault(tmp_path / "home", store_settings)
    people = generate_people(8, seed=9)
    registrar = access(vault, "reg-1", "registration")
    for p in people:
        vault.put(registrar, "identity", p.id_number, {"name": p.name, "id_number": p.id_number})
    before = vault.store.event_count()
    officer = access(vault, "duty-1", "identity_check")

    def reads(i: int) -> list[str]:
        person = people[i % len(people)]
        return [
            vault.get(officer, "identity", person.id_number)[0].values["name"] for _ in range(25)
        ]

    results = _hammer(8, reads)
    for i, names in enumerate(results):
        assert names == [people[i % len(people)].name] * 25
    assert vault.store.event_count() == before + 8 * 25
    vault.ledger.verify()
    vault.close()


def test_a_failing_event_write_returns_no_data_to_any_caller_of_the_batch(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    vault = make_vault(tmp_path / "home", store_settings)
    person = generate_people(1, seed=10)[0]
    registrar = access(vault, "reg-1", "registration")
    vault.put(
        registrar,
        "identity",
        person.id_number,
        {"name": person.name, "id_number": person.id_number},
    )
    before = vault.store.event_count()
    officer = access(vault, "duty-1", "identity_check")
    break_event_table(vault)
    results = _hammer(4, lambda _: vault.get(officer, "identity", person.id_number))
    assert all(isinstance(r, AuditFailure) for r in results), results
    assert not any(person.name in r.diagnostics() for r in results if isinstance(r, AuditFailure))
    assert vault.store.event_count() == before
    vault.close()
