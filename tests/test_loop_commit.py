"""Loop commit: the reads an event loop prepares in one turn share one write; each caller gets
its own result only once that write returned; a failed write fails exactly its batch; a
cancelled caller's item is written all the same. On the vault (both backends): concurrent reads
on a loop are all ledgered, batched, verify, and a daily limit still holds; no data leaves when
the shared commit fails."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from custodes._loopcommit import LoopCommit
from custodes.config import StoreSettings
from custodes.errors import AccessDenied, AuditFailure
from custodes.model import Access
from custodes.sim import generate_people
from custodes.vault import Vault
from tests.helpers import break_event_table, checker_vault, officers_vault


def test_submissions_of_one_turn_share_a_write_and_keep_their_own_results() -> None:
    written: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        written.append(list(items))
        return [item * 10 for item in items]

    commit: LoopCommit[int, int] = LoopCommit(write)

    async def main() -> tuple[list[int], int]:
        first = await asyncio.gather(*(commit.submit(i) for i in range(6)))
        later = await commit.submit(99)  # a later turn: a write of its own
        return first, later

    first, later = asyncio.run(main())
    assert first == [0, 10, 20, 30, 40, 50] and later == 990
    assert written == [[0, 1, 2, 3, 4, 5], [99]]
    assert commit.batches == 2


def test_a_submission_of_the_next_turn_joins_the_write() -> None:
    # A request the loop reads one turn after the first submission still shares its commit.
    written: list[list[str]] = []

    def write(items: list[str]) -> list[str]:
        written.append(list(items))
        return items

    commit: LoopCommit[str, str] = LoopCommit(write)

    async def first() -> str:
        return await commit.submit("first")

    async def next_turn() -> str:
        await asyncio.sleep(0)  # resumes on the loop's next turn, after first() submitted
        return await commit.submit("next turn")

    async def main() -> list[str]:
        return await asyncio.gather(first(), next_turn())

    assert asyncio.run(main()) == ["first", "next turn"]
    assert written == [["first", "next turn"]]
    assert commit.batches == 1


def test_a_caller_resumes_only_after_the_write_holding_its_item() -> None:
    order: list[str] = []

    def write(items: list[str]) -> list[str]:
        order.append(f"write {items}")
        return items

    commit: LoopCommit[str, str] = LoopCommit(write)

    async def caller(name: str) -> None:
        await commit.submit(name)
        order.append(f"{name} resumed")

    async def main() -> None:
        await asyncio.gather(caller("a"), caller("b"))

    asyncio.run(main())
    assert order == ["write ['a', 'b']", "a resumed", "b resumed"]


def test_a_failed_write_fails_exactly_the_callers_of_its_batch() -> None:
    def write(items: list[str]) -> list[str]:
        if "poison" in items:
            raise OSError("disk full")
        return items

    commit: LoopCommit[str, str] = LoopCommit(write)

    async def main() -> tuple[list[object], str]:
        batch = await asyncio.gather(
            commit.submit("ok-1"), commit.submit("poison"), return_exceptions=True
        )
        return batch, await commit.submit("after")

    batch, after = asyncio.run(main())
    assert all(isinstance(r, OSError) for r in batch)  # both were in the failed write
    assert after == "after"  # the next turn writes again


def test_a_write_returning_the_wrong_number_of_results_fails_its_batch() -> None:
    commit: LoopCommit[int, int] = LoopCommit(lambda items: [0])

    async def main() -> list[object]:
        return await asyncio.gather(commit.submit(1), commit.submit(2), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, RuntimeError) for r in results)


def test_a_cancelled_caller_is_written_all_the_same() -> None:
    written: list[int] = []

    def write(items: list[int]) -> list[int]:
        written.extend(items)
        return items

    commit: LoopCommit[int, int] = LoopCommit(write)

    async def main() -> tuple[bool, int]:
        gone = asyncio.ensure_future(commit.submit(1))
        stays = asyncio.ensure_future(commit.submit(2))
        await asyncio.sleep(0)  # both submitted: the flush is scheduled
        gone.cancel()
        await asyncio.sleep(0)
        return gone.cancelled(), await stays

    cancelled, kept = asyncio.run(main())
    assert cancelled and kept == 2
    assert written == [1, 2]


def test_each_loop_batches_only_its_own_submissions() -> None:
    lock = threading.Lock()
    written: list[list[str]] = []
    start = threading.Barrier(2)

    def write(items: list[str]) -> list[str]:
        with lock:
            written.append(list(items))
        return items

    commit: LoopCommit[str, str] = LoopCommit(write)

    def run(name: str) -> None:
        async def main() -> None:
            start.wait()
            for _ in range(50):
                await asyncio.gather(*(commit.submit(f"{name}-{i}") for i in range(4)))

        asyncio.run(main())

    threads = [threading.Thread(target=run, args=(n,)) for n in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(written) == 100
    for batch in written:
        assert len({item.split("-")[0] for item in batch}) == 1, batch  # one loop's items


# -- on the vault --------------------------------------------------------------------------------


def test_concurrent_reads_on_a_loop_share_commits_and_all_verify(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    people = generate_people(8, seed=19)
    vault, officers = officers_vault(tmp_path / "home", store_settings, people, 2)
    before, batches = vault.store.event_count(), vault._loop_writer.batches

    async def main() -> list[list[str]]:
        async def reads(i: int) -> list[str]:
            officer, person = officers[i % 2], people[i]
            out = []
            for _ in range(5):
                found = await vault.get_on_loop(officer, "identity", person.id_number)
                out.append(found[0].values["name"])
            return out

        return await asyncio.gather(*(reads(i) for i in range(8)))

    results = asyncio.run(main())
    assert results == [[p.name] * 5 for p in people]
    assert vault.store.event_count() == before + 40
    # Each turn's reads shared a write: five turns (a read of each task per turn).
    assert vault._loop_writer.batches - batches == 5
    events = [e for _, e in vault.store.events(before)]
    assert sorted(e.accessor for e in events) == ["duty-1"] * 20 + ["duty-2"] * 20
    assert all(e.action == "get" and e.decision == "allow" for e in events)
    vault.ledger.verify()
    vault.close()


def test_a_daily_limit_holds_for_concurrent_reads_on_a_loop(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    people = generate_people(5, seed=17)
    grants = """
