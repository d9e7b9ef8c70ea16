"""Streaming detection inside the vault: ledger events are scored as they are committed.

A :class:`Monitor` owns one :class:`~custodes.detect.Pipeline`. The vault hands it each batch of
committed events (``submit``: one queue put, the only cost on the read path); a daemon thread
converts them to detection events with the export's :func:`~custodes.ledger.export.event_line`
(so streaming sees exactly what ``custodes ledger export`` would write, ``index`` = ledger seq)
and observes them. An alert is appended to ``<home>/detect/alerts.jsonl`` under an exclusive
``flock`` and kept in memory. Detection never raises into the vault: a failure is logged.

At start the thread reads the ledger's last :data:`HISTORY_DAYS` days, learns the
:class:`~custodes.detect.Baseline` from them and feeds them (so slow detectors keep their state
across restarts); alerts found there that the file does not hold yet are written as catch-up
(``"live": false``). Whenever live events enter a new UTC day the baseline is re-learned from the
retained window in a helper thread and swapped in, so scoring never pauses for it.

Who is who comes from the vault's accessors, the annotations ``<home>/detect/subjects.jsonl`` and
``<home>/detect/accessors.jsonl`` (interchange format; canaries, protected persons, employers,
households as keyed tokens) if present, the canaries planted with ``custodes canary plant``
(``<home>/forensics/canaries.jsonl``, re-read whenever it changes, so a canary planted while
the monitor runs alerts from its first touch), and the cases the ledger names, re-read from
the store whenever a case event streams past.
"""

from __future__ import annotations

import fcntl
import json
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from custodes.detect._base import Detector
from custodes.detect._context import DAY, Baseline, Context, Directory
from custodes.detect._model import (
    READ_ACTIONS,
    AccessorInfo,
    Alert,
    CaseInfo,
    Event,
    SubjectInfo,
    _accessor,
    _case,
    _event,
    read_accessors,
    read_subjects,
)
from custodes.detect._pipeline import Pipeline, default_detectors
from custodes.errors import InputError
from custodes.ledger.export import accessor_line, case_line, event_line
from custodes.model import AccessEvent, Action

if TYPE_CHECKING:
    from custodes.vault import Vault

__all__ = ["ALERTS_FILE", "HISTORY_DAYS", "PAUSE", "Monitor", "read_alerts"]

ALERTS_FILE = "alerts.jsonl"
"""The alerts of a vault, one JSON object a line, under ``<home>/detect/``."""

HISTORY_DAYS = 30
"""How many days of the ledger the baseline is learned from (at start and when re-learned)."""

PAUSE = 0.1
"""Seconds the detection thread lets commits accumulate after a batch (the latency it adds)."""

_CASE_ACTIONS = frozenset({Action.CASE_OPEN, Action.CASE_APPROVE, Action.CASE_CLOSE})
_STOP = object()
_log = logging.getLogger(__name__)


