"""Experimental multi-process servers for ``bench/http.py --server`` (NOT shippable: measuring).

Neither keeps what ``custodes serve`` guarantees across processes: daily subject limits, rate
limits, the portal's sign-in throttle and the data-key cache are per process, and each process
runs its own streaming detector. They answer one question: what would more processes give on
this machine, before any of that is built (docs/benchmarks.md, HTTP, 2026-12-06).

``workers``: uvicorn with N worker processes, each with its own vault on the home (every
process writes the SQLite database). ``single-writer``: the same workers, but each vault's
event commits go over a Unix socket to one writer process, which commits everything pending
from all workers in one transaction (the workers wait for the answer, blocking).

    python bench/http.py --keep DIR --no-access-log --server \\
        "python bench/experiments/http_servers.py workers {home} {port} --workers 2 --no-mmap"

``--no-mmap`` reads the database without SQLite's memory map; ``--checkpoint-every S`` turns
the WAL auto-checkpoint off and runs a passive checkpoint every S seconds in a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import marshal
import os
import selectors
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_HEADER = struct.Struct("!I")
_ENV = "CUSTODES_EXPERIMENT"  # the options, handed to uvicorn's worker processes


def _tune(conn: sqlite3.Connection, path: Path, options: dict[str, Any]) -> None:
    if options["no_mmap"]:
        conn.execute("PRAGMA mmap_size=0")
    every = options["checkpoint_every"]
    if every:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        threading.Thread(target=_checkpoints, args=(path, every), daemon=True).start()


def _checkpoints(path: Path, every: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    while True:
        time.sleep(every)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            continue


def _frame(value: object) -> bytes:
    # marshal: plain tuples of bytes, str, int and None, between processes of one experiment.
    data = marshal.dumps(value)
    return _HEADER.pack(len(data)) + data


def _read_frame(stream: Any) -> Any:
    (size,) = _HEADER.unpack(stream.read(_HEADER.size))
    return marshal.loads(stream.read(size))  # noqa: S302


def app_factory() -> Any:
    """Build the app in a worker process (uvicorn calls this; the options come from the env)."""
    from custodes.api import create_app
    from custodes.config import Settings
    from custodes.errors import StoreError
    from custodes.model import AccessEvent
    from custodes.store import encode_events

    options = marshal.loads(bytes.fromhex(os.environ[_ENV]))  # noqa: S302
    app = create_app(Settings.load(Path(options["home"])))
    vault = app.state.service.vault
    store = vault.store
    _tune(store._conn, store.path, options)
    if options["writer"]:
        conn = socket.socket(socket.AF_UNIX)
        conn.connect(options["writer"])
        answers = conn.makefile("rb")

        def submit(events: Sequence[AccessEvent]) -> list[int]:
            encoded = encode_events(events)
            conn.sendall(_frame((encoded.halves, encoded.columns)))
            status, value = _read_frame(answers)
            if status != "ok":
                raise StoreError(value)
            return list(value)

        vault._events_writer.submit = submit  # type: ignore[method-assign]
        if options["async_commit"]:
            _commit_reads_async(vault, _AsyncWriter(options["writer"]))
    return app


class _AsyncWriter:
    """The writer, from the event loop: frames go out at once, answers come back in order."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._out: asyncio.StreamWriter | None = None
        self._waiting: deque[asyncio.Future[Any]] = deque()

    async def submit(self, halves: list[Any], columns: list[Any]) -> list[int]:
        from custodes.errors import StoreError

        if self._out is None:
            reader, self._out = await asyncio.open_unix_connection(self._path)
            asyncio.get_running_loop().create_task(self._answers(reader))
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)
        self._out.write(_frame((halves, columns)))
        status, value = await answer
        if status != "ok":
            raise StoreError(value)
        return list(value)

    async def _answers(self, reader: asyncio.StreamReader) -> None:
        while True:
            (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
            self._waiting.popleft().set_result(marshal.loads(await reader.readexactly(size)))  # noqa: S302


class _Deferred:
    def __init__(self, *args: Any) -> None:
        self.args = args


def _commit_reads_async(vault: Any, writer: _AsyncWriter) -> None:
    """Let the record route await a read's commit instead of blocking the loop on it.

    ``Vault.get`` is split at the commit here, by hand (no per-accessor serialization across
    the await, no integrity-failure event): enough to measure, nothing to ship.
    """
    from custodes.api import _routes_records
    from custodes.model import Action
    from custodes.store import encode_events

    blocking_get = vault.get
    blocking_call = _routes_records.vault_call

    async def get(access: Any, collection: str, subject: str, fields: Any) -> Any:
        coll = vault.schema.collection(collection)
        wanted = vault._check_fields(coll, fields)
        subj = vault._subject(subject)
        now = vault._clock()
        decision = vault._decide(access, Action.GET, coll.name, wanted, subj, now)
        if not decision.allowed:
            return blocking_get(access, collection, subject, fields)
        stored = vault.store.records(coll.name, subj.ref)
        records = vault._open_records(stored, subj.ref, decision.fields)
        event = vault._event(
            access, Action.GET, coll.name, decision.fields, subj, decision, len(records), now
        )
        encoded = encode_events([event])
        seqs = await writer.submit(encoded.halves, encoded.columns)
        vault._committed(seqs, [event])
        vault._note_subject(access.principal.accessor, event)
        return records

    async def vault_call(service: Any, caller: Any, call: Any) -> Any:
        if not service.inline_calls:
            return await blocking_call(service, caller, call)
        result = call()
        return await get(*result.args) if isinstance(result, _Deferred) else result

    vault.get = _Deferred
    _routes_records.vault_call = vault_call


def _writer(home: Path, path: str, options: dict[str, Any]) -> None:
    """Commit what the workers send: everything pending from all of them in one transaction."""
    from custodes.config import Settings
    from custodes.store import open_store
    from custodes.store._protocol import EncodedEvents

    store = open_store(Settings.load(home).store)
    _tune(store._conn, store.path, options)  # type: ignore[attr-defined]
    selector = selectors.DefaultSelector()
    listener = socket.socket(socket.AF_UNIX)
    Path(path).unlink(missing_ok=True)
    listener.bind(path)
    listener.listen(64)
    selector.register(listener, selectors.EVENT_READ)
    buffers: dict[socket.socket, bytes] = {}
    print("writer ready", flush=True)
    linger = options["linger"]
    while True:
        pending: list[tuple[socket.socket, list[Any], list[Any]]] = []
        ready = selector.select()
        if linger:  # wait a little for more, so that one transaction holds more reads
            time.sleep(linger)
            ready = selector.select(0)
        for key, _ in ready:
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if sock is listener:
                conn, _ = listener.accept()
                selector.register(conn, selectors.EVENT_READ)
                buffers[conn] = b""
                continue
            data = sock.recv(1 << 20)
            if not data:
                selector.unregister(sock)
                sock.close()
                continue
            buffer = buffers[sock] + data
            while len(buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer)
                if len(buffer) < _HEADER.size + size:
                    break
                halves, columns = marshal.loads(buffer[_HEADER.size : _HEADER.size + size])  # noqa: S302
                buffer = buffer[_HEADER.size + size :]
                pending.append((sock, halves, columns))
            buffers[sock] = buffer
        if not pending:
            continue
        answers: list[tuple[socket.socket, object]] = []
        try:
            with store.transaction() as tx:
                seqs = tx.append_events(
                    EncodedEvents(
                        [h for _, hs, _ in pending for h in hs],
                        [c for _, _, cs in pending for c in cs],
                    )
                )
            pos = 0
            for sock, halves, _ in pending:
                answers.append((sock, ("ok", seqs[pos : pos + len(halves)])))
                pos += len(halves)
        except Exception as exc:  # every waiting worker gets the failure
            answers = [(sock, ("err", str(exc))) for sock, _, _ in pending]
        for sock, answer in answers:
            sock.sendall(_frame(answer))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=("workers", "single-writer", "writer"))
    parser.add_argument("home", type=Path)
    parser.add_argument("port", type=int)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-mmap", action="store_true")
    parser.add_argument("--checkpoint-every", type=float, default=0.0)
    parser.add_argument("--socket", default="")
    parser.add_argument("--async-commit", action="store_true", help="single-writer: await it")
    parser.add_argument("--linger", type=float, default=0.0, help="writer: wait for more (s)")
    args = parser.parse_args()
    options: dict[str, Any] = {
        "home": str(args.home),
        "no_mmap": args.no_mmap,
        "checkpoint_every": args.checkpoint_every,
        "writer": "",
        "async_commit": args.async_commit,
        "linger": args.linger,
    }
    if args.mode == "writer":
        _writer(args.home, args.socket, options)
        return
    writer = None
    if args.mode == "single-writer":
        options["writer"] = str(args.home / f"experiment-writer-{args.port}.sock")
        command = [sys.executable, __file__, "writer", str(args.home), str(args.port)]
        command += ["--socket", options["writer"]]
        command += ["--no-mmap"] if args.no_mmap else []
        command += ["--checkpoint-every", str(args.checkpoint_every), "--linger", str(args.linger)]
        writer = subprocess.Popen(command, stdout=subprocess.PIPE)  # noqa: S603
        assert writer.stdout is not None
        writer.stdout.readline()
    os.environ[_ENV] = marshal.dumps(options).hex()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import uvicorn

    try:
        uvicorn.run(
            "http_servers:app_factory",
            factory=True,
            host="127.0.0.1",
            port=args.port,
            workers=args.workers,
            access_log=False,
            log_level="warning",
            server_header=False,
            proxy_headers=False,
        )
    finally:
        if writer is not None:
            writer.terminate()


if __name__ == "__main__":
    main()
