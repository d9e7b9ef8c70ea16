"""What both backends share: binary record bodies, row <-> model conversions, SQL and logic.

Each backend supplies only how to run a statement, how to serialize sequence numbers and how a
transaction begins and ends (:class:`SQLReads`, :class:`SQLWrites`).

Record bodies and case subject lists are stored as length-prefixed *binary*, never as JSON, hex
or base64: the plaintext-search test looks for runs of digits in every database byte, and a text
encoding of random ciphertext is full of such runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from operator import is_
from typing import Any

from custodes.errors import StoreError
from custodes.ledger.merkle import HASH_SIZE, subtree_roots
from custodes.model import (
    AccessEvent,
    Accessor,
    Case,
    Credential,
    CredentialKind,
    IndexEntry,
    StoredRecord,
)
from custodes.store._protocol import EncodedEvents, EncodedRecords, EventCount

__all__ = [
    "ALL_LEVELS",
    "BUNDLE_MAX",
    "SCHEMA_VERSION",
    "TOP_LEVEL",
    "SQLReads",
    "SQLWrites",
    "accessor_from_row",
    "accessor_params",
    "as_utc",
    "bundle_hashes",
    "bundle_rows",
    "case_from_row",
    "case_params",
    "decode_fields",
    "decode_refs",
    "encode_events",
    "encode_fields",
    "encode_records",
    "encode_refs",
    "event_from_row",
    "event_params",
    "index_params",
    "last_leaf",
    "level_start",
    "pack_entries",
    "record_from_row",
    "record_params",
    "since_bound",
    "single_bundle",
    "split_hashes",
    "statements",
    "subjects_since",
    "unpack_entries",
]

SCHEMA_VERSION = 4  # 2: ledger_entries replaced ledger_nodes; 3: credentials; 4: ledger_bundles

_NAME_LEN = struct.Struct(">H")
_VALUE_LEN = struct.Struct(">I")
_MAX_NAME = 0xFFFF
_MAX_VALUE = 0xFFFFFFFF


def encode_fields(fields: dict[str, bytes]) -> bytes:
    """Encode a record's fields as ``u16 len, name, u32 len, value`` in sorted name order.

    Raises:
        StoreError: a field name or value is too long to encode.
    """
    parts: list[bytes] = []
    heads, pack_value = _NAME_HEADS, _VALUE_LEN.pack
    for name in sorted(fields):
        head = heads.get(name)
        if head is None:
            head = _name_head(name)
        value = fields[name]
        if type(value) is not bytes:
            value = bytes(value)
        if len(value) > _MAX_VALUE:
            raise StoreError(f"cannot store field '{name}': its value is too long")
        parts += (head, pack_value(len(value)), value)
    return b"".join(parts)


# ``u16 len, name`` of recently encoded field names (names come from the schema: few, reused).
_NAME_HEADS: dict[str, bytes] = {}
_NAME_HEADS_MAX = 256


def _name_head(name: str) -> bytes:
    raw_name = name.encode("utf-8")
    if len(raw_name) > _MAX_NAME:
        raise StoreError(f"cannot store field '{name[:40]}...': its name is too long")
    head = _NAME_LEN.pack(len(raw_name)) + raw_name
    if len(_NAME_HEADS) >= _NAME_HEADS_MAX:
        _NAME_HEADS.clear()  # atomic under the GIL, unlike evicting one entry while others read
    _NAME_HEADS[name] = head
    return head


def decode_fields(body: bytes) -> dict[str, bytes]:
    """Decode a record body written by :func:`encode_fields`.

    Raises:
        StoreError: the body is truncated, has trailing bytes, a bad name or a repeated field.
    """
    # Inlined _take (hot read path: one body per record read); same checks, same messages.
    data = body if type(body) is bytes else bytes(body)
    size = len(data)
    name_len, value_len = _NAME_LEN.unpack_from, _VALUE_LEN.unpack_from
    name_size, value_size = _NAME_LEN.size, _VALUE_LEN.size
    fields: dict[str, bytes] = {}
    pos = 0
    while pos < size:
        if pos + name_size > size:
            raise _truncated("the length of a field name")
        start = pos + name_size
        pos = start + name_len(data, pos)[0]
        if pos > size:
            raise _truncated("a field name")
        if pos + value_size > size:
            raise _truncated("the length of a field value")
        raw_name = data[start:pos]
        start = pos + value_size
        pos = start + value_len(data, pos)[0]
        if pos > size:
            raise _truncated("a field value")
        try:
            name = raw_name.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StoreError("stored record body is malformed: a field name is not UTF-8") from exc
        if name in fields:
            raise StoreError(f"stored record body is malformed: field '{name}' appears twice")
        fields[name] = data[start:pos]
    return fields


def _truncated(what: str) -> StoreError:
    return StoreError(f"stored data is malformed: {what} is truncated")


def encode_refs(refs: frozenset[bytes]) -> bytes:
    """Encode a set of subject refs as ``u32 len, ref`` items in sorted order."""
    return b"".join(_VALUE_LEN.pack(len(ref)) + ref for ref in sorted(refs))


def decode_refs(blob: bytes) -> frozenset[bytes]:
    """Decode subject refs written by :func:`encode_refs`.

    Raises:
        StoreError: the list is truncated.
    """
    refs: set[bytes] = set()
    pos = 0
    while pos < len(blob):
        ref, pos = _take(blob, pos, _VALUE_LEN, "subject ref")
        refs.add(ref)
    return frozenset(refs)


def _take(data: bytes, pos: int, prefix: struct.Struct, what: str) -> tuple[bytes, int]:
    if pos + prefix.size > len(data):
        raise _truncated(f"the length of a {what}")
    (length,) = prefix.unpack_from(data, pos)
    start = pos + prefix.size
    end = start + length
    if end > len(data):
        raise _truncated(f"a {what}")
    return bytes(data[start:end]), end


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def record_params(record: StoredRecord, created: str | None = None) -> tuple[Any, ...]:
    """Row values for ``records(record_id, collection, subject_ref, created_at, body)``.

    ``created`` is ``record.created_at`` as stored, if the caller has it already (a batch
    shares one time).
    """
    if created is None:
        created = _created_text(record.created_at)
    body = encode_fields(record.fields)
    return (record.record_id, record.collection, bytes(record.subject_ref), created, body)


def _created_text(moment: datetime) -> str:
    # Fixed-width microseconds keep created_at text in time order for one UTC offset.
    return moment.isoformat(timespec="microseconds")


def record_from_row(row: Sequence[Any]) -> StoredRecord:
    """Build a record from ``(record_id, collection, subject_ref, created_at, body)``.

    Raises:
        StoreError: the stored body is malformed.
    """
    return StoredRecord(
        record_id=row[0],
        collection=row[1],
        subject_ref=bytes(row[2]),
        created_at=datetime.fromisoformat(row[3]),
        fields=decode_fields(bytes(row[4])),
    )


def index_params(entry: IndexEntry) -> tuple[Any, ...]:
    """Row values for ``record_index(token, subject_ref, record_id)``."""
    return (bytes(entry.token), bytes(entry.subject_ref), entry.record_id)


def _quarter(bucket: str, offset: str) -> datetime:
    """``2026-03-02T02:3`` and ``+08:00`` -> 2026-03-02 02:45 at UTC+8 (an offset that is not
    ``±HH:MM`` was a naive time: UTC, as everywhere else)."""
    moment = datetime.fromisoformat(bucket[:13]) + timedelta(minutes=15 * int(bucket[14:]))
    try:
        zone = datetime.strptime(offset, "%z").tzinfo if offset[0] in "+-" else None
    except ValueError:
        zone = None
    return moment.replace(tzinfo=zone or UTC)


def encode_records(items: Sequence[tuple[StoredRecord, Sequence[IndexEntry]]]) -> EncodedRecords:
    """Row values of records and their index entries, for ``StoreTx.insert_records``.

    Raises:
        StoreError: a field name or value is too long to encode.
    """
    # A batch usually shares one time (the same object): format it once. Identity, not
    # equality: equal instants in different offsets are different texts.
    moment: datetime | None = None
    created = ""
    records = []
    for record, _ in items:
        if record.created_at is not moment:
            moment, created = record.created_at, _created_text(record.created_at)
        records.append(record_params(record, created))
    entries = [index_params(entry) for _, index in items for entry in index]
    return EncodedRecords(records, entries)


def encode_events(events: Sequence[AccessEvent]) -> EncodedEvents:
    """Everything of ``events`` a store writes but their positions, for
    ``StoreTx.append_events`` (encoded before the write lock is taken).

    The events of a bulk write follow one another differing in nothing but their subject:
    an event that holds the very same objects as the one before it, but for its subject, reuses
    that one's encoding with its own subject put in (the bytes are those of
    ``canonical_halves`` and ``event_columns``; a test checks it).
    """
    halves: list[tuple[bytes, bytes]] = []
    columns: list[tuple[Any, ...]] = []
    prev: AccessEvent | None = None  # the last event encoded in full, if its encoding is reusable
    after: bytes | None = None  # what follows the subject in prev's entry (found when needed)
    row: tuple[Any, ...] = ()
    for event in events:
        subject = event.subject
        if prev is not None and type(subject) is str and _same_but_subject(event, prev):
            if after is None:
                after = _after_subject(halves[-1][1])
            halves.append((halves[-1][0], _subject_tail(subject, after)))
            columns.append((*row[:_SUBJECT_AT], subject, *row[_SUBJECT_AT + 1 :]))
            continue
        # Reusable only if taken by the direct encoding (a str subject, declared types).
        fast = event._halves_fast() if type(subject) is str else None
        halves.append(fast if fast is not None else event.canonical_halves())
        row = event_columns(event)
        columns.append(row)
        prev, after = (event if fast is not None else None), None
    return EncodedEvents(halves, columns)


def encode_like(template: AccessEvent, subjects: Sequence[str]) -> EncodedEvents:
    """``encode_events`` of events equal to ``template`` but each with its own subject, in
    order, without making them (a bulk batch's events, one run of records with the same fields).

    The bytes are those of ``encode_events`` (a test checks it).

    Raises:
        TypeError: a value is not of its declared type and cannot be encoded.
    """
    fast = template._halves_fast() if type(template.subject) is str else None
    if fast is None or not all(type(subject) is str for subject in subjects):
        return encode_events([replace(template, subject=subject) for subject in subjects])
    head, tail = fast
    after = _after_subject(tail)
    row = event_columns(template)
    before_row, after_row = row[:_SUBJECT_AT], row[_SUBJECT_AT + 1 :]
    return EncodedEvents(
        [(head, _subject_tail(subject, after)) for subject in subjects],
        [(*before_row, subject, *after_row) for subject in subjects],
    )


def _after_subject(tail: bytes) -> bytes:
    """What follows the subject in the tail half of an entry written by ``_halves_fast``."""
    return tail[tail.index(b',"ts":') :]  # a subject's JSON string holds no bare quote


def _subject_tail(subject: str, after: bytes) -> bytes:
    return b'"subject":%s%s' % (encode_basestring(subject).encode(), after)


def _same_but_subject(event: AccessEvent, prev: AccessEvent) -> bool:
    # Written out, not a loop over attribute names: this runs once per event of a bulk write,
    # and an attrgetter over both events is ~3x slower (1.4 vs 0.5 us). Identity, not
    # equality: equal values of other types (1 and True) encode differently, the same object
    # cannot. A bulk write makes a names tuple per record, of the schema's strings:
    # those are compared name by name, by identity too.
    names, before = event.fields, prev.fields
    return (
        event.ts is prev.ts
        and event.accessor is prev.accessor
        and event.org is prev.org
        and event.role is prev.role
        and event.action is prev.action
        and event.collection is prev.collection
        and event.purpose is prev.purpose
        and event.case is prev.case
        and event.decision is prev.decision
        and event.reason is prev.reason
        and event.count is prev.count
        and event.break_glass is prev.break_glass
        and event.justification is prev.justification
        and type(names) is tuple
        and type(before) is tuple
        and len(names) == len(before)
        and all(map(is_, names, before))
    )


def event_params(seq: int, event: AccessEvent) -> tuple[Any, ...]:
    """Row values for the 16 columns of ``events``, ``seq`` first."""
    return (seq, *event_columns(event))


_SUBJECT_AT = 7  # the subject's place in event_columns


def event_columns(event: AccessEvent) -> tuple[Any, ...]:
    """Row values for the columns of ``events`` after ``seq`` (the subject at ``_SUBJECT_AT``)."""
    return (
        event.ts.isoformat(),
        event.accessor,
        event.org,
        event.role,
        str(event.action),
        event.collection,
        _json_names(event.fields),
        event.subject,
        event.purpose,
        event.case,
        event.decision,
        event.reason,
        event.count,
        bool(event.break_glass),
        event.justification,
    )


def _json_names(names: tuple[str, ...]) -> str:
    """Return ``json.dumps(list(names), separators=(",", ":"), ensure_ascii=False)``, faster."""
    try:
        return "[" + ",".join(map(encode_basestring, names)) + "]"
    except TypeError:  # not all strings: encode_basestring takes str only
        return json.dumps(list(names), separators=(",", ":"), ensure_ascii=False)


def event_from_row(row: Sequence[Any]) -> tuple[int, AccessEvent]:
    """Build ``(seq, event)`` from the 16 columns of ``events``."""
    event = AccessEvent(
        ts=datetime.fromisoformat(row[1]),
        accessor=row[2],
        org=row[3],
        role=row[4],
        action=row[5],
        collection=row[6],
        fields=tuple(json.loads(row[7])),
        subject=row[8],
        purpose=row[9],
        case=row[10],
        decision=row[11],
        reason=row[12],
        count=int(row[13]),
        break_glass=bool(row[14]),
        justification=row[15],
    )
    return int(row[0]), event


def case_params(case: Case) -> tuple[Any, ...]:
    """Row values for the 12 columns of ``cases``."""
    return (
        case.case_id,
        case.org,
        case.purpose,
        encode_refs(case.subjects),
        json.dumps(sorted(case.assigned), separators=(",", ":"), ensure_ascii=False),
        case.opened_by,
        case.opened_at.isoformat(),
        _iso(case.expires_at),
        case.approved_by,
        case.approver_role,
        _iso(case.approved_at),
        _iso(case.closed_at),
    )


def case_from_row(row: Sequence[Any]) -> Case:
    """Build a case from the 12 columns of ``cases``.

    Raises:
        StoreError: the stored subject list is malformed.
    """
    return Case(
        case_id=row[0],
        org=row[1],
        purpose=row[2],
        subjects=decode_refs(bytes(row[3])),
        assigned=frozenset(json.loads(row[4])),
        opened_by=row[5],
        opened_at=datetime.fromisoformat(row[6]),
        expires_at=_dt(row[7]),
        approved_by=row[8],
        approver_role=row[9],
        approved_at=_dt(row[10]),
        closed_at=_dt(row[11]),
    )


def accessor_params(accessor: Accessor) -> tuple[Any, ...]:
    """Row values for ``accessors(accessor, org, role, active)``."""
    return (accessor.accessor, accessor.org, accessor.role, bool(accessor.active))


def accessor_from_row(row: Sequence[Any]) -> Accessor:
    """Build an accessor from ``(accessor, org, role, active)``."""
    return Accessor(accessor=row[0], org=row[1], role=row[2], active=bool(row[3]))


def since_bound(since: datetime) -> str:
    """Return a text lower bound for ``ts`` that no event at or after ``since`` sorts below.

    ``ts`` text is the event's local wall time with its own UTC offset (less than a day either
    way), so text order is not time order across offsets. An event at or after ``since`` shows a
    wall time after ``since`` minus a day, and its text begins with that wall time to the
    second: so the text of ``since`` minus a day (UTC, to the second, no offset) sorts at or
    below it. :func:`subjects_since` then filters exactly on parsed datetimes; the bound only
    keeps the rows it reads to about a day more than asked for.
    """
    utc = as_utc(since).replace(tzinfo=None)
    if utc - datetime.min <= timedelta(days=1):
        return ""
    return (utc - timedelta(days=1)).isoformat(timespec="seconds")


def subjects_since(rows: Sequence[Sequence[Any]], since: datetime) -> set[str]:
    """Return the subjects of ``(ts, subject)`` rows whose time is at or after ``since``."""
    bound = as_utc(since)
    return {row[1] for row in rows if as_utc(datetime.fromisoformat(row[0])) >= bound}


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime; naive values are taken to be UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# A node of the ledger's Merkle tree: (level, idx, hash) is the perfect subtree over leaves
# idx * 2**level .. (idx + 1) * 2**level - 1; level 0 holds the leaf hashes.
Node = tuple[int, int, bytes]


def edge_keys(size: int) -> list[tuple[int, int]]:
    """Return the ``(level, idx)`` keys of the peaks of a tree of ``size`` leaves, largest first."""
    keys = []
    for start, end in subtree_roots(size):
        level = (end - start).bit_length() - 1
        keys.append((level, start >> level))
    return keys


# The ledger is stored in bundles: one row per append (at most BUNDLE_MAX entries), holding
#   entries: a codec byte, then u32-LE lengths of the n entries followed by their bytes, either
#            as is (codec 0) or zlib-compressed (codec 1, for bundles of _PACK_MIN or more);
#   hashes + tops: level by level, the hash of every node the bundle completes: its n leaf
#            hashes, then the level-1 nodes whose last leaf it holds, then level 2, ...; levels
#            from TOP_LEVEL up go to ``tops`` (a few nodes, read cheaply: a proof needs one such
#            node from each of O(log n) bundles), the rest to ``hashes`` (docs/ledger.md).
# A node (level, idx) is stored in the bundle holding its last leaf, (idx + 1) * 2**level - 1;
# where it sits in that bundle follows from the bundle's first seq and size alone.
BUNDLE_MAX = 2048
TOP_LEVEL = 11  # subtrees of BUNDLE_MAX leaves and more
ALL_LEVELS = 64  # above any level a log of fewer than 2**62 entries has
_PACK_MIN = 64
_RAW, _ZLIB = b"\x00", b"\x01"
_ONE_LENGTH = struct.Struct("<I")
_compressor: tuple[int, ThreadPoolExecutor] | None = None


def last_leaf(level: int, idx: int) -> int:
    """Return the seq of the last leaf under node ``(level, idx)``: the entry that completes it."""
    return ((idx + 1) << level) - 1


def _below(x: int, level: int) -> int:
    # sum(x >> l for l in range(level)), in closed form: sum(x >> l for l >= 0) = 2x - popcount(x).
    high = x >> level
    return 2 * x - x.bit_count() - 2 * high + high.bit_count()


def level_start(first: int, count: int, level: int) -> int:
    """Return how many nodes of the levels below ``level`` bundle ``(first, count)`` completes
    (level l: the multiples of ``2**l`` in ``(first, first + count]``): where its ``level``
    nodes start in its level-by-level nodes, in nodes. ``level=ALL_LEVELS`` counts them all."""
    return _below(first + count, level) - _below(first, level)


def split_hashes(first: int, count: int, nodes: bytes) -> tuple[bytes, bytes]:
    """Split a bundle's level-by-level nodes into its ``hashes`` (levels below TOP_LEVEL) and
    ``tops`` (the rest) values."""
    cut = level_start(first, count, TOP_LEVEL) * HASH_SIZE
    return nodes[:cut], nodes[cut:]


def _well_formed(first: int, count: int, stored: tuple[bytes, bytes]) -> bool:
    # ``hashes`` holds the levels below TOP_LEVEL, ``tops`` the rest, 32 bytes a node.
    low, every = level_start(first, count, TOP_LEVEL), level_start(first, count, ALL_LEVELS)
    return len(stored[0]) == low * HASH_SIZE and len(stored[1]) == (every - low) * HASH_SIZE


def single_bundle(seq: int, entry: bytes, nodes: bytes) -> tuple[int, int, bytes, bytes, bytes]:
    """Return the ``(seq, n, tops, hashes, entries)`` row of a bundle of one entry, from the
    entry and its leaf and completed-subtree hashes (what one row per entry used to hold)."""
    packed = pack_entries([entry])
    assert isinstance(packed, bytes)  # noqa: S101 (one entry is never compressed)
    hashes, tops = split_hashes(seq, 1, nodes)
    return seq, 1, tops, hashes, packed


def bundle_node(first: int, count: int, blob: bytes, level: int, idx: int) -> bytes | None:
    """Return node ``(level, idx)`` of bundle ``(first, count)`` from its ``hashes`` if
    ``level < TOP_LEVEL``, else from its ``tops`` (``blob``), or ``None`` if the bundle does not
    complete it or the value is too short."""
    if not first <= last_leaf(level, idx) < first + count:
        return None
    base = level_start(first, count, TOP_LEVEL) if level >= TOP_LEVEL else 0
    offset = (level_start(first, count, level) - base + idx - (first >> level)) * HASH_SIZE
    digest = blob[offset : offset + HASH_SIZE]
    return digest if len(digest) == HASH_SIZE else None


def bundle_hashes(edge: list[Node], first: int, entries: Sequence[bytes]) -> bytes:
    """Return the level-by-level nodes (``hashes`` then ``tops``, see :func:`split_hashes`) of
    a bundle of ``entries`` appended at leaf ``first``.

    ``edge`` holds the peaks of the tree of ``first`` leaves, largest first; it is updated in
    place to the peaks of the grown tree. Each level is hashed in one comprehension.

    Raises:
        StoreError: ``edge`` is not the right edge of a tree of ``first`` leaves.
    """
    sha256 = hashlib.sha256
    nodes = [sha256(b"\x00" + entry).digest() for entry in entries]
    out = [b"".join(nodes)]
    low: list[Node] = []
    start, level = first, 0
    while True:
        if start & 1:  # the first node's left sibling is the tree's peak at this level
            if not edge or edge[-1][:2] != (level, start - 1):
                raise StoreError(
                    f"the ledger's right edge has no peak at level {level} for {first} "
                    f"entries; run 'custodes ledger verify'"
                )
            nodes = [edge.pop()[2], *nodes]
            start -= 1
        pairs = len(nodes) >> 1
        if len(nodes) & 1:
            low.append((level, start + len(nodes) - 1, nodes[-1]))
        if not pairs:
            break
        joined = b"".join(nodes[: 2 * pairs])
        step = 2 * HASH_SIZE
        nodes = [
            sha256(b"\x01" + joined[i : i + step]).digest() for i in range(0, len(joined), step)
        ]
        out.append(b"".join(nodes))
        start >>= 1
        level += 1
    edge.extend(reversed(low))
    return b"".join(out)


def pack_entries(entries: Sequence[bytes]) -> bytes | Future[bytes]:
    """Return the ``entries`` value of a bundle, or a future of it.

    Large bundles are compressed in a worker thread (zlib releases the GIL) while the caller
    hashes them; canonical entries shrink to about 5 % (measured in bench/ledger.py).
    """
    body = struct.pack(f"<{len(entries)}I", *map(len, entries)) + b"".join(entries)
    if len(entries) < _PACK_MIN:
        return _RAW + body
    global _compressor  # one lazily started worker per process
    # A forked child inherits the executor but not its thread: its jobs would never run.
    if _compressor is None or _compressor[0] != os.getpid():
        _compressor = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="custodes-ledger"))
    future = _compressor[1].submit(_deflate, body)
    # A new job's worker needs the GIL once to start; hand it over now rather than after the
    # interpreter's switch interval (5 ms) of hashing, which would serialize the two.
    time.sleep(0)
    return future


def _deflate(body: bytes) -> bytes:
    return _ZLIB + zlib.compress(body, 1)


def unpack_entries(count: int, blob: bytes) -> list[bytes] | None:
    """Return the ``count`` entries of a bundle's ``entries`` value, or ``None`` if it is not
    a well-formed value for that many (the ledger's verification then reports the bundle)."""
    codec, body = blob[:1], blob[1:]
    if codec == _ZLIB:
        try:
            body = zlib.decompress(body)
        except zlib.error:
            return None
    elif codec != _RAW:
        return None
    head = 4 * count
    if count < 1 or len(body) < head:
        return None
    lengths = struct.unpack(f"<{count}I", body[:head])
    if head + sum(lengths) != len(body):
        return None
    out = []
    pos = head
    for length in lengths:
        out.append(body[pos : pos + length])
        pos += length
    return out


def bundle_rows(
    first: int, count: int, entries_blob: bytes, stored: tuple[bytes, bytes], start: int, stop: int
) -> Iterator[tuple[int, bytes, bytes]]:
    """Yield ``(seq, entry, hashes)`` for the entries of one bundle with ``start <= seq <
    stop``: each entry's leaf hash followed by the hashes of the subtrees it completes.

    ``stored`` is the bundle's ``(hashes, tops)``. A bundle that cannot be decoded, or whose
    hashes have the wrong length, yields ``(seq, b"", b"")`` rows (at most BUNDLE_MAX, whatever
    its stored size says): verification reports its first entry as not matching.
    """
    if count == 1 and start <= first < stop and (one := _single_row(first, entries_blob, stored)):
        yield one  # the common bundle (a read's event), without the general decoding below
        return
    entries = unpack_entries(count, entries_blob)
    if entries is None or not _well_formed(first, count, stored):
        for seq in range(max(start, first), min(stop, first + min(count, BUNDLE_MAX))):
            yield seq, b"", b""
        return
    hashes = b"".join(stored)
    bases = [level_start(first, count, level) * HASH_SIZE for level in range(ALL_LEVELS)]
    for seq in range(max(start, first), min(stop, first + count)):
        pos = (seq - first) * HASH_SIZE
        parts = [hashes[pos : pos + HASH_SIZE]]
        level, end = 1, seq + 1
        while not end & ((1 << level) - 1):
            pos = bases[level] + ((end >> level) - 1 - (first >> level)) * HASH_SIZE
            parts.append(hashes[pos : pos + HASH_SIZE])
            level += 1
        yield seq, entries[seq - first], b"".join(parts)


def _single_row(
    seq: int, entries_blob: bytes, stored: tuple[bytes, bytes]
) -> tuple[int, bytes, bytes] | None:
    """The row of a well-formed uncompressed bundle of one entry, or ``None``."""
    entry = entries_blob[5:]
    if len(entries_blob) < 5 or entries_blob[:1] != _RAW:
        return None
    if _ONE_LENGTH.unpack_from(entries_blob, 1)[0] != len(entry):
        return None
    if not _well_formed(seq, 1, stored):
        return None
    return seq, entry, stored[0] + stored[1]


def fetch_nodes(
    fetch: Callable[[str, str, Sequence[Any]], list[Any]],
    sql: Mapping[str, str],
    keys: Sequence[tuple[int, int]],
) -> dict[tuple[int, int], bytes]:
    """Return the stored nodes among ``keys``, reading each bundle value that holds one once.

    ``fetch(op, sql, params)`` runs a statement on the caller's connection or transaction;
    ``sql["bundle_at"]`` and ``sql["bundle_tops_at"]`` read the ``hashes`` or the ``tops`` of
    the bundle at or before a seq.
    """
    found: dict[tuple[int, int], bytes] = {}
    for top in (False, True):
        query = sql["bundle_tops_at" if top else "bundle_at"]
        part = [key for key in set(keys) if (key[0] >= TOP_LEVEL) == top]
        first = count = 0
        blob = b""
        for level, idx in sorted(part, key=lambda key: last_leaf(*key), reverse=True):
            seq = last_leaf(level, idx)
            if not first <= seq < first + count:
                rows = fetch("read ledger hashes", query, (seq,))
                if not rows:
                    continue
                first, count, blob = int(rows[0][0]), int(rows[0][1]), bytes(rows[0][2])
            digest = bundle_node(first, count, blob, level, idx)
            if digest is not None:
                found[(level, idx)] = digest
    return found


# --- SQL shared by both backends ---------------------------------------------------------------
# Written with "?" placeholders; the PostgreSQL backend swaps in "%s". The text of each statement
# is constant so the drivers' statement caches (sqlite3) and auto-prepare (psycopg) hit.

_NO_STOP = 2**62

_DML: dict[str, str] = {
    "insert_record": (
        "INSERT INTO records (record_id, collection, subject_ref, created_at, body) VALUES (?, "
        "?, ?, ?, ?)"
    ),
    "insert_index": "INSERT INTO record_index (token, subject_ref, record_id) VALUES (?, ?, ?)",
    "insert_event": (
        "INSERT INTO events (seq, ts, accessor, org, role, action, collection, fields, subject, "
        "purpose, case_id, decision, reason, count, break_glass, justification) VALUES (?, ?, "
        "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
    "upsert_case": (
        "INSERT INTO cases (case_id, org, purpose, subjects, assigned, opened_by, opened_at, "
        "expires_at, approved_by, approver_role, approved_at, closed_at) VALUES (?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, ?, ?) ON CONFLICT (case_id) DO UPDATE SET org = excluded.org, purpose = "
        "excluded.purpose, subjects = excluded.subjects, assigned = excluded.assigned, "
        "opened_by = excluded.opened_by, opened_at = excluded.opened_at, expires_at = "
        "excluded.expires_at, approved_by = excluded.approved_by, approver_role = "
        "excluded.approver_role, approved_at = excluded.approved_at, closed_at = "
        "excluded.closed_at"
    ),
    "upsert_accessor": (
        "INSERT INTO accessors (accessor, org, role, active) VALUES (?, ?, ?, ?) ON CONFLICT "
        "(accessor) DO UPDATE SET org = excluded.org, role = excluded.role, active = "
        "excluded.active"
    ),
    "delete_index": "DELETE FROM record_index WHERE subject_ref = ?",
    "delete_records": "DELETE FROM records WHERE subject_ref = ?",
    "records": (
        "SELECT record_id, collection, subject_ref, created_at, body FROM records WHERE "
        "subject_ref = ? AND collection = ? ORDER BY created_at, record_id"
    ),
    "record": (
        "SELECT record_id, collection, subject_ref, created_at, body FROM records WHERE "
        "record_id = ?"
    ),
    "lookup": (
        "SELECT subject_ref, record_id FROM record_index WHERE token = ? ORDER BY record_id LIMIT ?"
    ),
    "subject_refs": (
        "SELECT DISTINCT subject_ref FROM records WHERE collection = ? ORDER BY subject_ref"
    ),
    "subject_refs_limit": (
        "SELECT DISTINCT subject_ref FROM records WHERE collection = ? ORDER BY subject_ref LIMIT ?"
    ),
    "case": (
        "SELECT case_id, org, purpose, subjects, assigned, opened_by, opened_at, expires_at, "
        "approved_by, approver_role, approved_at, closed_at FROM cases WHERE case_id = ?"
    ),
    "accessor": "SELECT accessor, org, role, active FROM accessors WHERE accessor = ?",
    "accessors": "SELECT accessor, org, role, active FROM accessors ORDER BY accessor",
    "events": (
        "SELECT seq, ts, accessor, org, role, action, collection, fields, subject, purpose, "
        "case_id, decision, reason, count, break_glass, justification FROM events WHERE seq >= "
        "? AND seq < ? ORDER BY seq LIMIT ?"
    ),
    "mark": "?",
    # Events counted by quarter hour (as written: the UTC offset is the text's last 6
    # characters) and by what the dashboard charts; every real UTC offset is a whole number of
    # quarter hours, so each bucket falls on one local day of any time zone.
    "event_counts": (
        "SELECT substr(ts, 1, 14) || CAST(CAST(substr(ts, 15, 2) AS INTEGER) / 15 AS TEXT), "
        "substr(ts, length(ts) - 5), org, purpose, action, decision, break_glass, COUNT(*) "
        "FROM events WHERE seq >= ? AND seq < ? GROUP BY 1, 2, 3, 4, 5, 6, 7"
    ),
    "subject_events": (
        "SELECT seq, ts, accessor, org, role, action, collection, fields, subject, purpose, "
        "case_id, decision, reason, count, break_glass, justification FROM events WHERE "
        "subject = ? ORDER BY seq DESC LIMIT ?"
    ),
    "accessor_events": (
        "SELECT seq, ts, accessor, org, role, action, collection, fields, subject, purpose, "
        "case_id, decision, reason, count, break_glass, justification FROM events WHERE "
        "accessor = ? ORDER BY seq DESC LIMIT ?"
    ),
    "credential": (
        "SELECT digest, kind, principal, created_at, expires_at FROM credentials WHERE digest = ?"
    ),
    "insert_credential": (
        "INSERT INTO credentials (digest, kind, principal, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?)"
    ),
    "set_version": "UPDATE meta SET value = ? WHERE key = 'schema_version'",
    "delete_credential": "DELETE FROM credentials WHERE digest = ?",
    "delete_expired_credentials": "DELETE FROM credentials WHERE expires_at < ?",
    "insert_bundle": (
        "INSERT INTO ledger_bundles (seq, n, tops, hashes, entries) VALUES (?, ?, ?, ?, ?)"
    ),
    "next_entry": (
        "SELECT COALESCE((SELECT seq + n FROM ledger_bundles ORDER BY seq DESC LIMIT 1), 0)"
    ),
    "ledger_rows": (
        "SELECT seq, n, entries, hashes, tops FROM ledger_bundles WHERE seq >= COALESCE((SELECT "
        "MAX(seq) FROM ledger_bundles WHERE seq <= ?), 0) AND seq < ? ORDER BY seq LIMIT ?"
    ),
    "bundle_at": (
        "SELECT seq, n, hashes FROM ledger_bundles WHERE seq <= ? ORDER BY seq DESC LIMIT 1"
    ),
    "bundle_tops_at": (
        "SELECT seq, n, tops FROM ledger_bundles WHERE seq <= ? ORDER BY seq DESC LIMIT 1"
    ),
    "subjects_since": (
        "SELECT ts, subject FROM events WHERE accessor = ? AND ts >= ? AND decision = 'allow' "
        "AND subject IS NOT NULL"
    ),
}


_V3_ROWS = "SELECT seq, entry, hashes FROM ledger_entries WHERE seq >= ? ORDER BY seq LIMIT ?"


def _about_query(mark: str, count: int) -> str:
    marks = ", ".join([mark] * count)
    return (
        "SELECT seq, ts, accessor, org, role, action, collection, fields, subject, "  # noqa: S608
        "purpose, case_id, decision, reason, count, break_glass, justification FROM events "
        f"WHERE subject IN ({marks}) AND seq >= {mark} AND seq < {mark} ORDER BY seq"
    )


def _tokens_query(mark: str, count: int) -> str:
    marks = ", ".join([mark] * count)
    return (
        "SELECT token, subject_ref, record_id FROM record_index "  # noqa: S608
        f"WHERE token IN ({marks}) ORDER BY token, record_id"
    )


def statements(placeholder: str) -> dict[str, str]:
    """Return the shared statements with ``?`` replaced by the driver's ``placeholder``."""
    return {name: sql.replace("?", placeholder) for name, sql in _DML.items()}


class SQLReads(ABC):
    """The read half of :class:`~custodes.store.Store`, over any driver that runs a query.

    It also holds :meth:`migrate`, the same on every backend but for its DDL and locking.
    """

    _sql: dict[str, str]
    _ddl: tuple[str, ...]
    _tip: tuple[int, tuple[Node, ...]] | None = None
    _EVENT_CHUNK = 1000
    _BUNDLE_CHUNK = 64
    _CHUNK_ENTRIES = 32_768
    _TOKEN_CHUNK = 500

    @abstractmethod
    def _fetch(self, op: str, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run a query and return all rows; raise StoreError naming ``op`` on failure."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """Open a write transaction (see :meth:`custodes.store.Store.transaction`)."""

    @abstractmethod
    def _schema_version(self) -> int | None:
        """Return the stored schema version, or ``None`` for an empty database."""

    @abstractmethod
    def _lock_schema(self, tx: Any) -> None:
        """Serialize concurrent migrations inside ``tx``."""

    def migrate(self) -> None:
        """Create the tables, indexes and triggers if they do not exist yet (idempotent).

        Raises:
            StoreError: the database is of a newer schema version, or the backend failed.
        """
        with self.transaction() as tx:
            self._lock_schema(tx)
            version = self._schema_version()
            if version == SCHEMA_VERSION:
                return
            if version in (2, 3):  # one ledger row per entry: rewrite as bundles of one
                for statement in self._ddl:
                    tx._run("upgrade the schema", statement, ())
                self._bundle_rows_of(tx)
                tx._run("upgrade the schema", self._sql["set_version"], (str(SCHEMA_VERSION),))
                return
            if version is not None and version < SCHEMA_VERSION:
                raise StoreError(
                    f"the database has pre-release schema version {version}, whose ledger "
                    f"layout cannot be upgraded in place; export what you need and create a "
                    f"new vault with 'custodes init'"
                )
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(
                    f"the database has schema version {version}; this custodes supports "
                    f"up to {SCHEMA_VERSION}"
                )
            for statement in self._ddl:
                tx._run("create the schema", statement, ())

    def _bundle_rows_of(self, tx: Any) -> None:
        """Move a version-3 ledger (``ledger_entries``: one row per entry) into bundles of one.

        A bundle of one entry holds exactly what its row held (the entry bytes; its leaf and
        completed-subtree hashes), so nothing is recomputed: a row edited before the upgrade is
        still found by verification at its index. The old table goes in the same transaction.
        """
        sql = _V3_ROWS.replace("?", self._sql["mark"])
        pos = 0
        while rows := tx._fetch("read the version-3 ledger", sql, (pos, self._EVENT_CHUNK * 10)):
            bundles = [single_bundle(int(seq), bytes(e), bytes(h)) for seq, e, h in rows]
            tx._run_many("rewrite the ledger as bundles", self._sql["insert_bundle"], bundles)
            pos = int(rows[-1][0]) + 1
        tx._run("drop the version-3 ledger", "DROP TABLE ledger_entries", ())

    def records(self, collection: str, subject_ref: bytes) -> list[StoredRecord]:
        """Return the records of one subject in one collection, oldest first.

        Raises:
            StoreError: the query failed or a stored body is malformed.
        """
        rows = self._fetch("read records", self._sql["records"], (subject_ref, collection))
        return [record_from_row(row) for row in rows]

    def record(self, record_id: str) -> StoredRecord | None:
        """Return one record by id, or ``None``.

        Raises:
            StoreError: the query failed or the stored body is malformed.
        """
        rows = self._fetch("read a record", self._sql["record"], (record_id,))
        return record_from_row(rows[0]) if rows else None

    def lookup(self, token: bytes, limit: int) -> list[tuple[bytes, str]]:
        """Return up to ``limit`` ``(subject_ref, record_id)`` pairs whose token equals ``token``.

        Raises:
            StoreError: the query failed.
        """
        if limit < 1:
            return []
        rows = self._fetch("look up a token", self._sql["lookup"], (token, limit))
        return [(bytes(ref), str(record_id)) for ref, record_id in rows]

    def lookup_many(
        self, tokens: Sequence[bytes], limit: int
    ) -> dict[bytes, list[tuple[bytes, str]]]:
        """Return, for each of ``tokens`` that has index entries, up to ``limit``
        ``(subject_ref, record_id)`` pairs: :meth:`lookup` for many tokens, one query per
        chunk of them (bulk matching, e.g. tracing a leaked file).

        Raises:
            StoreError: a query failed.
        """
        found: dict[bytes, list[tuple[bytes, str]]] = {}
        if limit < 1:
            return found
        for pos in range(0, len(tokens), self._TOKEN_CHUNK):
            chunk = list(tokens[pos : pos + self._TOKEN_CHUNK])
            sql = _tokens_query(self._sql["mark"], len(chunk))
            for token, ref, record_id in self._fetch("look up tokens", sql, chunk):
                pairs = found.setdefault(bytes(token), [])
                if len(pairs) < limit:
                    pairs.append((bytes(ref), str(record_id)))
        return found

    def subject_refs(self, collection: str, limit: int | None = None) -> list[bytes]:
        """Return the distinct subject refs that have records in ``collection``, in byte order.

        Raises:
            StoreError: the query failed.
        """
        if limit is None:
            rows = self._fetch("list subjects", self._sql["subject_refs"], (collection,))
        elif limit < 1:
            return []
        else:
            sql = self._sql["subject_refs_limit"]
            rows = self._fetch("list subjects", sql, (collection, limit))
        return [bytes(row[0]) for row in rows]

    def case(self, case_id: str) -> Case | None:
        """Return a case by id, or ``None``.

        Raises:
            StoreError: the query failed or the stored subject list is malformed.
        """
        rows = self._fetch("read a case", self._sql["case"], (case_id,))
        return case_from_row(rows[0]) if rows else None

    def accessor(self, accessor_id: str) -> Accessor | None:
        """Return an accessor by id, or ``None``.

        Raises:
            StoreError: the query failed.
        """
        rows = self._fetch("read an accessor", self._sql["accessor"], (accessor_id,))
        return accessor_from_row(rows[0]) if rows else None

    def accessors(self) -> list[Accessor]:
        """Return every accessor, ordered by id.

        Raises:
            StoreError: the query failed.
        """
        rows = self._fetch("list accessors", self._sql["accessors"], ())
        return [accessor_from_row(row) for row in rows]

    def events(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, AccessEvent]]:
        """Yield ``(seq, event)`` for ``start <= seq < stop`` in order, reading in chunks.

        Raises:
            StoreError: a query failed.
        """
        end = _NO_STOP if stop is None else stop
        pos = max(start, 0)
        while pos < end:
            params = (pos, end, self._EVENT_CHUNK)
            rows = self._fetch("read events", self._sql["events"], params)
            for row in rows:
                yield event_from_row(row)
            if len(rows) < self._EVENT_CHUNK:
                return
            pos = int(rows[-1][0]) + 1

    def event_counts(self, start: int = 0, stop: int | None = None) -> list[EventCount]:
        """Return how many events with ``start <= seq < stop`` share each quarter hour, org,
        purpose, action, decision and break-glass flag (what the dashboard charts).

        Raises:
            StoreError: the query failed.
        """
        params = (max(start, 0), _NO_STOP if stop is None else stop)
        rows = self._fetch("count events", self._sql["event_counts"], params)
        return [
            EventCount(
                quarter=_quarter(str(bucket), str(offset)),
                org=str(org),
                purpose=purpose,
                action=str(action),
                decision=str(decision),
                break_glass=bool(glass),
                count=int(n),
            )
            for bucket, offset, org, purpose, action, decision, glass, n in rows
        ]

    def events_about(
        self, subjects: Sequence[str], start: int = 0, stop: int | None = None
    ) -> list[tuple[int, AccessEvent]]:
        """Return the events about any of ``subjects`` (pseudonyms) with ``start <= seq <
        stop``, oldest first.

        Raises:
            StoreError: the query failed.
        """
        wanted = sorted(set(subjects))
        bounds = (max(start, 0), _NO_STOP if stop is None else stop)
        found: list[tuple[int, AccessEvent]] = []
        for pos in range(0, len(wanted), self._TOKEN_CHUNK):
            chunk = wanted[pos : pos + self._TOKEN_CHUNK]
            sql = _about_query(self._sql["mark"], len(chunk))
            found.extend(
                event_from_row(row) for row in self._fetch("read events", sql, (*chunk, *bounds))
            )
        found.sort(key=lambda item: item[0])
        return found

    def subject_events(self, subject: str, limit: int) -> list[tuple[int, AccessEvent]]:
        """Return the newest ``limit`` events about ``subject`` (a ledger pseudonym), newest
        first, as ``(seq, event)`` from the queryable projection.

        Raises:
            StoreError: the query failed.
        """
        rows = self._fetch("read a subject's events", self._sql["subject_events"], (subject, limit))
        return [event_from_row(row) for row in rows]

    def accessor_events(self, accessor: str, limit: int) -> list[tuple[int, AccessEvent]]:
        """Return the newest ``limit`` events of one accessor, newest first.

        Raises:
            StoreError: the query failed.
        """
        rows = self._fetch(
            "read an accessor's events", self._sql["accessor_events"], (accessor, limit)
        )
        return [event_from_row(row) for row in rows]

    def credential(self, digest: bytes) -> Credential | None:
        """Return the stored credential with this digest, or ``None`` (expired ones too: the
        caller compares ``expires_at`` with its clock).

        Raises:
            StoreError: the query failed.
        """
        rows = self._fetch("read a credential", self._sql["credential"], (digest,))
        if not rows:
            return None
        digest_, kind, principal, created, expires = rows[0]
        return Credential(
            digest=bytes(digest_),
            kind=CredentialKind(kind),
            principal=principal,
            created_at=datetime.fromisoformat(created),
            expires_at=datetime.fromisoformat(expires),
        )

    def event_count(self) -> int:
        """Return the size of the ledger: the next sequence number (seqs have no gaps unless
        the store was edited behind custodes' back, which ``custodes ledger verify`` reports).

        Raises:
            StoreError: the query failed.
        """
        return int(self._fetch("count ledger entries", self._sql["next_entry"], ())[0][0])

    def node(self, level: int, idx: int) -> bytes | None:
        """Return the stored ledger node ``(level, idx)``, or ``None``.

        Raises:
            StoreError: the query failed.
        """
        return self.nodes([(level, idx)]).get((level, idx))

    def nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Return the stored ledger nodes among ``keys`` (``(level, idx)`` pairs); absent ones
        are left out.

        Raises:
            StoreError: the query failed.
        """
        return fetch_nodes(self._fetch, self._sql, keys)

    def ledger_rows(
        self, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, bytes, bytes]]:
        """Yield ``(seq, entry, hashes)`` of the stored ledger rows with ``start <= seq <
        stop``, in order, reading in chunks.

        Raises:
            StoreError: a query failed.
        """
        end = _NO_STOP if stop is None else stop
        pos = max(start, 0)
        limit = self._BUNDLE_CHUNK
        while pos < end:
            params = (pos, end, limit)
            rows = self._fetch("read ledger entries", self._sql["ledger_rows"], params)
            for first, count, entries, hashes, tops in rows:
                stored = bytes(hashes), bytes(tops)
                yield from bundle_rows(int(first), int(count), bytes(entries), stored, pos, end)
            if len(rows) < limit:
                return
            pos = int(rows[-1][0]) + int(rows[-1][1])
            # About _CHUNK_ENTRIES entries per query: many small bundles (a vault's reads each
            # commit one) in few queries, and a bounded number of large ones in memory.
            entries_per_bundle = max(1, sum(min(int(r[1]), BUNDLE_MAX) for r in rows) // len(rows))
            limit = max(8, min(1024, self._CHUNK_ENTRIES // entries_per_bundle))

    def subjects_accessed_since(self, accessor_id: str, since: datetime) -> set[str]:
        """Return the subject pseudonyms of allowed events by ``accessor_id`` at or after ``since``.

        Naive datetimes (``since`` or stored) are taken to be UTC.

        Raises:
            StoreError: the query failed.
        """
        params = (accessor_id, since_bound(since))
        rows = self._fetch("read recent subjects", self._sql["subjects_since"], params)
        return subjects_since(rows, since)


class SQLWrites(ABC):
    """The write half (:class:`~custodes.store.StoreTx`), over any driver that runs a statement.

    A transaction object is usable only while its ``with`` block runs.
    """

    _sql: dict[str, str]

    def __init__(self) -> None:
        self._next_seq: int | None = None
        self._edge: list[Node] | None = None
        # The store's cached right edge from its last committed append (single writer fast
        # path); used only when the next seq read under the write lock confirms it.
        self.tip: tuple[int, tuple[Node, ...]] | None = None
        self.active = True
        self.broken: str | None = None

    @abstractmethod
    def _run(self, op: str, sql: str, params: Sequence[Any]) -> int:
        """Run one statement; return its row count; raise StoreError naming ``op``."""

    @abstractmethod
    def _run_many(self, op: str, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``; raise StoreError naming ``op``."""

    @abstractmethod
    def _fetch(self, op: str, sql: str, params: Sequence[Any]) -> list[Any]:
        """Run a query inside the transaction; return all rows; raise StoreError naming ``op``."""

    @abstractmethod
    def _first_seq(self) -> int:
        """Return the next sequence number, serialized against every other writer."""

    def _check(self) -> None:
        if not self.active:
            raise StoreError("this transaction has already ended; open a new one")

    def insert_record(self, record: StoredRecord, index: Sequence[IndexEntry]) -> None:
        """Insert one record and its blind-index entries.

        Raises:
            StoreError: the record id already exists, or the backend failed.
        """
        self.insert_records([(record, index)])

    def insert_records(
        self, items: Sequence[tuple[StoredRecord, Sequence[IndexEntry]]] | EncodedRecords
    ) -> None:
        """Insert many records and their blind-index entries (batched): the items, or their
        :func:`encode_records` made before the transaction began.

        Raises:
            StoreError: a record id or index entry already exists, a value is too long to
                encode, or the backend failed.
        """
        self._check()
        encoded = items if isinstance(items, EncodedRecords) else encode_records(items)
        if not encoded.records:
            return
        self._run_many("insert records", self._sql["insert_record"], encoded.records)
        if encoded.entries:
            self._run_many("insert index entries", self._sql["insert_index"], encoded.entries)

    def append_event(self, event: AccessEvent) -> int:
        """Append one access event and return its sequence number (0-based, gap-free).

        Raises:
            StoreError: the backend failed.
        """
        return self.append_events([event])[0]

    def append_events(self, events: Sequence[AccessEvent] | EncodedEvents) -> list[int]:
        """Append events in order and return their sequence numbers (consecutive): the
        events, or their :func:`encode_events` made before the transaction began.

        Each event's ledger entry is ``event.canonical(seq)``; its columns also go to the
        ``events`` table (the queryable projection that ``ledger verify`` checks against it).

        Raises:
            StoreError: the backend failed.
        """
        self._check()
        encoded = events if isinstance(events, EncodedEvents) else encode_events(events)
        if not encoded.halves:
            return []
        first = self._first_seq() if self._next_seq is None else self._next_seq
        self._next_seq = first
        # Only the positions are filled in here, under the write lock.
        rows = [(first + i, *columns) for i, columns in enumerate(encoded.columns)]
        entries = [
            b'%s"seq":%d,%s' % (head, first + i, tail)
            for i, (head, tail) in enumerate(encoded.halves)
        ]
        seqs = self.append_entries(entries)
        try:
            self._run_many("append events", self._sql["insert_event"], rows)
        except StoreError:
            self.broken = "appending access events failed inside this transaction"
            raise
        return seqs

    def append_entries(self, entries: Sequence[bytes]) -> list[int]:
        """Append raw ledger entries with their Merkle hashes; return their sequence numbers.

        Raises:
            StoreError: the backend failed.
        """
        self._check()
        if not entries:
            return []
        first = self._first_seq() if self._next_seq is None else self._next_seq
        if self._edge is not None:
            edge = self._edge
        elif self.tip is not None and self.tip[0] == first:
            edge = list(self.tip[1])
        else:
            edge = self._read_edge(first)
        # Recomputed from the tables if the batch fails part-way.
        self._next_seq, self._edge = None, None
        bundles: list[tuple[int, int, bytes | Future[bytes], bytes]] = []
        for pos in range(0, len(entries), BUNDLE_MAX):
            part = entries[pos : pos + BUNDLE_MAX]
            packed = pack_entries(part)  # compressed beside the hashing below
            bundles.append((first + pos, len(part), packed, bundle_hashes(edge, first + pos, part)))
        rows = [
            (
                seq,
                count,
                *reversed(split_hashes(seq, count, nodes)),  # tops, then hashes
                packed if isinstance(packed, bytes) else packed.result(),
            )
            for seq, count, packed, nodes in bundles
        ]
        try:
            self._run_many("append ledger entries", self._sql["insert_bundle"], rows)
        except StoreError:
            # Half a batch must never commit, even if the caller swallows this error: the
            # transaction refuses to commit once this is set.
            self.broken = "appending ledger entries failed inside this transaction"
            raise
        self._next_seq, self._edge = first + len(entries), edge
        return list(range(first, first + len(entries)))

    @property
    def tip_after(self) -> tuple[int, tuple[Node, ...]] | None:
        """The ledger's size and right edge after this transaction's appends, if any."""
        if self._next_seq is None or self._edge is None:
            return None
        return self._next_seq, tuple(self._edge)

    def _read_edge(self, size: int) -> list[Node]:
        # The peaks of the current tree are all a new leaf can merge with: O(log n) nodes.
        keys = edge_keys(size)
        found = fetch_nodes(self._fetch, self._sql, keys)
        edge: list[Node] = []
        for level, idx in keys:
            if (level, idx) not in found:
                raise StoreError(
                    f"the ledger hash at level {level}, index {idx} is missing for the "
                    f"{size} stored entries; run 'custodes ledger verify'"
                )
            edge.append((level, idx, found[(level, idx)]))
        return edge

    def put_case(self, case: Case) -> None:
        """Insert a case or replace the stored state of an existing one.

        Raises:
            StoreError: the backend failed.
        """
        self._check()
        self._run("store a case", self._sql["upsert_case"], case_params(case))

    def put_credential(self, credential: Credential) -> None:
        """Store a new credential (its digest only).

        Raises:
            StoreError: the backend failed, or the digest exists already.
        """
        self._check()
        params = (
            credential.digest,
            str(credential.kind),
            credential.principal,
            credential.created_at.isoformat(),
            credential.expires_at.isoformat(),
        )
        self._run("store a credential", self._sql["insert_credential"], params)

    def delete_credential(self, digest: bytes) -> bool:
        """Delete a credential; return whether it existed (so one-time codes are used once).

        Raises:
            StoreError: the backend failed.
        """
        self._check()
        return self._run("delete a credential", self._sql["delete_credential"], (digest,)) > 0

    def delete_expired_credentials(self, now: datetime) -> int:
        """Delete every credential that expired before ``now``; return how many.

        Raises:
            StoreError: the backend failed.
        """
        self._check()
        return self._run(
            "delete expired credentials",
            self._sql["delete_expired_credentials"],
            (now.isoformat(),),
        )

    def put_accessor(self, accessor: Accessor) -> None:
        """Insert an accessor or replace an existing one with the same id.

        Raises:
            StoreError: the backend failed.
        """
        self._check()
        self._run("store an accessor", self._sql["upsert_accessor"], accessor_params(accessor))

    def delete_subject_records(self, subject_ref: bytes) -> int:
        """Delete every record and index entry of a subject; return the number of records.

        Raises:
            StoreError: the backend failed.
        """
        self._check()
        self._run("delete index entries", self._sql["delete_index"], (subject_ref,))
        return self._run("delete records", self._sql["delete_records"], (subject_ref,))
