"""The record routes' lean path and the express lane answer exactly as FastAPI's own handling.

Every request below is sent twice to the same app: once as shipped (well-formed requests take
the express lane of ``custodes.api._express``, which answers them through the lean path of
``custodes.api._lean``) and once with both switched off, so that FastAPI and custodes'
middleware handle it end to end. Status, headers, body, what the ledger records and what the
metrics count must be the same. Further tests check that the lane is really taken, and only for
well-formed requests.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import fastapi.routing
import pytest
from starlette.testclient import TestClient

from custodes.api import _lean
from custodes.api._limits import BodyLimit
from custodes.config import StoreSettings
from custodes.sim import generate_people
from tests.api.conftest import DEFAULT_API_TOML, PEOPLE, Api, build_api

GET = "/v1/records/identity/get"
FIND = "/v1/records/identity/find"
JSON = {"Content-Type": "application/json"}


def _get_body(person: int = 0, **extra: Any) -> bytes:
    body = {"subject": PEOPLE[person].id_number, "purpose": "identity_check", **extra}
    return json.dumps(body).encode()


# (name, path, who, extra headers, raw body)
CASES: list[tuple[str, str, str | None, dict[str, str], bytes]] = [
    ("valid read", GET, "duty-1", JSON, _get_body(3)),
    (
        "charset in the content type",
        GET,
        "duty-1",
        {"Content-Type": "application/json; charset=utf-8"},
        _get_body(4),
    ),
    ("upper-case content type", GET, "duty-1", {"Content-Type": "Application/JSON"}, _get_body(5)),
    ("named fields", GET, "duty-1", JSON, _get_body(6, fields=["name"])),
    ("a field beyond the grant", GET, "duty-1", JSON, _get_body(7, fields=["phone"])),
    ("wrong role", GET, "clerk-1", JSON, _get_body(8)),
    ("no credentials", GET, None, JSON, _get_body(9)),
    ("no credentials, invalid body", GET, None, JSON, b'{"subject": 1}'),
    ("forged token", GET, "forged", JSON, _get_body(10)),
    ("text/plain", GET, "duty-1", {"Content-Type": "text/plain"}, _get_body(11)),
    ("+json subtype", GET, "duty-1", {"Content-Type": "application/x+json"}, _get_body(12)),
    ("no content type", GET, "duty-1", {}, _get_body(13)),
    ("empty body", GET, "duty-1", JSON, b""),
    ("not JSON", GET, "duty-1", JSON, b'{"subject": '),
    ("not UTF-8", GET, "duty-1", JSON, b'{"subject": "\xff"}'),
    ("a list", GET, "duty-1", JSON, b"[]"),
    ("deeply nested", GET, "duty-1", JSON, b"[" * 100_000 + b"]" * 100_000),
    ("unknown field", GET, "duty-1", JSON, _get_body(14, colour="red")),
    ("wrong type", GET, "duty-1", JSON, b'{"subject": "x", "purpose": 5}'),
    ("missing purpose", GET, "duty-1", JSON, json.dumps({"subject": "x"}).encode()),
    ("malformed ID number", GET, "duty-1", JSON, b'{"subject": "1", "purpose": "identity_check"}'),
    ("collection name off the pattern", "/v1/records/Identity/get", "duty-1", JSON, _get_body(15)),
    ("unknown collection", "/v1/records/nothing/get", "duty-1", JSON, _get_body(16)),
    (
        "find",
        FIND,
        "inv-1",
        JSON,
        json.dumps(
            {"field": "id_number", "value": PEOPLE[17].id_number, "purpose": "investigation"}
        ).encode(),
    ),
    ("find, invalid", FIND, "inv-1", JSON, b'{"field": "id_number"}'),
    ("put, invalid", "/v1/records/identity", "reg-1", JSON, b'{"subject": "x", "values": {}}'),
]


COUNTED = (
    "custodes_http_requests_total",
    "custodes_http_request_duration_seconds_count",
    "custodes_decisions_total",
)
# The answer's headers that must not depend on the path taken (all but the date).
HEADERS = ("content-type", "content-length", "www-authenticate", "retry-after", "allow")


def counted(api: Api) -> Counter[tuple[str, ...]]:
    """What the app's metrics count so far: requests by labels, decisions by labels."""
    found: Counter[tuple[str, ...]] = Counter()
    for metric in api.app.state.service.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name in COUNTED:
                labels = tuple(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[(sample.name, *labels)] += int(sample.value)
    return found


def _send(api: Api, path: str, who: str | None, headers: dict[str, str], body: bytes) -> Any:
    sent = dict(headers)
    if who == "forged":
        sent["Authorization"] = "Bearer cst_" + "A" * 43
    elif who is not None:
        sent.update(api.headers(who))
    before, metrics = len(api.events()), counted(api)
    response = api.client.post(path, content=body, headers=sent)
    events = [
        (e.accessor, e.action, e.collection, e.fields, e.subject, e.purpose, e.decision, e.count)
        for e in api.events()[before:]
    ]
    try:
        answer = response.json()
    except ValueError:
        answer = response.text
    head = {name: response.headers.get(name) for name in HEADERS}
    return response.status_code, head, answer, events, counted(api) - metrics


@pytest.mark.parametrize(
    ("name", "path", "who", "headers", "body"), CASES, ids=[case[0] for case in CASES]
)
def test_the_lean_path_answers_as_fastapi_does(
    sqlite_api: Api,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    path: str,
    who: str | None,
    headers: dict[str, str],
    body: bytes,
) -> None:
    shipped = _send(sqlite_api, path, who, headers, body)
    monkeypatch.setattr(_lean, "enabled", False)
    fastapi_own = _send(sqlite_api, path, who, headers, body)
    assert shipped == fastapi_own, name
    assert shipped[0] < 500, shipped
    assert shipped[4], "the request was not counted in the metrics"


def test_only_well_formed_requests_skip_fastapis_dependency_solving(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    solved: list[str] = []
    original = fastapi.routing.solve_dependencies

    async def counting(*args: Any, **kwargs: Any) -> Any:
        solved.append(kwargs["request"].url.path)
        return await original(*args, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    ok = sqlite_api.post(GET, "duty-1", json.loads(_get_body(20)))
    assert ok.status_code == 200 and solved == []
    bad = sqlite_api.post(GET, "duty-1", {"subject": PEOPLE[20].id_number})
    assert bad.status_code == 422 and solved == [GET]
    # Routes of another shape (a plain ``def`` endpoint in the thread pool) are FastAPI's alone.
    export = sqlite_api.post("/v1/records/identity/export", "duty-1", {"purpose": "identity_check"})
    assert export.status_code == 403 and solved == [GET, "/v1/records/identity/export"]
    monkeypatch.setattr(_lean, "enabled", False)
    again = sqlite_api.post(GET, "duty-1", json.loads(_get_body(20)))
    assert again.status_code == 200 and solved[-1] == GET and len(solved) == 3


def _entered_stack(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths of the requests that went down the full middleware stack (custodes' body limit is
    part of it, and only the express lane skips it)."""
    entered: list[str] = []
    original = BodyLimit.__call__

    async def counting(self: BodyLimit, scope: Any, receive: Any, send: Any) -> None:
        entered.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(BodyLimit, "__call__", counting)
    return entered


def test_the_express_lane_takes_only_well_formed_record_requests(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = _entered_stack(monkeypatch)
    ok = sqlite_api.post(GET, "duty-1", json.loads(_get_body(21)))
    assert ok.status_code == 200 and entered == []
    denied = sqlite_api.post(GET, "clerk-1", json.loads(_get_body(21)))  # refused in the lane
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "access_denied"
    assert entered == []
    bad = sqlite_api.post(GET, "duty-1", {"subject": PEOPLE[21].id_number})
    assert bad.status_code == 422 and entered == [GET]
    health = sqlite_api.get("/v1/health", None)
    assert health.status_code == 200 and entered == [GET, "/v1/health"]
    # No declared length (a chunked body): the body limit counts it, so the stack takes it.
    chunks = iter([_get_body(22)])
    streamed = sqlite_api.client.post(
        GET, content=chunks, headers={**JSON, **sqlite_api.headers("duty-1")}
    )
    assert streamed.status_code == 200 and entered[-1] == GET and len(entered) == 3


def test_a_valid_write_and_find_take_the_express_lane_too(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = _entered_stack(monkeypatch)
    person = generate_people(70, seed=13)[-1]  # not in the shared vault
    values = {"name": person.name, "id_number": person.id_number, "phone": person.phone}
    body = {"subject": person.id_number, "values": values, "purpose": "registration"}
    put = sqlite_api.post("/v1/records/identity", "reg-1", body)
    assert put.status_code == 201 and len(put.json()["record_id"]) == 32
    query = {"field": "phone", "value": person.phone, "purpose": "identity_check"}
    found = sqlite_api.post(FIND, "duty-1", query)
    assert found.status_code == 200, found.text
    assert [r["record_id"] for r in found.json()["records"]] == [put.json()["record_id"]]
    assert entered == []
    last = sqlite_api.events()[-2:]
    assert [(e.accessor, e.action, e.decision) for e in last] == [
        ("reg-1", "put", "allow"),
        ("duty-1", "find", "allow"),
    ]


def test_a_declared_body_over_the_limit_is_refused_by_the_stack(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    store = StoreSettings(backend="sqlite", path=home / "data" / "custodes.db")
    for api in build_api(home, store, api_toml=DEFAULT_API_TOML + "max_body_bytes = 1024\n"):
        entered = _entered_stack(monkeypatch)
        body = _get_body(23, justification="x" * 2000)
        before = len(api.events())
        response = api.client.post(GET, content=body, headers={**JSON, **api.headers("duty-1")})
        assert response.status_code == 413 and entered == [GET]
        assert response.json()["error"]["code"] == "request_too_large"
        assert len(api.events()) == before  # refused before anything was decided


def test_an_unexpected_error_in_the_lane_is_a_500_in_the_one_shape(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(sqlite_api.vault, "_prepare_get", broken)  # under get, on or off the loop
    before = counted(sqlite_api)
    client = TestClient(sqlite_api.app, raise_server_exceptions=False)  # no lifespan: no close
    response = client.post(
        GET, content=_get_body(24), headers={**JSON, **sqlite_api.headers("duty-1")}
    )
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal error (logged on the server)"}
    }
    counts = counted(sqlite_api) - before
    route = "route=/v1/records/{collection}/get"
    assert counts[("custodes_http_requests_total", "method=POST", route, "status=500")] == 1


def _gone_mid_body(api: Api) -> tuple[list[dict[str, Any]], int]:
    """Send a read whose client goes away after 10 bytes of the body, straight to the ASGI
    app; return what the app sent and how many ledger events it added."""
    body = _get_body(25)
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []
    before = len(api.events())

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": GET,
        "raw_path": GET.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"authorization", api.headers("duty-1")["Authorization"].encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8470),
        "state": {},
    }
    asyncio.run(api.app(scope, receive, send))
    return sent, len(api.events()) - before


def test_a_client_gone_mid_body_is_handed_to_the_stack_as_it_came(
    sqlite_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane reads the body before it knows it will answer; what it read (here, a part of
    the body, then the disconnect) reaches the full stack in order, which answers as alone."""
    shipped = _gone_mid_body(sqlite_api)
    monkeypatch.setattr(_lean, "enabled", False)
    assert shipped == _gone_mid_body(sqlite_api)
    assert shipped[1] == 0  # nothing decided, nothing recorded
