"""Bulk loading on every core: batches prepared in parallel worker processes, committed here.

A vault's write path is mostly Python (validation, HMACs, AES-GCM sealing), so one process uses
one core. :func:`load` spreads the batches of a bulk load over worker processes, each with its
own :class:`~custodes.vault.Vault` on the same home, which prepare them at the same time
(``Vault.prepare_puts``: validated and decided whole, sealed under the subjects' keys, encoded
with one event per record); the calling process commits each prepared batch as it arrives
(``Vault.commit_puts``), in one transaction, or not at all. One connection does every commit,
so its page cache stays warm (a SQLite connection's cache is dropped whenever another one
commits) and no worker ever waits on the write lock. The ledger's order is the order in which
batches committed, which need not be the order they were given in.

What stays as in one process: the policy decides every record (a denial is recorded and fails
its batch); a subject met by two batches at once gets one data key (the first stored wins, the
other batch uses it); checkpoints are signed when due.

On the first failing batch no further batch is started; of those already being prepared, the
ones before it in the input are committed and the ones after it are not, and
:class:`BulkLoadError` names the failed batch and every batch that committed.

Workers are *spawned* (a fresh interpreter, never a fork of a process holding connections and
threads), so, as with any spawning use of :mod:`multiprocessing`, a script that calls
:func:`load` with more than one worker must do so under ``if __name__ == "__main__":``.

The commits are the load's one serial step: workers run at a lower priority (nice 5) and are
given new batches while this process commits, so that it seldom waits for the CPU and they seldom
wait for it.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.util import Finalize
from typing import Any

from custodes.config import Settings
from custodes.errors import CustodesError, InputError
from custodes.model import Access, Action
from custodes.policy import Policy
from custodes.vault import PreparedPuts, Vault

__all__ = ["Batch", "BulkLoadError", "LoadReport", "default_workers", "load"]

Items = Sequence[tuple[str, Mapping[str, object]]]
#: One batch: a collection and its (subject ID number, field values) items.
Batch = tuple[str, Items]
#: What a worker sends back: the prepared batch, or the failure's class name and diagnostics.
_Outcome = PreparedPuts | tuple[str, str]

_MAX_WORKERS = 32
_QUEUED = 2  # batches per worker being prepared or waiting for it
_TAKEN = 3  # batches per worker taken from the input and not yet committed
_NICE = 5  # workers yield the CPU to the committing process, the load's one serial step
_DIED = (
    "a worker process stopped unexpectedly (killed, out of memory, or it could not start: a "
    "script that loads with workers must call load() under 'if __name__ == \"__main__\":'); "
    "this batch was not committed (workers only prepare batches)"
)


class BulkLoadError(CustodesError):
    """A batch of a bulk load failed; it wrote nothing, and no later batch was started.

    ``failed`` is the failed batch's position in the input (from 0), ``cause`` the class name
    of its error (``InputError``, ``AccessDenied``, ``AuditFailure``, ...), ``committed`` the
    positions of the batches that did commit (those whose commit came before the failure).
    """

    def __init__(
        self, failed: int, collection: str, cause: str, reason: str, committed: Sequence[int]
    ) -> None:
        super().__init__(f"batch {failed} ({collection}) failed: {reason}")
        self.failed = failed
        self.collection = collection
        self.cause = cause
        self.reason = reason
        self.committed = tuple(sorted(committed))

    def diagnostics(self) -> str:
        done = len(self.committed)
        return (
            f"batch {self.failed} ({self.collection}) was refused and wrote nothing: "
            f"{self.reason}; {done} batch{'' if done == 1 else 'es'} had committed "
            "and no later batch was started"
        )


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What a finished load wrote: batches and records committed, worker processes used."""

    batches: int
    records: int
    workers: int


def default_workers() -> int:
    """The number of cores this process may run on (at most 32)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS))


def load(
    settings: Settings,
    access: Access,
    batches: Iterable[Batch],
    *,
    workers: int | None = None,
    on_batch: Callable[[int, list[str]], object] | None = None,
) -> LoadReport:
    """Write ``batches`` through ``Vault.put_many`` in ``workers`` processes (default: one per
    core); ``on_batch(position, record_ids)`` is called in this process as each one commits.

    With one worker (or a single batch) the batches are written in this process, in order;
    a sized ``batches`` gets no more workers than it has batches. So is a load whose writes
    the policy decides by more than names (the access names a case or asks break-glass, or a
    grant of its role and purpose for writing has hours or a daily limit): workers deciding at
    once would each count the day's subjects without the others'.

    Raises:
        InputError: ``workers`` is not a positive number.
        BulkLoadError: a batch was refused or could not be committed (see the class).
        CustodesError: the vault could not be opened (``ConfigError``, ``StoreError``).
    """
    count = default_workers() if workers is None else workers
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _MAX_WORKERS:
        raise InputError(f"workers must be a whole number from 1 to {_MAX_WORKERS}, not {count!r}")
    if isinstance(batches, Sized):  # no more workers than batches
        count = min(count, max(1, len(batches)))
    with Vault.open(settings) as vault:  # a bad home fails here, clearly, not in every worker
        if count == 1 or not _decided_by_names(vault.policy, access):
            return _load_here(vault, access, batches, on_batch)
        return _load_parallel(vault, access, batches, count, on_batch)


def _decided_by_names(policy: Policy, access: Access) -> bool:
    """Whether every write of ``access`` is decided the same whatever the subject, the moment
    and the accessor's history (then batches may be decided in parallel)."""
    if access.case is not None or access.break_glass:
        return False
    return not any(
        grant.role == access.principal.role
        and grant.purpose == access.purpose
        and Action.PUT in grant.actions
        and (grant.max_subjects_per_day > 0 or grant.hours is not None)
        for grant in policy.grants
    )


