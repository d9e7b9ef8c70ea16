"""The service's access log: a line per request, batched, never a query string or a header,
and no way for a crafted path to forge a line."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import pytest

from custodes.api._accesslog import FLUSH_BYTES, FLUSH_SECONDS, AccessLog

LINE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1:5555 "(\S+) (\S+) HTTP/1\.1" '
    r"(\d{3}) \d+\.\dms$"
)


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/boom":
        raise RuntimeError("the app failed before answering")
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _scope(raw_path: bytes, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
        "http_version": "1.1",
        "client": ("127.0.0.1", 5555),
        "headers": [(b"authorization", b"Bearer cst_secret"), (b"cookie", b"s=1")],
    }


async def _request(log: AccessLog, raw_path: bytes, query: bytes = b"") -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    try:
        await log(_scope(raw_path, query), receive, send)
    except RuntimeError:
        pass


def test_one_line_per_request_without_query_or_headers() -> None:
    stream = io.StringIO()

    async def run() -> None:
        log = AccessLog(_app, stream=stream)
        await _request(log, b"/v1/ledger/consistency", b"old=1&new=2")
        await _request(log, b"/boom")
        assert stream.getvalue() == ""  # batched: nothing written yet
        await asyncio.sleep(FLUSH_SECONDS * 2)

    asyncio.run(run())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (LINE.match(line) for line in lines)
    assert first is not None and first.groups() == ("GET", "/v1/ledger/consistency", "204")
    assert second is not None and second.group(3) == "500"  # the app raised: a 500 went out
    text = stream.getvalue()
    assert "old=1" not in text and "cst_secret" not in text and "s=1" not in text


@pytest.mark.parametrize(
    "raw_path",
    [b'/v1/x" 200 0.1ms\n2026-01-01T00:00:00.000Z fake', b"/v1/\x1b[2Jclear", b"/v1/\xe4\xbd\xa0"],
    ids=["forged-line", "terminal-escape", "non-ascii"],
)
def test_a_crafted_path_cannot_forge_or_break_a_line(raw_path: bytes) -> None:
    stream = io.StringIO()
    log = AccessLog(_app, stream=stream)

    async def run() -> None:
        await _request(log, raw_path)
        log.flush()

    asyncio.run(run())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert LINE.match(lines[0]), lines[0]
    assert lines[0].isascii() and lines[0].isprintable()


def test_a_full_batch_is_written_at_once() -> None:
    stream = io.StringIO()
    log = AccessLog(_app, stream=stream)
    path = b"/v1/" + b"a" * 1000

    async def run() -> int:
        for _ in range(FLUSH_BYTES // 1000 + 1):
            await _request(log, path)
        return len(stream.getvalue().splitlines())  # before any timer could fire

    written = asyncio.run(run())
    assert written >= FLUSH_BYTES // 1100
