"""The record routes' lean path answers exactly as FastAPI's own handling would.

Every request below is sent twice to the same app: once as shipped (well-formed requests take
the lean path of ``custodes.api._lean``) and once with the lean path switched off, so that
FastAPI handles it end to end. Status, body and what the ledger records must be the same. A
second test checks that the lean path is really taken, and only for well-formed requests.
"""

from __future__ import annotations

import json
from typing import Any

import fastapi.routing
import pytest

from custodes.api import _lean
from tests.api.conftest import PEOPLE, Api

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


def _send(api: Api, path: str, who: str | None, headers: dict[str, str], body: bytes) -> Any:
    sent = dict(headers)
    if who == "forged":
        sent["Authorization"] = "Bearer cst_" + "A" * 43
    elif who is not None:
        sent.update(api.headers(who))
    before = len(api.events())
    response = api.client.post(path, content=body, headers=sent)
    events = [
        (e.accessor, e.action, e.collection, e.fields, e.subject, e.purpose, e.decision, e.count)
        for e in api.events()[before:]
    ]
    try:
        answer = response.json()
    except ValueError:
        answer = response.text
    return response.status_code, answer, events


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