def _load_here(
    vault: Vault,
    access: Access,
    batches: Iterable[Batch],
    on_batch: Callable[[int, list[str]], object] | None,
) -> LoadReport:
    done: list[int] = []
    records = 0
    with vault.store.bulk_writes():
        for position, batch in enumerate(batches):
            collection, items = _parts(position, batch, done)
            try:
                ids = vault.put_many(access, collection, items)
            except CustodesError as exc:
                raise BulkLoadError(
                    position, collection, type(exc).__name__, exc.diagnostics(), done
                ) from exc
            done.append(position)
            records += len(ids)
            if on_batch is not None:
                on_batch(position, ids)
    return LoadReport(batches=len(done), records=records, workers=1)


def _load_parallel(
    vault: Vault,
    access: Access,
    batches: Iterable[Batch],
    workers: int,
    on_batch: Callable[[int, list[str]], object] | None,
) -> LoadReport:
    # spawn, not fork: a forked child would inherit this process's open connections and threads.
    context = multiprocessing.get_context("spawn")
    running: dict[Future[_Outcome], tuple[int, str]] = {}
    ready: deque[tuple[int, str, PreparedPuts]] = deque()  # prepared, in order of arrival
    done: list[int] = []
    records = 0
    failure: BulkLoadError | None = None
    source = iter(enumerate(batches))

    def fail(position: int, collection: str, cause: str, reason: str) -> None:
        nonlocal failure
        if failure is None or position < failure.failed:
            failure = BulkLoadError(position, collection, cause, reason, ())

    with (
        vault.store.bulk_writes(),
        ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start_worker, initargs=(vault.settings,)
        ) as pool,
    ):
        while True:
            # Workers are kept fed while this process commits: per worker one batch being
            # prepared and one waiting its turn, and at most one more prepared for the commit.
            while (
                failure is None
                and len(running) < _QUEUED * workers
                and len(running) + len(ready) < _TAKEN * workers
            ):
                nxt = next(source, None)
                if nxt is None:
                    break
                position, batch = nxt
                try:
                    collection, items = _parts(position, batch, ())
                except BulkLoadError as exc:
                    failure = exc  # every batch before it was submitted: none failed earlier
                    break
                try:
                    future = pool.submit(_prepare_batch, access, collection, items)
                except BrokenProcessPool:  # a worker died before its future told us
                    fail(position, collection, "BrokenProcessPool", _DIED)
                    break
                running[future] = (position, collection)
            if not running and not ready:
                break
            # Block only when there is nothing to commit.
            finished, _ = wait(running, timeout=0 if ready else None, return_when=FIRST_COMPLETED)
            for future in finished:
                position, collection = running.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    outcome = ("BrokenProcessPool", _DIED)
                if isinstance(outcome, tuple):  # known at once: no later batch commits after
                    fail(position, collection, *outcome)
                else:
                    ready.append((position, collection, outcome))
            if not ready:
                continue
            position, collection, prepared = ready.popleft()
            # A batch after a failed one is not committed; one before it still is, so that
            # every batch before the failed one has committed (or failed itself).
            if failure is not None and position > failure.failed:
                continue
            try:  # here, in order of arrival: one connection, its page cache warm
                ids = vault.commit_puts(prepared)
            except CustodesError as exc:
                fail(position, collection, type(exc).__name__, exc.diagnostics())
                continue
            done.append(position)
            records += len(ids)
            if on_batch is not None:
                on_batch(position, ids)
    if failure is not None:
        failure.committed = tuple(sorted(done))
        raise failure
    return LoadReport(batches=len(done), records=records, workers=workers)


def _parts(position: int, batch: object, committed: Sequence[int]) -> tuple[str, list[Any]]:
    """Unpack ``(collection, items)``, or fail the load at this batch.

    Raises:
        BulkLoadError: the batch is not a pair of a collection name and a sequence of items.
    """
    if isinstance(batch, tuple | list) and len(batch) == 2:
        collection, items = batch
        if isinstance(collection, str) and not isinstance(items, str | bytes):
            try:
                return collection, list(items)
            except TypeError:
                pass
    shape = "a (collection name, items) pair"
    raise BulkLoadError(position, "?", "InputError", f"it is not {shape}", committed)


# -- in the worker processes --------------------------------------------------------------------

_vault: Vault | None = None


def _start_worker(settings: Settings) -> None:
    global _vault  # one vault per worker process, opened once
    os.nice(_NICE)
    _vault = Vault.open(settings)
    Finalize(_vault, _vault.close, exitpriority=10)
    # Runs after the vault is closed and multiprocessing's own exit work is done: tearing
    # down the interpreter (freeing every cached key and subject) would only delay the load.
    atexit.register(_exit_now)


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(Exception):
            stream.flush()
    os._exit(0)


def _prepare_batch(access: Access, collection: str, items: Items) -> _Outcome:
    """Prepare one batch for the loading process to commit; a refusal comes back as data
    (custodes errors need not pickle)."""
    if _vault is None:
        raise RuntimeError("the worker's vault is opened by its initializer")
    try:
        return _vault.prepare_puts(access, collection, items)
    except CustodesError as exc:
        return type(exc).__name__, exc.diagnostics()
