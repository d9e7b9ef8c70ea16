"""The one choke point: authorize → record the access event → decrypt → return.

Every record operation goes through :class:`Vault`. Each call carries an
:class:`~custodes.model.Access` (who, which purpose, which case). The policy decides; the
decision, allowed or denied, becomes an access event; for reads the event is committed before any
plaintext leaves this module, and if it cannot be committed the caller gets
:class:`~custodes.errors.AuditFailure` and no data (fail closed).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Concatenate, NoReturn, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

from custodes._groupcommit import GroupCommit
from custodes._loopcommit import LoopCommit
from custodes._signthread import SignThread
from custodes._walcheckpoint import WalCheckpointer
from custodes.clock import Clock, LocalDays, system_clock
from custodes.config import Settings
from custodes.crypto import BlindIndex, Envelope, LocalKeyFile, SubjectKey, SubjectKeyStore
from custodes.errors import (
    AccessDenied,
    AuditFailure,
    CryptoError,
    CustodesError,
    InputError,
    IntegrityError,
    NotFound,
    StoreError,
)
from custodes.ledger import CheckpointLog, Ledger
from custodes.model import (
    RECORD_ID_RANDOM_HEX,
    Access,
    AccessEvent,
    Accessor,
    Action,
    Case,
    Decision,
    IndexEntry,
    Principal,
    StoredRecord,
    record_id_head,
)
from custodes.policy import Policy, add_subjects, approve_case, close_case, new_case_id, open_case
from custodes.schema import Collection, Schema
from custodes.store import (
    EncodedEvents,
    EncodedRecords,
    SQLiteStore,
    Store,
    encode_events,
    encode_like,
    encode_records,
    open_store,
)

if TYPE_CHECKING:
    from custodes.detect import Monitor

__all__ = ["MAX_ALERT_NOTE", "PreparedPuts", "Record", "Vault"]

# Characters that make a lookup a pattern rather than a value. Exact match only: a vault that
# answers prefix or wildcard queries is a vault that can be enumerated.
_PATTERN_CHARS = frozenset("*%?")
# An acknowledgement names its alert by id (a hex digest, see custodes.detect.AlertBook).
_ALERT_ID = re.compile(r"[0-9a-f]{8,64}")
# Subjects whose ref and pseudonym (two HMACs) are remembered; a bulk load meets each subject
# in several collections' batches. The ID numbers kept are those the ID-number memo keeps.
_SUBJECTS_MAX = 65_536
MAX_ALERT_NOTE = 2000  # characters of an auditor's note on an acknowledged alert
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Record:
    """A decrypted record as returned to an authorized caller (only the permitted fields)."""

    record_id: str
    collection: str
    created_at: datetime
    values: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "record_id": self.record_id,
            "collection": self.collection,
            "created_at": self.created_at.isoformat(),
            "values": dict(self.values),
        }


@dataclass(frozen=True, slots=True)
class PreparedPuts:
    """A batch of writes from :meth:`Vault.prepare_puts`: validated, decided, sealed under its
    subjects' keys and encoded, with one event per record; only the commit is left. It holds
    ciphertext, keyed tokens and events (which name subjects by pseudonym), never plaintext,
    so it may cross a process boundary on the same machine (``custodes.bulk``)."""

    ids: list[str]
    records: EncodedRecords
    events: EncodedEvents


@dataclass(frozen=True, slots=True)
class _Subject:
    """A subject as the vault addresses it: its database key and its published pseudonym."""

    ref: bytes
    pseudonym: str


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _one_read_at_a_time(
    method: Callable[Concatenate[Vault, Access, _P], _R],
) -> Callable[Concatenate[Vault, Access, _P], _R]:
    """Run one accessor's reads one after another (within this process).

    A daily subject limit is checked before the read's event is committed and counted after:
    two concurrent reads by one accessor at the limit would otherwise both pass.
    """

    @functools.wraps(method)
    def serialized(vault: Vault, access: Access, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with vault._reader_lock(access.principal.accessor):
            return method(vault, access, *args, **kwargs)

    return serialized


class Vault:
    """Personal records behind purpose-bound, ledgered access.

    Build one with :meth:`open` (from a vault home) or the keyword-only constructor (tests,
    embedding). Methods raise :class:`~custodes.errors.InputError` for bad input (nothing is
    recorded or changed), :class:`~custodes.errors.AccessDenied` when policy refuses (the refusal
    is recorded), :class:`~custodes.errors.AuditFailure` when the access event cannot be committed.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        schema: Schema,
        policy: Policy,
        store: Store,
        envelope: Envelope,
        index: BlindIndex,
        clock: Clock = system_clock,
        checkpoints: CheckpointLog | None = None,
        case_ids: Callable[[], str] = new_case_id,
    ) -> None:
        self.settings = settings
        self.schema = schema
        self.policy = policy
        self.store = store
        self._envelope = envelope
        self._index = index
        self._clock = clock
        self._checkpoints = checkpoints
        self._case_ids = case_ids
        # Event-only commits (reads, finds, denials) from concurrent callers share one
        # transaction; each caller still returns only once its own event is durable.
        self._events_writer: GroupCommit[Sequence[AccessEvent], list[int]] = GroupCommit(
            self._write_events
        )
        # Reads run on an event loop (get_on_loop) share one commit per two loop turns.
        self._loop_writer: LoopCommit[Sequence[AccessEvent], list[int]] = LoopCommit(
            self._commit_loop_batches
        )
        # Their checkpoints are signed in a thread: the signature's fsyncs would stall the loop.
        self._signer = SignThread(self._maybe_checkpoint)
        self._wal: WalCheckpointer | None = None
        self._quota: dict[str, tuple[datetime, set[str]]] = {}
        self._subjects: dict[str, _Subject] = {}  # normalized ID number -> subject
        self._readers: dict[str, threading.Lock] = {}
        self._readers_lock = threading.Lock()
        self._days = LocalDays(ZoneInfo(policy.timezone))  # the policy's days (daily limits)
        self._monitor: Monitor | None = None

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        case_ids: Callable[[], str] = new_case_id,
        monitor: bool | Callable[[Vault], Monitor] | None = None,
    ) -> Vault:
        """Open the vault described by ``settings`` (keys, schema, policy, store).

        ``monitor`` turns streaming misuse detection on or off (default: the ``detect.stream``
        setting), or builds the :class:`~custodes.detect.Monitor` itself. Detection runs after
        each commit in a background thread and never fails or delays a call.

        Raises:
            ConfigError: a key file, schema or policy is missing or invalid.
            StoreError: the database cannot be opened.
        """
        schema = Schema.load(settings.schema_path)
        policy = Policy.load(settings.policy_path, schema=schema)
        root = LocalKeyFile.open(settings.root_key_path).root_keys(settings.tenant)
        checkpoints = CheckpointLog.open(settings)
        keystore = SubjectKeyStore(settings.keystore_path)
        store = open_store(settings.store)
        store.migrate()
        envelope = Envelope(
            tenant=settings.tenant, root_keys=root, keystore=keystore, cache_size=settings.key_cache
        )
        index = BlindIndex(
            tenant=settings.tenant, index_key=root.index_key, pseudonym_key=root.pseudonym_key
        )
        vault = cls(
            settings=settings,
            schema=schema,
            policy=policy,
            store=store,
            envelope=envelope,
            index=index,
            clock=clock,
            checkpoints=checkpoints,
            case_ids=case_ids,
        )
        streaming = settings.detect_stream if monitor is None else monitor
        if streaming is True:
            from custodes.detect import Monitor  # the detectors load only when streaming

            vault._monitor = Monitor(vault)
        elif streaming is not False:
            vault._monitor = streaming(vault)
        return vault

    @property
    def ledger(self) -> Ledger:
        """The verifiable access ledger over this vault's events (roots, proofs, verify)."""
        return Ledger(store=self.store)

    @property
    def monitor(self) -> Monitor | None:
        """The streaming misuse detector watching this vault's commits, if on."""
        return self._monitor

    def keep_wal_bounded(
        self, *, pages: int = 1000, cap: int = 20_000, interval: float = 0.02
    ) -> bool:
        """For a server reading on an event loop (:meth:`get_on_loop`) with SQLite: checkpoint
        the WAL in a background thread, starting it over once it holds ``pages`` pages while
        the loop's reads hold their commits for a short last pass
        (:class:`~custodes._walcheckpoint.WalCheckpointer`); the committing connection's own
        checkpoint moves to ``cap`` pages, the bound of last resort. Stopped by :meth:`close`.
        Returns False (and does nothing) for another store or if it already runs.

        Raises:
            ValueError: ``pages`` or ``interval`` not positive, or ``cap`` below ``pages``
                (nothing is started or changed).
            StoreError: the checkpointer's connection cannot be opened.
        """
        if not isinstance(self.store, SQLiteStore) or self._wal is not None:
            return False
        if cap < pages:
            raise ValueError("the last-resort cap must be at least the checkpointer's pages")
        connection = self.store.checkpoint_connection()
        try:
            wal = WalCheckpointer(
                connection, self._loop_writer.held, pages=pages, interval=interval
            )
        except ValueError:
            connection.close()  # nothing started, nothing changed
            raise
        self._wal = wal
        self.store.set_wal_autocheckpoint(cap)
        self._wal.start()
        return True

    def close(self) -> None:
        """Score what streaming detection still has queued, then release the store and key
        store."""
        if self._wal is not None:
            self._wal.close()
            self._wal = None
        self._signer.close()
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        self.store.close()
        self._envelope.keystore.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accessors ---------------------------------------------------------------------------

    def add_accessor(self, accessor: Accessor) -> None:
        """Register (or update) an accessor.

        Raises:
            InputError: the role is not used by any grant or approval rule of the policy.
        """
        if accessor.role not in self.policy.roles:
            known = ", ".join(sorted(self.policy.roles))
            raise InputError(f"role '{accessor.role}' is not in the policy (roles: {known})")
        for name, value in (("accessor id", accessor.accessor), ("org", accessor.org)):
            if not value or not value.isprintable() or len(value) > 64:
                raise InputError(f"{name} must be 1-64 printable characters")
        with self.store.transaction() as tx:
            tx.put_accessor(accessor)

    def principal(self, accessor_id: str) -> Principal:
        """Return the principal of a registered, active accessor.

        Raises:
            NotFound: no such accessor.
            AccessDenied: the accessor is deactivated.
        """
        found = self.store.accessor(accessor_id)
        if found is None:
            raise NotFound(f"no accessor '{accessor_id}' (add it with 'custodes accessor add')")
        if not found.active:
            raise AccessDenied(f"accessor '{accessor_id}' is deactivated", ("accessor",))
        return Principal(accessor=found.accessor, org=found.org, role=found.role)

    # -- records -----------------------------------------------------------------------------

    def put(
        self, access: Access, collection: str, subject: str, values: Mapping[str, object]
    ) -> str:
        """Store one record about ``subject`` (an ID number); return the new record id.

        Raises:
            InputError: malformed ID number, unknown collection/field, invalid or oversized value.
            AccessDenied: policy refused the write (recorded).
            AuditFailure: the event could not be committed (nothing was written).
        """
        return self.put_many(access, collection, [(subject, values)])[0]

    def put_many(
        self,
        access: Access,
        collection: str,
        items: Sequence[tuple[str, Mapping[str, object]]],
    ) -> list[str]:
        """Store several records in one transaction (bulk ingest); all or nothing.

        Every item is validated before anything is written; one decision and one event per
        record. Raises as :meth:`put`; a denial of any item refuses the whole batch.

        Data keys of new subjects are stored (in the key store, one transaction) before the
        records; if the records' transaction then fails, those keys stay, sealing nothing: the
        next write about the subject uses them, and shredding the subject deletes them.
        """
        prepared, events = self._prepare_puts(access, collection, items, names_only=False)
        self._commit_prepared(prepared, events)
        for event in events:
            self._note_subject(access.principal.accessor, event)
        return prepared.ids

    def prepare_puts(
        self,
        access: Access,
        collection: str,
        items: Sequence[tuple[str, Mapping[str, object]]],
    ) -> PreparedPuts:
        """Do all that :meth:`put_many` does but the commit; :meth:`commit_puts` commits it.

        For bulk loads: worker processes prepare batches and one process, whose connection
        keeps its page cache warm, commits them (``custodes.bulk``). Data keys of new subjects
        are stored and a denial is recorded here, as in ``put_many``; nothing else is written
        until the commit, and a batch never committed leaves no record and no event.

        Raises:
            InputError: as ``put_many``, or a write of ``access`` is decided by more than names
                (a case, break-glass, hours or a daily limit): those count the accessor's
                subjects as they commit, so they go through ``put_many``.
            AccessDenied: policy refused a write (recorded).
            AuditFailure: the denial could not be recorded.
        """
        return self._prepare_puts(access, collection, items, names_only=True)[0]

    def commit_puts(self, prepared: PreparedPuts) -> list[str]:
        """Commit a batch from :meth:`prepare_puts` (possibly of another process on the same
        home): its records and their events in one transaction; return the record ids.

        Raises:
            InputError: this vault feeds streaming detection (it takes writes by ``put_many``).
            AuditFailure: the transaction failed; nothing of the batch was written.
        """
        if self._monitor is not None:
            raise InputError("a vault with streaming detection attached writes by put_many")
        self._commit_prepared(prepared, None)
        return prepared.ids

    def _prepare_puts(
        self,
        access: Access,
        collection: str,
        items: Sequence[tuple[str, Mapping[str, object]]],
        *,
        names_only: bool,
    ) -> tuple[PreparedPuts, list[AccessEvent]]:
        """The batch, prepared, and its events (with ``names_only``: none made, only their
        encoding in the prepared batch, which is all ``prepare_puts`` returns)."""
        coll = self.schema.collection(collection)
        subjects: dict[str, tuple[str, _Subject]] = {}
        prepared = [self._prepare_write(coll, s, values, subjects) for s, values in items]
        now = self._clock()
        decisions = self._decide_puts(access, coll, prepared, now, names_only=names_only)
        if names_only:  # one decision per field set: encode the events without making them
            events: list[AccessEvent] = []
            encoded = self._encode_put_events(access, coll.name, prepared, decisions, now)
        else:
            events = [
                self._event(access, Action.PUT, coll.name, tuple(clean), subj, decision, 1, now)
                for (subj, clean), decision in zip(prepared, decisions, strict=True)
            ]
            encoded = encode_events(events)
        keys = self._envelope.subject_keys([s.ref for s, _ in prepared], create=True)
        indexed = coll.indexed_fields
        ids = _record_ids(len(prepared), now)
        rows = [
            self._seal_record(coll, subj, clean, keys[subj.ref], now, record_id, indexed)
            for (subj, clean), record_id in zip(prepared, ids, strict=True)
        ]
        # Encoded before the transaction: other writers wait on its write lock only while the
        # rows are inserted.
        return PreparedPuts(ids, encode_records(rows), encoded), events

    def _encode_put_events(
        self,
        access: Access,
        collection: str,
        prepared: Sequence[tuple[_Subject, dict[str, str]]],
        decisions: Sequence[Decision],
        now: datetime,
    ) -> EncodedEvents:
        """The encoded events of a batch's writes, each run of records with the same field
        names (and so the same decision) from one event made for its first record."""
        halves: list[tuple[bytes, bytes]] = []
        columns: list[tuple[Any, ...]] = []
        start = 0
        while start < len(prepared):
            names, decision = tuple(prepared[start][1]), decisions[start]
            end = start + 1
            while (
                end < len(prepared)
                and decisions[end] is decision
                and (tuple(prepared[end][1]) == names)
            ):
                end += 1
            first = prepared[start][0]
            template = self._event(access, Action.PUT, collection, names, first, decision, 1, now)
            run = encode_like(template, [subj.pseudonym for subj, _ in prepared[start:end]])
            halves += run.halves
            columns += run.columns
            start = end
        return EncodedEvents(halves, columns)

    def _commit_prepared(
        self, prepared: PreparedPuts, events: Sequence[AccessEvent] | None
    ) -> None:
        """Commit a prepared batch in one transaction, or raise AuditFailure."""
        if not prepared.ids:
            return
        try:
            with self.store.transaction() as tx:
                tx.insert_records(prepared.records)
                seqs = tx.append_events(prepared.events)
        except StoreError as exc:
            raise AuditFailure(
                "the access could not be recorded, so nothing was written or returned "
                f"({exc.diagnostics()})"
            ) from exc
        if events is None:
            self._maybe_checkpoint(seqs[-1] + 1)
        else:
            self._committed(seqs, events)

    def _decide_puts(
        self,
        access: Access,
        coll: Collection,
        prepared: Sequence[tuple[_Subject, dict[str, str]]],
        now: datetime,
        *,
        names_only: bool = False,
    ) -> list[Decision]:
        """Decide every write of a batch; record the first denial and raise AccessDenied.

        A decision that depends only on the names (see ``Policy.timeless_decision``) is the
        same for every record with the same fields: it is asked once per field set. With
        ``names_only``, a write whose decision needs more raises InputError.
        """
        by_names: dict[tuple[str, ...], Decision | None] = {}
        decisions = []
        # A daily limit counts the batch's own subjects too, as they are allowed: the batch
        # commits whole, so each write is decided as if those before it had committed.
        today: set[str] | None = None
        for subj, clean in prepared:
            names = tuple(clean)
            if names not in by_names:
                by_names[names] = self.policy.timeless_decision(
                    access=access, action=Action.PUT, collection=coll.name, fields=names, now=now
                )
            decision = by_names[names]
            if decision is None and names_only:
                raise InputError(
                    "these writes are decided by more than their names (a case, break-glass, "
                    "hours or a daily limit): write them with put_many"
                )
            if decision is None:
                if today is None:
                    today = set(self._subjects_today(access.principal.accessor, now))
                decision = self._decide(access, Action.PUT, coll.name, names, subj, now, today)
                if decision.allowed:
                    today.add(subj.pseudonym)
            if not decision.allowed:
                self._record_denial(access, Action.PUT, coll.name, names, subj, decision, now)
            decisions.append(decision)
        return decisions

    @_one_read_at_a_time
    def get(
        self,
        access: Access,
        collection: str,
        subject: str,
        fields: Sequence[str] | None = None,
    ) -> list[Record]:
        """Return the records of ``subject`` in ``collection``, limited to permitted fields.

        Raises:
            InputError: malformed ID number, unknown collection or field.
            AccessDenied: policy refused the read (recorded).
            IntegrityError: a stored ciphertext was altered or moved (recorded).
            AuditFailure: the event could not be committed; no data is returned.
        """
        records, event = self._prepare_get(access, collection, subject, fields)
        self._commit(events=[event])
        self._note_subject(access.principal.accessor, event)
        return records

    async def get_on_loop(
        self,
        access: Access,
        collection: str,
        subject: str,
        fields: Sequence[str] | None = None,
    ) -> list[Record]:
        """:meth:`get` for a caller on an event loop, with an embedded store: the read runs on
        the loop, and its event is committed in one transaction with those of the other reads
        the loop prepares in the same turn or the next
        (:class:`~custodes._loopcommit.LoopCommit`); the records are returned once that commit
        is durable.

        A read is decided and opened under the accessor's read lock, like :meth:`get`, but the
        lock is released before the commit: its subject counts towards the accessor's daily
        limit from the decision on (a commit that fails leaves it counted: the stricter error),
        so the accessor's next read can be decided at once, in the same turn. If the lock is
        held (a read or export of theirs in a thread), this read waits for it in a worker
        thread, never on the loop. Raises as :meth:`get` does.
        """
        accessor = access.principal.accessor
        lock = self._reader_lock(accessor)
        if not lock.acquire(blocking=False):
            return await asyncio.to_thread(self.get, access, collection, subject, fields)
        try:
            records, event = self._prepare_get(access, collection, subject, fields)
            self._note_subject(accessor, event)
        finally:
            lock.release()
        await self._loop_writer.submit([event])
        return records

    def _prepare_get(
        self,
        access: Access,
        collection: str,
        subject: str,
        fields: Sequence[str] | None,
    ) -> tuple[list[Record], AccessEvent]:
        """Decide and open a read, and return its records with the event to commit before
        they may leave. A refusal or a failed integrity check is committed here, and raised."""
        coll = self.schema.collection(collection)
        wanted = self._check_fields(coll, fields)
        subj = self._subject(subject)
        now = self._clock()
        decision = self._decide(access, Action.GET, coll.name, wanted, subj, now)
        if not decision.allowed:
            self._record_denial(access, Action.GET, coll.name, wanted, subj, decision, now)
        stored = self.store.records(coll.name, subj.ref)
        try:
            records = self._open_records(stored, subj.ref, decision.fields)
        except IntegrityError:
            failed = Decision(
                allowed=True,
                reason="allowed, but a stored ciphertext failed its integrity check",
                fields=decision.fields,
            )
            self._commit(
                events=[
                    self._event(
                        access, Action.GET, coll.name, decision.fields, subj, failed, 0, now
                    )
                ]
            )
            raise
        event = self._event(
            access, Action.GET, coll.name, decision.fields, subj, decision, len(records), now
        )
        return records, event

    @_one_read_at_a_time
    def find(
        self,
        access: Access,
        collection: str,
        field: str,
        value: str,
        fields: Sequence[str] | None = None,
    ) -> list[Record]:
        """Return the records whose blind-indexed ``field`` equals ``value`` exactly.

        No prefix, wildcard or range search; at most ``limits.find_cap`` records.

        Raises:
            InputError: unknown or non-indexed field, a pattern instead of a value, bad value.
            AccessDenied: policy refused, or the result exceeds the cap (recorded).
            AuditFailure: the events could not be committed; no data is returned.
        """
        coll = self.schema.collection(collection)
        target = coll.field(field)
        if not target.indexed:
            indexed = ", ".join(coll.indexed_fields) or "none"
            raise InputError(
                f"field '{field}' of '{coll.name}' is not indexed for exact-match lookup "
                f"(indexed fields: {indexed})"
            )
        if isinstance(value, str) and _PATTERN_CHARS.intersection(value):
            raise InputError(
                "find matches exact values only: wildcard and prefix patterns ('*', '%', '?') "
                "are refused"
            )
        normalized = target.normalize(value)
        wanted = self._check_fields(coll, fields)
        now = self._clock()
        decision = self._decide(access, Action.FIND, coll.name, wanted, None, now)
        if not decision.allowed:
            self._record_denial(access, Action.FIND, coll.name, wanted, None, decision, now)
        token = self._index.token(coll.name, target.name, normalized)
        hits = self.store.lookup(token, limit=self.settings.find_cap + 1)
        if len(hits) > self.settings.find_cap:
            capped = Decision(
                allowed=False,
                reason=f"the lookup matched more than {self.settings.find_cap} records",
                missing=("result_cap",),
            )
            self._record_denial(access, Action.FIND, coll.name, decision.fields, None, capped, now)
        return self._answer_find(access, coll, decision, hits, now)

    @_one_read_at_a_time
    def export(
        self, access: Access, collection: str, fields: Sequence[str] | None = None
    ) -> list[Record]:
        """Return every record of ``collection`` (bulk export); one event per subject.

        Raises:
            AccessDenied: policy refused (recorded).
            AuditFailure: the events could not be committed; no data is returned.
        """
        coll = self.schema.collection(collection)
        wanted = self._check_fields(coll, fields)
        now = self._clock()
        decision = self._decide(access, Action.EXPORT, coll.name, wanted, None, now)
        if not decision.allowed:
            self._record_denial(access, Action.EXPORT, coll.name, wanted, None, decision, now)
        refs = self.store.subject_refs(coll.name)
        self._check_reach(access, Action.EXPORT, coll, decision, refs, now)
        groups = ((ref, self.store.records(coll.name, ref)) for ref in refs)
        return self._release(access, Action.EXPORT, coll, decision, groups, now)

    def mark_export(
        self, access: Access, collection: str, fields: Sequence[str], *, rows: int, mark: str
    ) -> int:
        """Record the fingerprint of an export released to ``access``'s accessor; return the
        ledger index of the entry.

        :func:`custodes.forensics.export_fingerprinted` calls this after :meth:`export`. The
        entry (action ``export_mark``, no subject, ``count`` = ``rows``, reason = ``mark``)
        binds the export's id and fingerprint digest to its recipient on the append-only
        ledger, so the record of who received which fingerprint cannot be erased. ``mark`` is
        published with the ledger: it must hold ids and digests, never personal data.

        Raises:
            InputError: unknown collection or field, ``rows`` negative, or ``mark`` not 1-4096
                printable characters.
            AuditFailure: the entry could not be committed (the export must not be released).
        """
        coll = self.schema.collection(collection)
        names = self._check_fields(coll, fields) or []
        if not isinstance(mark, str) or not 0 < len(mark) <= 4096 or not mark.isprintable():
            raise InputError("an export mark is 1-4096 printable characters")
        if type(rows) is not int or rows < 0:
            raise InputError("an export mark's row count is a whole number, zero or more")
        now = self._clock()
        decision = Decision(allowed=True, reason=mark, fields=tuple(names))
        event = self._event(access, Action.EXPORT_MARK, coll.name, names, None, decision, rows, now)
        try:
            with self.store.transaction() as tx:
                seq = tx.append_event(event)
        except StoreError as exc:
            raise AuditFailure(f"export mark refused: {exc.diagnostics()}") from exc
        self._committed([seq], [event])
        return seq

    def shred(self, access: Access, subject: str) -> int:
        """Erase a subject: delete their records and destroy their data key.

        Afterwards nothing of the subject's records can be decrypted, not even from a backup
        made before, with the KEK; their access events remain (pseudonymous). Returns the number
        of records deleted.

        Raises:
            AccessDenied: policy refused (recorded).
            CryptoError: records were deleted but the key could not be destroyed; run it again.
        """
        subj = self._subject(subject)
        now = self._clock()
        decision = self._decide(access, Action.SHRED, None, [], subj, now)
        if not decision.allowed:
            self._record_denial(access, Action.SHRED, None, [], subj, decision, now)
        try:
            with self.store.transaction() as tx:
                deleted = tx.delete_subject_records(subj.ref)
                event = self._event(access, Action.SHRED, None, (), subj, decision, deleted, now)
                seq = tx.append_event(event)
        except StoreError as exc:
            raise AuditFailure(f"shred refused: {exc.diagnostics()}") from exc
        try:
            self._envelope.shred(subj.ref)
        except Exception as exc:
            raise CryptoError(
                "the records were deleted but the data key could not be destroyed; run shred again"
            ) from exc
        self._committed([seq], [event])
        return deleted

    def explain(
        self,
        access: Access,
        action: Action,
        collection: str | None,
        subject: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> Decision:
        """Return the decision policy would make now, without recording or returning data."""
        coll = self.schema.collection(collection) if collection else None
        wanted = self._check_fields(coll, fields) if coll else None
        subj = self._subject(subject) if subject else None
        return self._decide(
            access, action, coll.name if coll else None, wanted, subj, self._clock()
        )

    # -- cases -------------------------------------------------------------------------------

    def open_case(
        self,
        access: Access,
        subjects: Iterable[str],
        *,
        assigned: Iterable[str] = (),
        expires_at: datetime | None = None,
        ttl: timedelta | None = None,
    ) -> Case:
        """Open a case naming ``subjects`` (ID numbers) for ``access.purpose``; it is recorded.

        Raises:
            InputError: bad ID numbers, unknown assignees, no purpose, expiry in the past.
            AccessDenied: the role has no grant that uses cases for this purpose.
        """
        now = self._clock()
        if not access.purpose:
            raise InputError("a case needs a purpose")
        refs = [self._subject(s).ref for s in subjects]
        team = self._known_accessors(assigned, access.principal.org)
        if ttl is not None:
            expires_at = now + ttl
        principal = access.principal
        if not any(
            g.role == principal.role and g.purpose == access.purpose for g in self.policy.grants
        ):
            denial = Decision(
                allowed=False,
                reason=f"role '{principal.role}' has no grant for purpose '{access.purpose}'",
                missing=("grant",),
            )
            self._record_denial(access, Action.CASE_OPEN, None, [], None, denial, now)
        case = open_case(
            case_id=self._case_ids(),
            principal=principal,
            purpose=access.purpose,
            subjects=refs,
            assigned=team,
            now=now,
            expires_at=expires_at,
            policy=self.policy,
        )
        self._save_case(
            access, Action.CASE_OPEN, case, f"case opened naming {len(refs)} subject(s)", now
        )
        return case

    def approve_case(self, access: Access, case_id: str) -> Case:
        """Approve a case (dual control); refusals are recorded.

        Raises:
            NotFound: no such case.
            AccessDenied: the approver is the opener, of another org, or lacks the role.
        """
        case = self.case(case_id)
        now = self._clock()
        try:
            approved = approve_case(case, approver=access.principal, now=now, policy=self.policy)
        except AccessDenied as exc:
            self._record_case_denial(access, Action.CASE_APPROVE, case, exc, now)
        self._save_case(access, Action.CASE_APPROVE, approved, "case approved", now)
        return approved

    def close_case(self, access: Access, case_id: str) -> Case:
        """Close a case; reads under it are refused from now on.

        Raises:
            NotFound: no such case.
            AccessDenied: the caller is not the opener, an assignee or the approver.
        """
        case = self.case(case_id)
        now = self._clock()
        try:
            closed = close_case(case, principal=access.principal, now=now)
        except AccessDenied as exc:
            self._record_case_denial(access, Action.CASE_CLOSE, case, exc, now)
        self._save_case(access, Action.CASE_CLOSE, closed, "case closed", now)
        return closed

    def add_case_subjects(self, access: Access, case_id: str, subjects: Iterable[str]) -> Case:
        """Add subjects to a case; this withdraws its approval until approved again."""
        case = self.case(case_id)
        now = self._clock()
        refs = [self._subject(s).ref for s in subjects]
        try:
            grown = add_subjects(case, refs, principal=access.principal, now=now)
        except AccessDenied as exc:
            self._record_case_denial(access, Action.CASE_OPEN, case, exc, now)
        self._save_case(access, Action.CASE_OPEN, grown, f"case gained {len(refs)} subject(s)", now)
        return grown

    def case(self, case_id: str) -> Case:
        """Return a case.

        Raises:
            NotFound: no such case.
        """
        found = self.store.case(case_id)
        if found is None:
            raise NotFound(f"no case '{case_id}'")
        return found

    def case_names(self, case: Case, subject: str) -> bool:
        """Return whether ``case`` names the subject with this ID number."""
        return self._subject(subject).ref in case.subjects

    def pseudonym(self, subject: str) -> str:
        """Return the subject's ledger pseudonym (for the subject themselves, via the portal)."""
        return self._subject(subject).pseudonym

    def keyed_token(self, kind: str, value: str) -> str:
        """Return a keyed token of ``value`` (e.g. a surname or an address) for the detectors.

        Equal values give equal tokens within this vault; without the index key nobody can
        compute or reverse one. ``kind`` separates domains (``surname``, ``address``...).

        Raises:
            InputError: an argument is not valid text.
        """
        return self._index.token("_keyed", kind, value).hex()[:32]

    def case_subjects(self, case: Case) -> list[str]:
        """Return the ledger pseudonyms of the subjects ``case`` names, sorted (for exports)."""
        return sorted(self._index.pseudonym_of_ref(ref) for ref in case.subjects)

    # -- oversight ---------------------------------------------------------------------------

    def acknowledge_alert(self, access: Access, alert_id: str, note: str) -> int:
        """Record that an oversight accessor reviewed misuse alert ``alert_id``; return the
        ledger index of the acknowledgement.

        The entry has action ``alert_ack``, purpose ``oversight``, no subject, the reason
        ``alert <alert_id> acknowledged`` and ``note`` sealed as its justification (a note may
        name people). Only the policy's oversight roles may acknowledge; anyone else is refused
        and the refusal is recorded, whatever the note (the role is checked before it).

        Raises:
            InputError: a malformed alert id (nothing recorded), or an empty or overlong note.
            AccessDenied: the caller's role is not an oversight role (recorded).
            AuditFailure: the entry could not be committed.
        """
        if not isinstance(alert_id, str) or not _ALERT_ID.fullmatch(alert_id):
            raise InputError("an alert id is 8-64 lowercase hexadecimal characters")
        now = self._clock()
        principal = access.principal
        scoped = Access(principal, "oversight")
        if principal.role not in self.policy.oversight_roles:
            denial = Decision(
                allowed=False,
                reason=f"role '{principal.role}' may not acknowledge alerts (alert {alert_id})",
                missing=("oversight_role",),
            )
            self._record_denial(scoped, Action.ALERT_ACK, None, (), None, denial, now)
        # Browsers send a textarea's line breaks as CRLF; a note is lines of printable text.
        text = note.replace("\r\n", "\n").strip() if isinstance(note, str) else ""
        if not text or len(text) > MAX_ALERT_NOTE or not text.replace("\n", " ").isprintable():
            raise InputError(
                f"an acknowledgement needs a note of 1-{MAX_ALERT_NOTE} printable characters"
            )
        decision = Decision(allowed=True, reason=f"alert {alert_id} acknowledged")
        event = self._event(scoped, Action.ALERT_ACK, None, (), None, decision, 0, now)
        event = replace(event, justification=self._seal_note(principal, text, now))
        try:
            with self.store.transaction() as tx:
                seq = tx.append_event(event)
        except StoreError as exc:
            raise AuditFailure(f"acknowledgement refused: {exc.diagnostics()}") from exc
        self._committed([seq], [event])
        return seq

    def audit_note(self, event: AccessEvent) -> str | None:
        """Return the text an event keeps sealed (a break-glass justification, an alert
        acknowledgement's note) in clear, or ``None`` if it has none. For oversight screens: the
        text may name people.

        Raises:
            IntegrityError: the sealed text was altered, or moved from another event.
        """
        if event.justification is None:
            return None
        context = f"{event.accessor}|{event.ts.isoformat()}".encode()
        try:
            sealed = bytes.fromhex(event.justification)
        except ValueError:
            raise IntegrityError("a sealed audit text is not hexadecimal: it was altered") from None
        return self._envelope.open_audit(sealed, context=context).decode()

    # -- internals ---------------------------------------------------------------------------

    def _seal_note(self, principal: Principal, text: str, now: datetime) -> str:
        # Sealed like a break-glass justification: same key, bound to who wrote it and when.
        context = f"{principal.accessor}|{now.isoformat()}".encode()
        return self._envelope.seal_audit(text.encode(), context=context).hex()

    def _subject(self, id_number: str) -> _Subject:
        return self._keyed(self.schema.normalize_subject(id_number))

    def _keyed(self, normalized: str) -> _Subject:
        """The subject of a normalized ID number: its ref and pseudonym never change."""
        known = self._subjects.get(normalized)
        if known is None:
            ref = self._index.subject_ref(normalized)
            known = _Subject(ref=ref, pseudonym=self._index.pseudonym_of_ref(ref))
            if len(self._subjects) >= _SUBJECTS_MAX:
                self._subjects.clear()
            self._subjects[normalized] = known
        return known

    def _check_fields(self, coll: Collection, fields: Sequence[str] | None) -> list[str] | None:
        if fields is None:
            return None
        for name in fields:
            coll.field(name)
        return list(dict.fromkeys(fields))

    def _prepare_write(
        self,
        coll: Collection,
        subject: str,
        values: Mapping[str, object],
        subjects: dict[str, tuple[str, _Subject]],
    ) -> tuple[_Subject, dict[str, str]]:
        """Validate one write; ``subjects`` remembers the subjects of the batch (ID number as
        given -> normalized ID number, subject), so each is normalized and keyed once."""
        known = subjects.get(subject) if type(subject) is str else None
        if known is None:
            normalized = self.schema.normalize_subject(subject)
            known = (normalized, self._keyed(normalized))
            if type(subject) is str:
                subjects[subject] = known
        normalized, subj = known
        clean = coll.validate(values, max_value_bytes=self.settings.max_value_bytes)
        collection, field = self.schema.subject_field
        # Equal normalized ID numbers are what give equal subject refs: comparing them is the
        # same check as comparing the refs, without an HMAC.
        if coll.name == collection and field in clean and clean[field] != normalized:
            raise InputError(f"{coll.name}.{field} must be the subject's own ID number")
        return subj, clean

    def _seal_record(
        self,
        coll: Collection,
        subj: _Subject,
        clean: dict[str, str],
        key: SubjectKey,
        now: datetime,
        record_id: str,
        indexed: Sequence[str],
    ) -> tuple[StoredRecord, list[IndexEntry]]:
        plain = {name: value.encode() for name, value in clean.items()}
        sealed = self._envelope.seal_fields(key, plain, collection=coll.name, record_id=record_id)
        token = self._index.token
        index = [
            IndexEntry(token(coll.name, name, clean[name]), record_id, subj.ref)
            for name in indexed
            if name in clean
        ]
        record = StoredRecord(record_id, coll.name, subj.ref, now, sealed)
        return record, index

    def _open_records(
        self, stored: Sequence[StoredRecord], ref: bytes, fields: Sequence[str]
    ) -> list[Record]:
        if not stored:
            return []
        key = self._envelope.subject_key(ref)
        open_fields = self._envelope.open_fields
        out = []
        for rec in stored:
            if rec.subject_ref != ref:
                raise IntegrityError(f"record {rec.record_id} is not the subject's")
            opened = open_fields(
                key, rec.fields, fields, collection=rec.collection, record_id=rec.record_id
            )
            values = {name: value.decode() for name, value in opened.items()}
            out.append(Record(rec.record_id, rec.collection, rec.created_at, values))
        return out

    def _answer_find(
        self,
        access: Access,
        coll: Collection,
        decision: Decision,
        hits: Sequence[tuple[bytes, str]],
        now: datetime,
    ) -> list[Record]:
        case = self.store.case(access.case) if access.case else None
        by_subject: dict[bytes, set[str]] = {}
        for ref, record_id in hits:
            if case is None or ref in case.subjects:
                by_subject.setdefault(ref, set()).add(record_id)
        self._check_reach(access, Action.FIND, coll, decision, list(by_subject), now)
        groups = (
            (ref, [r for r in self.store.records(coll.name, ref) if r.record_id in ids])
            for ref, ids in by_subject.items()
        )
        return self._release(access, Action.FIND, coll, decision, groups, now)

    def _check_reach(
        self,
        access: Access,
        action: Action,
        coll: Collection,
        decision: Decision,
        refs: Sequence[bytes],
        now: datetime,
    ) -> None:
        """Hold an access whose subjects were unknown when it was decided (a find, an export)
        to the grant's daily limit: if the subjects it reached, with those of today, are more than
        the limit allows, record the denial and raise AccessDenied (nothing is released)."""
        limit = decision.daily_limit
        if limit == 0 or not refs:
            return
        today = self._subjects_today(access.principal.accessor, now)
        new = {self._index.pseudonym_of_ref(ref) for ref in refs} - today
        if new and len(today) + len(new) > limit:
            denial = Decision(
                allowed=False,
                reason=f"daily limit of {limit} subjects reached",
                missing=("quota",),
            )
            self._record_denial(access, action, coll.name, decision.fields, None, denial, now)

    def _release(
        self,
        access: Access,
        action: Action,
        coll: Collection,
        decision: Decision,
        groups: Iterable[tuple[bytes, Sequence[StoredRecord]]],
        now: datetime,
    ) -> list[Record]:
        """Decrypt each subject's records, commit one event per subject, then return them.

        A call that reaches no subject is recorded too (subject ``None``, count 0): finds that
        return nothing are how enumeration shows up.
        """
        records: list[Record] = []
        events: list[AccessEvent] = []
        for ref, stored in groups:
            opened = self._open_records(stored, ref, decision.fields)
            subj = _Subject(ref, self._index.pseudonym_of_ref(ref))
            fields = decision.fields
            events.append(
                self._event(access, action, coll.name, fields, subj, decision, len(opened), now)
            )
            records.extend(opened)
        if not events:
            events.append(
                self._event(access, action, coll.name, decision.fields, None, decision, 0, now)
            )
        self._commit(events=events)
        for event in events:
            self._note_subject(access.principal.accessor, event)
        return records

    def _decide(
        self,
        access: Access,
        action: Action,
        collection: str | None,
        fields: Sequence[str] | None,
        subj: _Subject | None,
        now: datetime,
        subjects_today: set[str] | None = None,
    ) -> Decision:
        """Decide one access; ``subjects_today`` overrides the subjects the accessor is known
        to have accessed today (a batch adds its own)."""
        # Most accesses are decided by their names alone (no case, hours or daily limit):
        # then neither the case nor today's subjects need loading.
        timeless = self.policy.timeless_decision(
            access=access, action=action, collection=collection, fields=fields, now=now
        )
        if timeless is not None:
            return timeless
        case = self.store.case(access.case) if access.case else None
        return self.policy.decide(
            access=access,
            action=action,
            collection=collection,
            fields=fields,
            subject_ref=subj.ref if subj else None,
            subject=subj.pseudonym if subj else None,
            case=case,
            now=now,
            subjects_today=(
                self._subjects_today(access.principal.accessor, now)
                if subjects_today is None
                else subjects_today
            ),
        )

    def is_reading(self, accessor_id: str) -> bool:
        """Whether a read, find or export of ``accessor_id`` is running now (so another one
        would wait for it)."""
        lock = self._readers.get(accessor_id)
        return lock is not None and lock.locked()

    def _reader_lock(self, accessor_id: str) -> threading.Lock:
        """The lock that runs ``accessor_id``'s reads one after another (made on first use)."""
        lock = self._readers.get(accessor_id)
        if lock is None:
            with self._readers_lock:
                lock = self._readers.setdefault(accessor_id, threading.Lock())
        return lock

    def _subjects_today(self, accessor_id: str, now: datetime) -> set[str]:
        # The per-day quota needs the subjects this accessor already read today, "today" being
        # the policy's local day. The store is the truth; this cache saves a query per read and
        # is refilled from it when the day changes.
        day = self._days.start(now)
        cached = self._quota.get(accessor_id)
        if cached is None or cached[0] != day:
            cached = (day, self.store.subjects_accessed_since(accessor_id, day))
            self._quota[accessor_id] = cached
        return cached[1]

    def _note_subject(self, accessor_id: str, event: AccessEvent) -> None:
        cached = self._quota.get(accessor_id)
        if cached is not None and event.subject is not None and event.decision == "allow":
            cached[1].add(event.subject)

    def _event(
        self,
        access: Access,
        action: Action,
        collection: str | None,
        fields: Sequence[str] | None,
        subj: _Subject | None,
        decision: Decision,
        count: int,
        now: datetime,
    ) -> AccessEvent:
        principal = access.principal
        justification = None
        if access.justification and (access.break_glass or decision.break_glass):
            # Free text may name people: it is kept sealed under the audit key, never in clear.
            context = f"{principal.accessor}|{now.isoformat()}".encode()
            sealed = self._envelope.seal_audit(access.justification.encode(), context=context)
            justification = sealed.hex()
        return AccessEvent(
            ts=now,
            accessor=principal.accessor,
            org=principal.org,
            role=principal.role,
            action=action.value,
            collection=collection,
            fields=tuple(fields or ()),
            subject=subj.pseudonym if subj else None,
            purpose=access.purpose,
            case=access.case,
            decision="allow" if decision.allowed else "deny",
            reason=decision.reason,
            count=count,
            break_glass=decision.break_glass,
            justification=justification,
        )

    def _record_denial(
        self,
        access: Access,
        action: Action,
        collection: str | None,
        fields: Sequence[str] | None,
        subj: _Subject | None,
        decision: Decision,
        now: datetime,
    ) -> NoReturn:
        """Commit the denial as an event, then raise AccessDenied."""
        self._commit(
            events=[self._event(access, action, collection, fields, subj, decision, 0, now)]
        )
        raise AccessDenied(decision.reason, decision.missing)

    def _record_case_denial(
        self, access: Access, action: Action, case: Case, exc: AccessDenied, now: datetime
    ) -> NoReturn:
        denial = Decision(allowed=False, reason=exc.reason, missing=exc.missing)
        scoped = Access(access.principal, access.purpose or case.purpose, case.case_id)
        self._commit(events=[self._event(scoped, action, None, (), None, denial, 0, now)])
        raise exc

    def _save_case(
        self, access: Access, action: Action, case: Case, reason: str, now: datetime
    ) -> None:
        scoped = Access(access.principal, case.purpose, case.case_id)
        event = self._event(
            scoped,
            action,
            None,
            (),
            None,
            Decision(allowed=True, reason=reason),
            len(case.subjects),
            now,
        )
        try:
            with self.store.transaction() as tx:
                tx.put_case(case)
                seq = tx.append_event(event)
        except StoreError as exc:
            raise AuditFailure(f"case change refused: {exc.diagnostics()}") from exc
        self._committed([seq], [event])

    def _known_accessors(self, ids: Iterable[str], org: str) -> list[str]:
        team = []
        for accessor_id in ids:
            found = self.store.accessor(accessor_id)
            if found is None:
                raise InputError(f"cannot assign unknown accessor '{accessor_id}'")
            if found.org != org:
                raise InputError(f"cannot assign accessor '{accessor_id}' of another organization")
            team.append(found.accessor)
        return team

    def _commit(self, *, events: Sequence[AccessEvent]) -> None:
        """Commit events (shared with concurrent callers' events), or raise AuditFailure."""
        self._commit_batches([events])

    def _commit_loop_batches(self, batches: list[Sequence[AccessEvent]]) -> list[list[int]]:
        """:meth:`_commit_batches` for an event loop's reads: a checkpoint that becomes due is
        signed in the signing thread, so the loop never waits for its fsyncs."""
        return self._commit_batches(batches, sign_here=False)

    def _commit_batches(
        self, batches: list[Sequence[AccessEvent]], *, sign_here: bool = True
    ) -> list[list[int]]:
        """Commit several callers' events in one write (shared with concurrent threads'
        events); return each caller's seqs, or raise AuditFailure. A checkpoint that becomes
        due is signed before returning, or with ``sign_here=False`` in the signing thread."""
        events = [event for batch in batches for event in batch]
        try:
            seqs = self._events_writer.submit(events)
        except StoreError as exc:
            raise AuditFailure(
                "the access could not be recorded, so nothing was written or returned "
                f"({exc.diagnostics()})"
            ) from exc
        if seqs:
            self._committed(seqs, events, sign_here=sign_here)
        return _split(seqs, batches)

    def _committed(
        self, seqs: Sequence[int], events: Sequence[AccessEvent], *, sign_here: bool = True
    ) -> None:
        """After a commit: hand the events to streaming detection (a queue put), then sign a
        checkpoint if one is due (here, or with ``sign_here=False`` in the signing thread)."""
        if self._monitor is not None:
            self._monitor.submit(seqs, events)
        size = seqs[-1] + 1
        if sign_here:
            self._maybe_checkpoint(size)
        elif self._checkpoints is not None:
            try:
                due = self._checkpoints.due(self._clock(), size=size)
            except (CustodesError, OSError):
                due = True  # the signing thread's attempt logs it, and the next one retries
            if due:
                self._signer.due(size)

    def _write_events(self, batches: list[Sequence[AccessEvent]]) -> list[list[int]]:
        """Append the events of several callers in one transaction; return each one's seqs."""
        with self.store.transaction() as tx:
            seqs = tx.append_events([event for events in batches for event in events])
        return _split(seqs, batches)

    def _maybe_checkpoint(self, size: int) -> None:
        """Sign a checkpoint if one is due; called after events are committed.

        The events are durable already, so a failure here must not fail the call: it is logged
        and, the checkpoint still being due, retried after the next commit.
        """
        if self._checkpoints is None:
            return
        try:
            self._checkpoints.maybe_sign(self.ledger, self._clock(), size=size)
        except (CustodesError, OSError):
            _log.exception(
                "could not sign a checkpoint of the access ledger at size %d; will retry", size
            )


def _split(seqs: Sequence[int], batches: Sequence[Sequence[AccessEvent]]) -> list[list[int]]:
    """The seqs of events committed together, handed back per caller's batch, in order."""
    out, pos = [], 0
    for batch in batches:
        out.append(list(seqs[pos : pos + len(batch)]))
        pos += len(batch)
    return out


def _record_ids(count: int, created_at: datetime) -> list[str]:
    """Return ``count`` new ids of records created at ``created_at``: its time head (see
    ``record_id_head``) and 80 random bits each, as hex (one read of the random source)."""
    head = record_id_head(created_at)
    raw = secrets.token_hex(RECORD_ID_RANDOM_HEX // 2 * count)
    step = RECORD_ID_RANDOM_HEX
    return [head + raw[start : start + step] for start in range(0, step * count, step)]
