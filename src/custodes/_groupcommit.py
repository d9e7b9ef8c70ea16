"""Group commit: concurrent callers share one durable write instead of queueing for their own.

The first caller to find no write in progress becomes the leader: it takes every submission
queued so far (its own included), writes them in one go, hands each caller its own result (or
the write's error), and wakes them. Callers that arrived during that write form the next batch.
A lone caller pays one uncontended lock; under concurrency the commit cost is shared.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")
R = TypeVar("R")


class _Ticket(Generic[T, R]):
    __slots__ = ("done", "error", "item", "value")

    def __init__(self, item: T) -> None:
        self.item = item
        self.done = False
        self.value: R | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """Batch concurrent :meth:`submit` calls into calls of ``write(items) -> results``.

    ``write`` gets the items in submission order and must return one result per item, in the
    same order, or raise: then every caller of that batch gets the exception.
    """

    def __init__(self, write: Callable[[list[T]], Sequence[R]]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._queue: list[_Ticket[T, R]] = []
        self._leading = False
        self.batches = 0  # number of writes so far (for tests and diagnostics)

    def submit(self, item: T) -> R:
        """Write ``item`` (with whatever else is queued) and return its result once durable.

        Raises:
            Exception: whatever ``write`` raised for the batch that held ``item``.
        """
        ticket: _Ticket[T, R] = _Ticket(item)
        with self._cond:
            self._queue.append(ticket)
            while self._leading and not ticket.done:
                self._cond.wait()
            if ticket.done:
                return self._outcome(ticket)
            self._leading = True
            batch, self._queue = self._queue, []
        results: Sequence[R] = ()
        error: BaseException | None = None
        try:
            results = self._write([t.item for t in batch])
            if len(results) != len(batch):
                error = RuntimeError("group commit: write returned the wrong number of results")
        except BaseException as exc:
            error = exc
        with self._cond:
            for i, t in enumerate(batch):
                if error is None:
                    t.value = results[i]
                t.error = error
                t.done = True
            self.batches += 1
            self._leading = False
            self._cond.notify_all()
        return self._outcome(ticket)

    @staticmethod
    def _outcome(ticket: _Ticket[T, R]) -> R:
        if ticket.error is not None:
            raise ticket.error
        return ticket.value  # type: ignore[return-value]