[purposes.limited_check]
description = "Reads of at most two people a day (tests only)."

[[grants]]
role = "checker"
purpose = "limited_check"
actions = ["get"]
collections = ["identity"]
fields = ["name", "id_number"]
max_subjects_per_day = 2
"""
    with checker_vault(tmp_path / "home", store_settings, grants, people) as vault:
        check = Access(vault.principal("chk-1"), "limited_check")

        async def main() -> list[object]:
            return await asyncio.gather(
                *(vault.get_on_loop(check, "identity", p.id_number) for p in people),
                return_exceptions=True,
            )

        results = asyncio.run(main())
        allowed = [r for r in results if isinstance(r, list)]
        denied = [r for r in results if isinstance(r, AccessDenied)]
        assert len(allowed) == 2 and len(denied) == 3, results
        assert all(d.missing == ("quota",) for d in denied)


def test_no_data_leaves_when_the_shared_commit_fails(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    people = generate_people(3, seed=21)
    vault, officers = officers_vault(tmp_path / "home", store_settings, people, 3)
    before = vault.store.event_count()
    break_event_table(vault)

    async def main() -> list[object]:
        return await asyncio.gather(
            *(
                vault.get_on_loop(o, "identity", p.id_number)
                for o, p in zip(officers, people, strict=True)
            ),
            return_exceptions=True,
        )

    results = asyncio.run(main())
    assert all(isinstance(r, AuditFailure) for r in results), results
    assert "nothing was written or returned" in str(results[0])
    assert vault.store.event_count() == before
    vault.close()


@pytest.mark.parametrize("reads", [1, 3])
def test_a_read_on_a_loop_is_ledgered_before_it_returns(
    tmp_path: Path, store_settings: StoreSettings, reads: int
) -> None:
    person = generate_people(1, seed=23)[0]
    vault, (officer,) = officers_vault(tmp_path / "home", store_settings, [person])
    seen: list[int] = []

    async def main() -> None:
        for _ in range(reads):
            before = vault.store.event_count()
            await vault.get_on_loop(officer, "identity", person.id_number)
            seen.append(vault.store.event_count() - before)

    asyncio.run(main())
    assert seen == [1] * reads
    vault.close()


def test_reads_of_one_accessor_on_a_loop_are_decided_in_turn_and_share_a_write(
    tmp_path: Path, store_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = generate_people(4, seed=29)
    vault, (officer,) = officers_vault(tmp_path / "home", store_settings, people)
    threads: list[str] = []
    real = Vault._prepare_get

    def observed(self: Vault, *args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread().name)
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Vault, "_prepare_get", observed)
    before, batches = vault.store.event_count(), vault._loop_writer.batches

    async def main() -> list[str]:
        found = await asyncio.gather(
            *(vault.get_on_loop(officer, "identity", p.id_number) for p in people)
        )
        return [records[0].values["name"] for records in found]

    assert asyncio.run(main()) == [p.name for p in people]
    assert threads == [threading.current_thread().name] * 4  # all on the loop's thread
    assert vault.store.event_count() == before + 4
    assert vault._loop_writer.batches == batches + 1  # no read waited for another's commit
    vault.close()
