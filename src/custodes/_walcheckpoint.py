"""Keeping an SQLite WAL bounded without checkpoints on the serving thread.

SQLite copies the WAL back into the database (a *checkpoint*) in the connection that commits,
once the WAL holds ``wal_autocheckpoint`` pages: on a server that commits on its event loop,
every request in flight waits for the copy and its syncs (10-17 ms at SQLite's 1,000 pages, a
few times a second under load: the bulk of the reads' p99). A checkpoint on another connection
copies without blocking commits, but the WAL only starts over when a commit begins and finds
every frame already copied, which a stream of commits never lets happen: the WAL would grow
until the serving connection's own checkpoint ran after all.

:class:`WalCheckpointer` runs passive checkpoints on a connection of its own, in a thread (the
copying and syncing release the interpreter lock). Once the WAL holds ``pages`` frames and at
most ``slack`` remain uncopied after a pass, it asks the committer to *hold* its next commit
(``hold``: a context manager that returns once no commit is under way and keeps the next one
waiting), copies the rest, and lets go: the next commit finds everything copied and starts the
WAL over. The hold lasts one short pass (a few hundred frames), not a full checkpoint. Commits
that are not held (another path's) only make that round end without a restart; the serving
connection keeps its own auto-checkpoint at a higher cap as the bound of last resort.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager

__all__ = ["WalCheckpointer"]

_log = logging.getLogger(__name__)


class WalCheckpointer:
    """A thread that checkpoints ``connection``'s database every ``interval`` seconds and starts
    the WAL over, holding commits through ``hold`` only for the last short pass.

    ``connection`` is the checkpointer's own (its ``synchronous`` setting decides the syncs);
    ``hold()`` yields True if commits are held, False if they could not be (then the WAL is not
    started over this round).
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        hold: Callable[[], AbstractContextManager[bool]],
        *,
        pages: int = 1000,
        slack: int = 400,
        interval: float = 0.02,
    ) -> None:
        if pages < 1 or slack < 0 or interval <= 0:
            raise ValueError("pages must be positive, slack not negative, interval positive")
        self._conn = connection
        self._hold = hold
        self._pages = pages
        self._slack = slack
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="custodes-wal", daemon=True)
        self.passes = 0  # checkpoint passes so far (tests and diagnostics)
        self.restarts = 0  # rounds that held commits and copied the WAL to its end

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (after its current pass) and close its connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.round()
            except sqlite3.Error:
                # The serving connection's own checkpoint still bounds the WAL.
                _log.exception("background WAL checkpoint failed; will retry")

    def round(self) -> None:
        """One pass; and if the WAL is long enough and nearly copied, the held last pass."""
        frames, copied = self._pass()
        if frames < self._pages or frames - copied > self._slack:
            return
        with self._hold() as held:
            if held:
                frames, copied = self._pass()
                self.restarts += frames == copied

    def _pass(self) -> tuple[int, int]:
        """A passive checkpoint: (frames in the WAL, frames copied to the database)."""
        _busy, frames, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.passes += 1
        return int(frames), int(copied)