class Monitor:
    """Misuse detection over a vault's ledger as it grows, in a background daemon thread.

    Build it with the vault it watches (:meth:`custodes.vault.Vault.open` does, when
    ``detect.stream`` is on); ``detectors`` makes the detector set (default: every detector).
    """

    def __init__(
        self,
        vault: Vault,
        *,
        detectors: Callable[[], Sequence[Detector]] | None = None,
        pause: float = PAUSE,
    ) -> None:
        self._vault = vault
        self._detectors = detectors or default_detectors
        self._pause = pause
        self._wake = threading.Event()
        self.folder = vault.settings.home / "detect"
        self.path = self.folder / ALERTS_FILE
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._alerts: list[Alert] = []
        self.caught_up = 0
        """How many of :attr:`alerts` were found in history at start (they come first)."""
        self._pipeline: Pipeline | None = None
        self._window: deque[Event] = deque()
        self._learned_day = 0
        self._fresh: Baseline | None = None
        self._learning: threading.Thread | None = None
        # Events committed from here on are queued; the ledger below this size is history.
        self._start = vault.store.event_count()
        self._canary_stamp: tuple[int, int] | None = None
        self._thread = threading.Thread(target=self._run, name="custodes-detect", daemon=True)
        self._thread.start()

    # -- the vault's side: never blocks, never raises ------------------------------------------

    def submit(self, seqs: Sequence[int], events: Sequence[AccessEvent]) -> None:
        """Queue committed events (``seqs[i]`` is the ledger seq of ``events[i]``)."""
        self._queue.put((seqs, events))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is scored; False if ``timeout`` ran out."""
        done = threading.Event()
        self._queue.put(done)
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Score what is queued, then stop the thread (waiting at most ``timeout`` seconds)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._wake.set()
            self._thread.join(timeout)

    @property
    def alerts(self) -> list[Alert]:
        """The alerts this monitor raised (live and catch-up), in the order raised."""
        return list(self._alerts)

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._warm_up()
        except Exception:
            _log.exception("streaming detection could not start; new events will not be scored")
        while True:
            item = self._queue.get()  # idle: wait for the next commit
            while True:
                if item is _STOP:
                    return
                if isinstance(item, threading.Event):
                    item.set()
                elif self._pipeline is not None and isinstance(item, tuple):
                    self._score(*item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            # Busy: let commits pile up for a moment instead of being woken by each one; a
            # thread woken per read contends for the GIL at every I/O of the reader.
            self._wake.wait(self._pause)
            self._wake.clear()

    def _warm_up(self) -> None:
        vault = self._vault
        directory = Directory(self._accessors(), self._subjects(), {})
        directory.add_canaries(self._planted() or ())
        history: list[Event] = []
        cases: dict[str, None] = {}
        for seq, stored in vault.store.events(0, self._start):
            if stored.case is not None:
                cases[stored.case] = None
            if stored.action != Action.PUT:  # writes are nothing a detector weighs
                history.append(_event(event_line(stored), seq))
        for case_id in cases:
            self._refresh_case(directory, case_id)
        if history:
            cutoff = history[-1].ts - HISTORY_DAYS * DAY
            history = [e for e in history if e.ts >= cutoff]
            self._learned_day = int(history[-1].ts // DAY)
        self._window.extend(e for e in history if e.action in READ_ACTIONS)
        context = Context(directory, Baseline.learn(history, directory))
        pipeline = Pipeline(context, self._detectors())
        raised = [alert for e in history if (alert := _observe(pipeline, e)) is not None]
        self._catch_up(raised)
        self.caught_up = len(self._alerts)
        self._pipeline = pipeline

    def _catch_up(self, raised: list[Alert]) -> None:
        """Write the alerts found in history about accessors the file does not name yet."""
        try:
            known = {str(a.get("accessor")) for a in read_alerts(self.folder.parent)}
        except InputError:
            _log.exception("%s is damaged; catch-up alerts are appended anyway", self.path)
            known = set()
        for alert in raised:
            if alert.accessor not in known:
                self._write(alert, live=False)

    def _accessors(self) -> dict[str, AccessorInfo]:
        found = {
            a.accessor: _accessor(accessor_line(a), i)
            for i, a in enumerate(self._vault.store.accessors())
        }
        annotated = self.folder / "accessors.jsonl"
        if annotated.exists():
            found.update(read_accessors(annotated))
        return found

    def _subjects(self) -> dict[str, SubjectInfo]:
        annotated = self.folder / "subjects.jsonl"
        return dict(read_subjects(annotated)) if annotated.exists() else {}

    def _planted(self) -> set[str] | None:
        """The planted canaries' pseudonyms if the registry changed since last read, else None.

        A registry that cannot be read is logged and tried again when it changes.
        """
        from custodes.forensics._registry import CANARIES_FILE, folder, planted_canaries

        home = self._vault.settings.home
        try:
            info = (folder(home) / CANARIES_FILE).stat()
        except OSError:
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        if stamp == self._canary_stamp:
            return None
        self._canary_stamp = stamp
        try:
            return {c.pseudonym for c in planted_canaries(home)}
        except InputError:
            _log.exception("the canary registry of %s cannot be read; canaries not watched", home)
            return None

    def _refresh_case(self, directory: Directory, case_id: str) -> None:
        case = self._vault.store.case(case_id)
        if case is None:  # a refused open names a case that was never stored
            return
        info: CaseInfo = _case(case_line(case, self._vault.case_subjects(case)), 0)
        # Copy on write: a re-learning thread may be reading the old dict.
        directory.cases = {**directory.cases, case_id: info}

    def _score(self, seqs: Sequence[int], events: Sequence[AccessEvent]) -> None:
        pipeline = self._pipeline
        assert pipeline is not None  # noqa: S101 - _run checks it
        planted = self._planted()  # one stat per batch: canaries planted while we run
        if planted:
            pipeline.watch_canaries(planted)
        for seq, stored in zip(seqs, events, strict=True):
            if seq < self._start or stored.action == Action.PUT:
                continue  # history (already fed), or a write: nothing a detector weighs
            try:
                self._observe(pipeline, seq, stored)
            except Exception:
                _log.exception("streaming detection failed on ledger entry %d; skipped", seq)

    def _observe(self, pipeline: Pipeline, seq: int, stored: AccessEvent) -> None:
        directory = pipeline.context.directory
        if stored.action in _CASE_ACTIONS and stored.case is not None:
            self._refresh_case(directory, stored.case)
        event = _event(event_line(stored), seq)
        if event.accessor not in directory.accessors:  # registered after the monitor started
            info = AccessorInfo(event.accessor, event.org, event.role, None, None, None, None)
            directory.accessors = {**directory.accessors, event.accessor: info}
        if event.action not in READ_ACTIONS:
            pipeline.observe(event)
            return
        self._relearn(pipeline, event)
        self._window.append(event)
        alert = pipeline.observe(event)
        if alert is not None:
            self._write(alert, live=True)

    def _relearn(self, pipeline: Pipeline, event: Event) -> None:
        """Swap in a baseline learned meanwhile; start learning one when a new day begins."""
        if self._fresh is not None:
            pipeline.context.baseline, self._fresh = self._fresh, None
        day = int(event.ts // DAY)
        busy = self._learning is not None and self._learning.is_alive()
        if day <= self._learned_day or busy:
            return
        self._learned_day = day
        cutoff = event.ts - HISTORY_DAYS * DAY
        while self._window and self._window[0].ts < cutoff:
            self._window.popleft()
        events, directory = list(self._window), pipeline.context.directory
        self._learning = threading.Thread(
            target=self._learn, args=(events, directory), name="custodes-relearn", daemon=True
        )
        self._learning.start()

    def _learn(self, events: list[Event], directory: Directory) -> None:
        try:
            self._fresh = Baseline.learn(events, directory)
        except Exception:
            _log.exception("re-learning the detection baseline failed; the old one stays")

    def _write(self, alert: Alert, *, live: bool) -> None:
        line = alert.as_dict()
        line["live"] = live
        line["written_at"] = datetime.now(UTC).isoformat()
        self._alerts.append(alert)
        try:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)  # other vault processes append too
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                handle.flush()
        except OSError:
            _log.exception("could not write an alert about %s to %s", alert.accessor, self.path)


def _observe(pipeline: Pipeline, event: Event) -> Alert | None:
    try:
        return pipeline.observe(event)
    except Exception:
        _log.exception("streaming detection failed on ledger entry %d; skipped", event.index)
        return None


def read_alerts(home: Path, *, missing_ok: bool = True) -> list[dict[str, Any]]:
    """Read the alerts of the vault at ``home`` (``<home>/detect/alerts.jsonl``), in file order.

    Raises:
        InputError: the file is unreadable or a line is not a JSON object (naming the line), or
            it is missing and not ``missing_ok``.
    """
    path = home / "detect" / ALERTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return []
        raise InputError(f"{path}: no alerts file (is detect.stream on?)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from exc
    return list(_parse(text.splitlines(), path))


def _parse(lines: Iterable[str], path: Path) -> Iterable[dict[str, Any]]:
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path.name} line {number}: not valid JSON") from None
        if not isinstance(obj, dict):
            raise InputError(f"{path.name} line {number}: not a JSON object")
        yield obj
