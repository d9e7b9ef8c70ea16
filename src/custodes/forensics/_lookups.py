"""Bulk blind-index lookups for tracing, and a helper process that does half of them.

:func:`lookup_values` resolves many values of one indexed field to subjects: keyed tokens, exact
lookups in token order, pseudonyms of the subjects found. Its cost is HMACs and B-tree searches,
which hold CPython's interpreter lock, so a thread does not help; a second process does. A
:class:`LookupHelper` is that process: ``python -m custodes.forensics._lookups``, started before
the leaked file is read (its start-up overlaps the reading), given half of the values, and
answering while this process looks up the other half.

The helper opens the vault the way any ``custodes`` command does: its own store connection (a
connection never crosses a ``fork``) and the blind-index keys from the key file, so no key
crosses the pipe. It reads one request, answers once and exits; it never writes. Whatever goes
wrong in it (it cannot start, dies, answers late or garbled), the parent looks the values up
itself: the result is the same, only slower.

Pipe protocol: parent to helper, the vault's :class:`~custodes.config.Settings` (a pickle),
then the request, ``{"collection", "field", "values"}`` as one line of JSON; helper to parent,
an 8-byte length, then for the ``n`` values found three blocks: their positions in ``values``
(``n`` unsigned 32-bit integers, this machine's byte order), their subject refs (32 bytes
each) and their pseudonyms (32 hex characters each). The parent unpickles nothing.
"""

from __future__ import annotations

import json
import os
import pickle
import select
import struct
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from custodes.config import Settings
    from custodes.crypto import BlindIndex
    from custodes.store import Store

__all__ = ["LookupHelper", "lookup_values"]

LOOKUP_CHUNK = 5_000  # tokens per store call
_LENGTH = struct.Struct(">Q")
_REF = 32  # bytes of a subject ref
_NAME = 32  # hex characters of a pseudonym
_RECORD = array("I").itemsize + _REF + _NAME  # bytes per value found, over the three blocks
_WAIT_SECONDS = 300.0  # a helper this late is stuck: stop it and do its half here


def lookup_values(
    store: Store,
    index: BlindIndex,
    collection: str,
    field_name: str,
    values: Sequence[str],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, bytes], dict[bytes, str]]:
    """The one subject whose ``collection.field`` equals each value, for the values that have
    exactly one (a phone shared by a household names nobody in particular), and the pseudonym
    of each subject found (by subject ref).

    Tokens are looked up in token order, so that neighbouring lookups share index pages.
    ``progress`` is called as ``(done, total)``.

    Raises:
        StoreError: the store could not be read.
    """
    value_of = dict(zip(index.tokens(collection, field_name, values), values, strict=True))
    ordered = sorted(value_of)  # bytes sort faster than (token, value) pairs
    total = len(ordered)
    found: dict[str, bytes] = {}
    for start in range(0, total, LOOKUP_CHUNK):
        hits_by_token = store.lookup_many(ordered[start : start + LOOKUP_CHUNK], 8)
        for token, hits in hits_by_token.items():
            first = hits[0][0]
            if len(hits) == 1 or all(ref == first for ref, _ in hits):
                found[value_of[token]] = first
        if progress is not None:
            progress(min(start + LOOKUP_CHUNK, total), total)
    refs = list(set(found.values()))
    return found, dict(zip(refs, index.pseudonyms_of_refs(refs), strict=True))


