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
    return app


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
    while True:
        pending: list[tuple[socket.socket, list[Any], list[Any]]] = []
        for key, _ in selector.select():
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
    args = parser.parse_args()
    options: dict[str, Any] = {
        "home": str(args.home),
        "no_mmap": args.no_mmap,
        "checkpoint_every": args.checkpoint_every,
        "writer": "",
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
        command += ["--checkpoint-every", str(args.checkpoint_every)]
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
