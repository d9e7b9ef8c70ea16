"""API tokens and dashboard sessions: stored only as digests; forged, expired, revoked or
orphaned credentials get 401; cookie sessions cannot be ridden cross-site."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import timedelta

import pytest

from custodes.api import Credentials
from custodes.api._guard import SESSION_COOKIE, Caller, Guard
from custodes.errors import AuthenticationError
from custodes.model import Accessor, CredentialKind
from custodes.store import open_store
from tests.api.conftest import PEOPLE, Api, build_api, store_settings_for

READ = "/v1/records/identity/get"
BODY = {"subject": PEOPLE[0].id_number, "purpose": "identity_check"}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def auth_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    """An app of its own: these tests move its clock and deactivate accessors."""
    home = tmp_path_factory.mktemp("tokens") / "home"
    yield from build_api(home, store_settings_for(str(request.param), home, request))


def _issue(api: Api, accessor: str, ttl: timedelta = timedelta(days=1)) -> str:
    credentials: Credentials = api.app.state.service.credentials
    return credentials.issue(CredentialKind.API_TOKEN, accessor, ttl)


def _read_with(api: Api, token: str) -> int:
    response = api.client.post(READ, json=BODY, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def _raw_database(api: Api) -> bytes:
    """Every byte the database holds: the SQLite files, or a pg_dump of the database."""
    store = api.vault.settings.store
    if store.backend == "sqlite":
        files = [store.path, *store.path.parent.glob(store.path.name + "-*")]
        return b"".join(path.read_bytes() for path in files if path.exists())
    assert store.url is not None
    return subprocess.run(
        ["pg_dump", "--data-only", store.url], capture_output=True, check=True
    ).stdout


def test_tokens_are_stored_only_as_digests(auth_api: Api) -> None:
    token = _issue(auth_api, "duty-1")
    assert _read_with(auth_api, token) == 200
    raw = _raw_database(auth_api)
    assert token.encode() not in raw
    assert token.removeprefix("cst_").encode() not in raw
    for issued in auth_api.tokens.values():
        assert issued.removeprefix("cst_").encode() not in raw
    # What is stored is the digest: the credential is found by it.
    stored = open_store(auth_api.vault.settings.store)
    try:
        found = Credentials(store=stored, clock=auth_api.clock).check(
            CredentialKind.API_TOKEN, token
        )
    finally:
        stored.close()
    assert found is not None and found.principal == "duty-1"


def test_a_forged_token_is_401(auth_api: Api) -> None:
    real = auth_api.tokens["duty-1"]
    flipped = real[:-1] + ("A" if real[-1] != "A" else "B")
    for forged in (flipped, "cst_" + "A" * 43, "cst_", real + "x"):
        assert _read_with(auth_api, forged) == 401, forged


def test_an_expired_token_is_401(auth_api: Api) -> None:
    token = _issue(auth_api, "duty-1", timedelta(hours=1))
    assert _read_with(auth_api, token) == 200  # now also in the cache
    auth_api.clock.advance(timedelta(hours=1))
    assert _read_with(auth_api, token) == 401


def test_a_revoked_token_is_401_at_once(auth_api: Api) -> None:
    token = _issue(auth_api, "duty-1")
    assert _read_with(auth_api, token) == 200  # cached now
    credentials: Credentials = auth_api.app.state.service.credentials
    assert credentials.revoke(CredentialKind.API_TOKEN, token)
    assert _read_with(auth_api, token) == 401


def test_a_token_of_a_deactivated_accessor_is_401(auth_api: Api) -> None:
    auth_api.vault.add_accessor(Accessor("duty-7", "police-1", "duty_officer"))
    token = _issue(auth_api, "duty-7")
    auth_api.vault.add_accessor(Accessor("duty-7", "police-1", "duty_officer", active=False))
    response = auth_api.client.post(READ, json=BODY, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "deactivated" in response.json()["error"]["message"]


def test_other_credential_kinds_are_not_api_tokens(auth_api: Api) -> None:
    credentials: Credentials = auth_api.app.state.service.credentials
    pseudonym = auth_api.vault.pseudonym(PEOPLE[0].id_number)
    subject_session = credentials.issue(CredentialKind.SUBJECT_SESSION, pseudonym, timedelta(1))
    code = credentials.issue(CredentialKind.PORTAL_CODE, pseudonym, timedelta(minutes=5))
    for secret in (subject_session, code, "eyJhbGciOiJub25lIn0.e30."):
        assert _read_with(auth_api, secret) == 401


@pytest.mark.parametrize("header", ["Basic ZHV0eTpwdw==", "Bearer", "Bearer  ", "cst_x"])
def test_a_malformed_authorization_header_is_401(auth_api: Api, header: str) -> None:
    response = auth_api.client.post(READ, json=BODY, headers={"Authorization": header})
    assert response.status_code == 401


def _session(api: Api, accessor: str) -> str:
    credentials: Credentials = api.app.state.service.credentials
    return credentials.issue(CredentialKind.ACCESSOR_SESSION, accessor, timedelta(minutes=30))


def _cookie(session: str) -> dict[str, str]:
    # A Cookie header, not the client's cookie jar: each request says exactly what it sends.
    return {"Cookie": f"{SESSION_COOKIE}={session}"}


def test_a_session_cookie_authenticates_safe_requests(auth_api: Api) -> None:
    cookie = _cookie(_session(auth_api, "aud-1"))
    assert auth_api.client.get("/metrics", headers=cookie).status_code == 200
    assert auth_api.client.get("/metrics", headers=_cookie("csa_x")).status_code == 401


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 403),
        ({"Origin": "http://testserver"}, 200),
        ({"Referer": "http://testserver/dashboard"}, 200),
        ({"Origin": "https://evil.example"}, 403),
        ({"Origin": "http://testserver.evil.example"}, 403),
        ({"Origin": "null"}, 403),
        ({"Referer": "https://evil.example/http://testserver/"}, 403),
        ({"Origin": "https://evil.example", "Referer": "http://testserver/"}, 403),
    ],
)
def test_a_session_cookie_changes_nothing_cross_site(
    auth_api: Api, headers: dict[str, str], status: int
) -> None:
    cookie = _cookie(_session(auth_api, "duty-1"))
    before = auth_api.vault.ledger.size()
    response = auth_api.client.post(READ, json=BODY, headers={**headers, **cookie})
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"]["missing"] == ["same_origin"]
        assert auth_api.vault.ledger.size() == before  # refused before any decision


class FakeTime:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_revocation_by_another_process_takes_effect_within_seconds(auth_api: Api) -> None:
    """The cache answers for at most a few seconds; a revocation elsewhere (the CLI) is then
    seen."""
    tick = FakeTime()
    store = auth_api.vault.store
    server = Credentials(store=store, clock=auth_api.clock, cache_seconds=2.0, monotonic=tick)
    token = server.issue(CredentialKind.API_TOKEN, "duty-1", timedelta(days=1))
    assert server.check(CredentialKind.API_TOKEN, token) is not None
    assert Credentials(store=store).revoke(CredentialKind.API_TOKEN, token)  # "the CLI"
    tick.now += 1.0
    assert server.cached(CredentialKind.API_TOKEN, token) is not None  # still cached
    tick.now += 1.5
    assert server.cached(CredentialKind.API_TOKEN, token) is None
    assert server.check(CredentialKind.API_TOKEN, token) is None


def test_a_deactivation_takes_effect_within_seconds(auth_api: Api) -> None:
    tick = FakeTime()
    service = auth_api.app.state.service
    guard = Guard(
        settings=service.settings,
        vault=auth_api.vault,
        credentials=Credentials(store=auth_api.vault.store, clock=auth_api.clock),
        clock=auth_api.clock,
        monotonic=tick,
    )
    auth_api.vault.add_accessor(Accessor("duty-8", "police-1", "duty_officer"))
    headers = {"authorization": f"Bearer {_issue(auth_api, 'duty-8')}"}

    def authenticate() -> Caller:
        return asyncio.run(guard.authenticate("POST", headers))

    caller = authenticate()
    assert caller.principal.accessor == "duty-8" and caller.via == "token"
    auth_api.vault.add_accessor(Accessor("duty-8", "police-1", "duty_officer", active=False))
    tick.now += 1.0
    authenticate()  # the accessor is still cached
    tick.now += 1.5
    with pytest.raises(AuthenticationError, match="deactivated"):
        authenticate()
