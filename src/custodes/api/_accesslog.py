"""The service's access log: one line per answered HTTP request, written in batches.

uvicorn's access log builds a ``logging`` record, formats it and flushes the stream for every
request: about a quarter of a millisecond of the interpreter's time per request, a fifth of an
audited read's whole cost (bench/http.py: 683 reads/s with it, 911 without). This one formats a
line with one f-string and hands lines to the stream in batches, at most
:data:`FLUSH_SECONDS` after they were answered (sooner once :data:`FLUSH_BYTES` are waiting).

A line never holds a query string (only the path, which holds no ID number: subjects travel in
request bodies) and never a header, so tokens and cookies stay out of it::

    2026-12-02T21:40:00.123Z 127.0.0.1:51234 "POST /v1/records/identity/get HTTP/1.1" 200 1.4ms

The ledger, not this log, is the record of who accessed what; a crash can lose the last
:data:`FLUSH_SECONDS` of lines.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TextIO

from starlette.types import ASGIApp, Receive, Scope, Send

from custodes.api._observe import observed

__all__ = ["FLUSH_BYTES", "FLUSH_SECONDS", "AccessLog"]

FLUSH_SECONDS = 0.2
FLUSH_BYTES = 64 * 1024


class AccessLog:
    """ASGI middleware writing one line per HTTP request to ``stream``; :meth:`flush` at exit."""

    def __init__(self, app: ASGIApp, *, stream: TextIO) -> None:
        self.app = app
        self._stream = stream
        self._lines: list[str] = []
        self._pending = 0
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await observed(
            self.app,
            scope,
            receive,
            send,
            lambda status, took: self._add(_line(scope, status, took)),
        )

    def _add(self, line: str) -> None:
        self._lines.append(line)
        self._pending += len(line)
        if self._pending >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the lines waiting, if any (called by the timer, and when serving stops)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._lines:
            return
        text, self._lines, self._pending = "".join(self._lines), [], 0
        self._stream.write(text)
        self._stream.flush()


def _line(scope: Scope, status: int, seconds: float) -> str:
    client = scope.get("client")
    peer = f"{client[0]}:{client[1]}" if client else "-"
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    version = scope.get("http_version", "1.1")
    return (
        f'{stamp} {peer} "{scope.get("method", "-")} {_path(scope)} HTTP/{version}" {status} '
        f"{seconds * 1000:.1f}ms\n"
    )


def _path(scope: Scope) -> str:
    """The path as sent (never the query string, which ASGI keeps apart), each byte that is not
    printable ASCII, a space, a quote or a backslash written as ``\\xNN``: a crafted path
    cannot forge a line, split one, or reach a terminal as an escape sequence."""
    raw = scope.get("raw_path")
    if not raw:
        raw = str(scope.get("path", "")).encode("utf-8", "backslashreplace")
    return raw.split(b"?", 1)[0].decode("latin-1").translate(_ESCAPES)


_ESCAPES = {
    code: f"\\x{code:02x}" for code in range(256) if not 0x21 <= code <= 0x7E or chr(code) in '"\\'
}
