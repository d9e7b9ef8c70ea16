"""Signing due ledger checkpoints in a thread, off a server's event loop.

A checkpoint is signed after the commit that makes it due (every ``checkpoint_every`` entries
or ``checkpoint_seconds``): the log's root and a consistency proof are computed, the signed note
is appended to the history and the latest checkpoint file replaced, each with an ``fsync``
(1-25 ms on the reference machine). Done in the committing call, on a server whose reads commit
on its event loop, that stalled every request in flight about once a second under load: those
stalls were the reads' 99th percentile (docs/benchmarks.md, HTTP, 2026-12-07, second evening).
The events are durable before the checkpoint is signed either way; signing a moment later, in
a thread of its own, changes only when the checkpoint appears, not what it covers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["SignThread"]

_log = logging.getLogger(__name__)


class SignThread:
    """Calls ``sign(size)`` in a thread of its own whenever :meth:`due` says the log has grown
    to ``size`` (started on first use; several calls while one signs make one more call, with
    the largest size). :meth:`close` signs what is still due, then stops the thread."""

    def __init__(self, sign: Callable[[int], None]) -> None:
        self._sign = sign
        self._size = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self.signed = 0  # calls of sign so far (tests and diagnostics)

    def due(self, size: int) -> None:
        """A checkpoint is due at ``size`` entries: sign it soon, in the thread."""
        with self._lock:
            if self._closing:
                return
            self._size = max(self._size, size)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="custodes-checkpoints", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Sign what is due, then stop the thread (a no-op if it never started)."""
        with self._lock:
            self._closing = True
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                size, self._size, closing = self._size, 0, self._closing
            if size:
                try:
                    self._sign(size)
                except Exception:  # the next due checkpoint retries; never lose the thread
                    _log.exception("could not sign a checkpoint of the access ledger")
                self.signed += 1
            if closing:
                return