class LookupHelper:
    """A helper process for one :func:`lookup_values` call (see the module's docstring).

    Use as a context manager, so that a helper that was not needed after all is stopped.
    """

    def __init__(self, settings: Settings) -> None:
        self._values: Sequence[str] = ()
        try:
            self._process: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", "custodes.forensics._lookups"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            self._write(pickle.dumps(settings))
        except OSError:
            self._process = None

    @property
    def running(self) -> bool:
        """Whether the helper started and has not failed or been stopped."""
        return self._process is not None

    def submit(self, collection: str, field_name: str, values: Sequence[str]) -> None:
        """Ask the helper to look up ``values`` (:func:`lookup_values`); see :meth:`result`."""
        self._values = values
        request = {"collection": collection, "field": field_name, "values": list(values)}
        self._write(json.dumps(request).encode() + b"\n")

    def result(self) -> tuple[dict[str, bytes], dict[bytes, str]] | None:
        """The helper's answer, as :func:`lookup_values` gives it, or ``None`` if it failed."""
        process = self._process
        if process is None or process.stdout is None:
            return None
        try:
            payload = _read_framed(process.stdout.fileno(), time.monotonic() + _WAIT_SECONDS)
        finally:
            self.close()
        if payload is None or len(payload) % _RECORD:
            return None
        return _decode(payload, self._values)

    def close(self) -> None:
        """Stop the helper (if it still runs) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass  # a broken pipe to a helper that already left
        if process.poll() is None:
            process.kill()
        process.wait()

    def _write(self, data: bytes) -> None:
        process = self._process
        if process is None or process.stdin is None:
            return
        try:
            process.stdin.write(data)
            process.stdin.flush()
        except OSError:  # the helper died: the caller will do the work itself
            self.close()

    def __enter__(self) -> LookupHelper:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _decode(
    payload: bytes, values: Sequence[str]
) -> tuple[dict[str, bytes], dict[bytes, str]] | None:
    count = len(payload) // _RECORD
    positions = array("I")
    positions.frombytes(payload[: count * positions.itemsize])
    if count and max(positions) >= len(values):
        return None
    start = count * positions.itemsize
    refs = [payload[at : at + _REF] for at in range(start, start + count * _REF, _REF)]
    start += count * _REF
    try:
        text = payload[start:].decode("ascii")
    except UnicodeDecodeError:
        return None
    names = [text[at : at + _NAME] for at in range(0, count * _NAME, _NAME)]
    found = dict(zip(map(values.__getitem__, positions), refs, strict=True))
    return found, dict(zip(refs, names, strict=True))


def _encode(values: Sequence[str], found: dict[str, bytes], pseudonyms: dict[bytes, str]) -> bytes:
    hits = [(pos, ref) for pos, value in enumerate(values) if (ref := found.get(value)) is not None]
    positions = array("I", [pos for pos, _ in hits])
    refs = b"".join([ref for _, ref in hits])
    names = "".join([pseudonyms[ref] for _, ref in hits]).encode("ascii")
    return positions.tobytes() + refs + names


def _read_framed(fd: int, deadline: float) -> bytes | None:
    """The payload the helper framed, or ``None`` if it left early, or is late."""
    chunks: list[bytes] = []
    received = 0
    want: int | None = None
    while want is None or received < want + _LENGTH.size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return None
        chunks.append(chunk)
        received += len(chunk)
        if want is None and received >= _LENGTH.size:
            want = _LENGTH.unpack(b"".join(chunks)[: _LENGTH.size])[0]
    data = b"".join(chunks)
    if want is None or len(data) != want + _LENGTH.size:
        return None
    return data[_LENGTH.size :]


def _serve() -> None:
    """The helper: read the settings and one request from stdin, answer on stdout, exit."""
    from custodes.crypto import BlindIndex
    from custodes.crypto._keys import LocalKeyFile
    from custodes.store import open_store

    stdin = sys.stdin.buffer
    settings = pickle.load(stdin)  # noqa: S301 - written by our parent process, over a pipe
    root = LocalKeyFile.open(settings.root_key_path).root_keys(settings.tenant)
    index = BlindIndex(
        tenant=settings.tenant, index_key=root.index_key, pseudonym_key=root.pseudonym_key
    )
    store = open_store(settings.store)
    try:
        request = json.loads(stdin.readline())
        collection, field_name, values = request["collection"], request["field"], request["values"]
        found, pseudonyms = lookup_values(store, index, collection, field_name, values)
    finally:
        store.close()
    payload = _encode(values, found, pseudonyms)
    sys.stdout.buffer.write(_LENGTH.pack(len(payload)) + payload)
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    _serve()
