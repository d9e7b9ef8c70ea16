"""Loop commit: the reads an event loop prepares in two turns share one transaction.

:class:`~custodes._groupcommit.GroupCommit` batches callers that wait in *threads*. A server
that runs embedded-store reads on its event loop (no thread hop: it costs as much as the read)
has no such callers: each read would commit alone, paying a transaction and a WAL append of
its own (about five pages) while the other connections' requests wait behind it. Here a read
that has prepared its event awaits :meth:`LoopCommit.submit`; the first submission schedules
one flush for the end of the loop's *next* turn (``call_soon`` twice), so every request that
became ready in that turn or the next — those that arrived while the previous flush was
writing, and those whose bytes the loop reads in between — adds its events to the same write.
Waiting the one turn more raised the reads per commit of a loaded server from 3.8-4.3 to
6.2-7.4 and cut its CPU per read by 4-7 % (docs/benchmarks.md, HTTP, 2026-12-07, second evening).
Each caller resumes only once the write holding its events has returned (or raised): nothing is
answered before its trace is durable.

One loop commit serves any number of event loops (one queue per loop); ``write`` must be safe
to call from each of their threads (the vault's ``write`` goes through its GroupCommit).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["LoopCommit"]

T = TypeVar("T")
R = TypeVar("R")


class LoopCommit(Generic[T, R]):
    """Batch the :meth:`submit` calls of two event-loop turns into one ``write(items)``.

    ``write`` gets the items in submission order and returns one result per item, in order, or
    raises: every submitter of that batch then gets the exception.
    """

    def __init__(self, write: Callable[[list[T]], Sequence[R]]) -> None:
        self._write = write
        self._queues: dict[asyncio.AbstractEventLoop, list[tuple[T, asyncio.Future[R]]]] = {}
        self.batches = 0  # number of writes so far (for tests and diagnostics)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop that submitted last
        self._held: asyncio.AbstractEventLoop | None = None  # the loop whose writes wait

    @contextmanager
    def held(self, timeout: float = 0.5) -> Iterator[bool]:
        """From another thread: keep the last submitting loop's commits waiting while inside.

        Yields True once that loop has no write under way and will start none until the block
        ends (submissions queue meanwhile and are written right after it), False if there is no
        such loop or it did not answer within ``timeout`` seconds; commits are released at the
        end either way.
        """
        loop = self._loop
        acknowledged = threading.Event()

        def hold() -> None:
            self._held = loop
            acknowledged.set()

        try:
            if loop is None:
                raise RuntimeError("no loop has submitted")
            loop.call_soon_threadsafe(hold)
        except RuntimeError:  # no loop yet, or it was closed
            yield False
            return
        try:
            yield acknowledged.wait(timeout)
        finally:
            try:
                # After hold() in the loop's queue, so even a late hold is undone.
                loop.call_soon_threadsafe(self._release, loop)
            except RuntimeError:  # pragma: no cover - the loop closed meanwhile
                self._held = None

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        """On ``loop``: end its hold and write what queued meanwhile."""
        if self._held is loop:
            self._held = None
        if loop in self._queues:
            loop.call_soon(self._flush, loop)

    async def submit(self, item: T) -> R:
        """Write ``item`` with the other submissions of this loop turn and the next; return its
        result.

        The write happens even if the awaiting task is cancelled meanwhile.

        Raises:
            Exception: whatever ``write`` raised for the batch that held ``item``.
        """
        loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = []
            loop.call_soon(self._next_turn, loop)
        queue.append((item, future))
        return await future

    def _next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run on the turn after the first submission: flush at the end of this one."""
        loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._held is loop or loop not in self._queues:
            return  # held: written on release (or already written by an earlier flush)
        batch = self._queues.pop(loop)
        try:
            results = self._write([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError("loop commit: write returned the wrong number of results")
        except BaseException as exc:  # every waiter gets the write's error, whatever it is
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self.batches += 1
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
