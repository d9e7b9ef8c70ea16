"""The transparency portal over HTTP (no browser), on both storage backends.

A small vault: three people, reads of two of them (one refused), a checkpoint signed by the
log and cosigned by a witness, then one read more (pending). Subjects sign in with one-time
codes (or an OIDC ID token) and see, and can get proofs for, their own entries only.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from custodes.api import Credentials, create_app
from custodes.cli import main
from custodes.clock import ManualClock
from custodes.config import Settings, StoreSettings
from custodes.errors import AccessDenied
from custodes.ledger import CheckpointLog, merkle, open_note, verify_cosignature
from custodes.ledger.note import Checkpoint
from custodes.ledger.witness import Witness, publish_cosignature
from custodes.model import CredentialKind
from custodes.sim import Person, generate_people
from custodes.vault import Vault
from custodes.web import (
    PORTAL_COOKIE,
    check_bundle,
    issue_portal_code,
    key_fingerprint,
    witnessed_checkpoint,
)
from custodes.web._portal import LoginThrottle
from tests.conftest import fresh_pg_database
from tests.helpers import START, access, explode_ledger, make_vault, one_entry, raw_sql

ME, THEM, NOBODY = generate_people(3, seed=11)
HOST = "http://127.0.0.1"
SAME = {"origin": HOST}
WITNESS = "witness.example/w1"


@dataclass
class Portal:
    """A served vault with a cosigned checkpoint; ``after`` is the entry past it."""

    client: TestClient
    vault: Vault
    clock: ManualClock
    settings: Settings
    checkpoint_size: int
    after: int
    witness_dir: Path

    def seqs(self, person: Person) -> list[int]:
        return [s for s, _ in self.vault.store.subject_events(self.pseudonym(person), 100)]

    def pseudonym(self, person: Person) -> str:
        return self.vault.pseudonym(person.id_number)

    def code(self, person: Person) -> str:
        minutes = self.settings.api.portal_code_minutes
        code, _ = issue_portal_code(self.vault, person.id_number, minutes=minutes, clock=self.clock)
        return code

    def sign_in(self, person: Person) -> None:
        response = self.client.post(
            "/portal/login", data={"code": self.code(person)}, headers=SAME, follow_redirects=False
        )
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/portal"

    def proofs(self, seqs: list[int]) -> Any:
        return self.client.get("/portal/proofs", params={"seqs": ",".join(map(str, seqs))})

    @contextmanager
    def fork(self, *, settings: Settings | None = None, base: str = HOST) -> Iterator[Portal]:
        """The same vault home behind a new app: its own vault handle, clock and throttle."""
        clock = ManualClock(self.clock())
        chosen = settings or self.settings
        vault = Vault.open(chosen, clock=clock)
        with serve(vault, chosen, clock, base) as client:
            yield replace(self, client=client, vault=vault, clock=clock, settings=chosen)


def identity(person: Person) -> dict[str, str]:
    return {"name": person.name, "id_number": person.id_number}


def fill(vault: Vault, clock: ManualClock) -> None:
    registrar = access(vault, "reg-1", "registration")
    for person in (ME, THEM, NOBODY):
        vault.put(registrar, "identity", person.id_number, identity(person))
    officer = access(vault, "duty-1", "identity_check")
    for person in (ME, THEM, ME):
        clock.advance(timedelta(hours=5))
        vault.get(officer, "identity", person.id_number)
    clock.advance(timedelta(days=1))
    with pytest.raises(AccessDenied):
        vault.get(access(vault, "inv-1", "marketing"), "identity", ME.id_number)


def cosign(vault: Vault, clock: ManualClock, witness_dir: Path) -> tuple[Witness, int]:
    signed = CheckpointLog.open(vault.settings).sign(vault.ledger, clock())
    witness = Witness.create(witness_dir, WITNESS)
    witness.trust(CheckpointLog.open(vault.settings).vkey)
    cosigned = witness.cosign(signed.note, vault.ledger, clock())
    publish_cosignature(vault.settings.ledger_dir, witness.name, cosigned)
    return witness, signed.checkpoint.size


def serve(vault: Vault, settings: Settings, clock: ManualClock, base: str = HOST) -> TestClient:
    """A client of the app for ``vault`` (which the app closes when the client exits)."""
    return TestClient(create_app(settings, clock=clock, vault=vault), base_url=base)


@contextmanager
def built(directory: Path, store: StoreSettings) -> Iterator[Portal]:
    clock = ManualClock(START)
    vault = make_vault(directory / "home", store, clock)
    fill(vault, clock)
    witness, size = cosign(vault, clock, directory / "witness")
    clock.advance(timedelta(hours=1))
    vault.get(access(vault, "duty-1", "identity_check"), "identity", ME.id_number)
    settings = replace(vault.settings, witnesses=(witness.vkey,))
    with serve(vault, settings, clock) as client:
        yield Portal(client, vault, clock, settings, size, size, directory / "witness")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared_portal(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Portal]:
    """One served vault per backend for the tests that only read it (serving costs ~0.5 s)."""
    directory = tmp_path_factory.mktemp("portal")
    path = directory / "home" / "data" / "custodes.db"
    store = (
        StoreSettings(backend="sqlite", path=path)
        if request.param == "sqlite"
        else StoreSettings(backend="postgres", url=fresh_pg_database(request))
    )
    with built(directory, store) as portal:
        yield portal


@pytest.fixture
def portal(shared_portal: Portal) -> Portal:
    """The shared served vault, signed out."""
    shared_portal.client.cookies.clear()
    return shared_portal


@pytest.fixture
def own_portal(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Portal]:
    """A served vault of this test's own, for tests that change it."""
    with built(tmp_path, store_settings) as portal:
        yield portal


def page_seqs(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-seq="(\d+)"', html)]


# --- what a subject sees ----------------------------------------------------------------------


def test_a_subject_sees_their_own_entries_newest_first(portal: Portal) -> None:
    portal.sign_in(ME)
    html = portal.client.get("/portal").text
    shown = page_seqs(html)
    assert shown == portal.seqs(ME)
    assert shown == sorted(shown, reverse=True)
    assert len(shown) == 5  # written, read twice, refused, read after the checkpoint
    assert not set(shown) & set(portal.seqs(THEM))
    assert ME.id_number not in html and ME.name not in html
    assert "denied" in html and "police-1" in html and "inv-1" in html
    assert key_fingerprint(portal.vault.settings.log_vkey_path.read_text().strip()) in html


def test_filters_narrow_the_entries(portal: Portal) -> None:
    portal.sign_in(ME)
    everything = portal.seqs(ME)
    denied = page_seqs(portal.client.get("/portal", params={"decision": "deny"}).text)
    assert len(denied) == 1 and denied[0] in everything
    by_org = page_seqs(portal.client.get("/portal", params={"org": "hotel-1"}).text)
    assert len(by_org) == 1  # the registration
    reads = page_seqs(portal.client.get("/portal", params={"action": "get"}).text)
    assert len(reads) == 4
    day = START.date().isoformat()
    first_day = page_seqs(portal.client.get("/portal", params={"from": day, "to": day}).text)
    assert 0 < len(first_day) < len(everything)
    bad = portal.client.get("/portal", params={"from": "yesterday"}).text
    assert "Ignored a date" in bad and page_seqs(bad) == everything
    none = portal.client.get("/portal", params={"org": "nowhere"}).text
    assert page_seqs(none) == [] and "No access matches" in none


def test_the_proof_bundle_verifies_with_the_ledger_code(portal: Portal) -> None:
    portal.sign_in(ME)
    seqs = portal.seqs(ME)
    bundle = portal.proofs(seqs).json()

    note = bundle["checkpoint"]["note"]
    log = bundle["log"]
    text, signers = open_note(note, {log["origin"]: log["vkey"]})
    checkpoint = Checkpoint.parse(text)
    assert signers == [log["origin"]] and checkpoint.size == portal.checkpoint_size
    witness_line = next(line for line in note.split("\n") if line.startswith(f"— {WITNESS} "))
    verify_cosignature(witness_line, text, bundle["witnesses"][0])
    for item in bundle["entries"]:
        entry = base64.b64decode(item["entry"])
        assert json.loads(entry)["subject"] == portal.pseudonym(ME)
        if item["index"] >= checkpoint.size:
            assert item["pending"] is True
            continue
        proof = [base64.b64decode(p) for p in item["proof"]]
        merkle.verify_inclusion(entry, item["index"], checkpoint.size, proof, checkpoint.root)

    states = check_bundle(bundle)
    assert states == {s: "pending" if s >= portal.after else "verified" for s in seqs}


def test_a_rewritten_entry_fails_its_proof(own_portal: Portal, backend: str) -> None:
    portal = own_portal
    portal.sign_in(ME)
    target = next(s for s in portal.seqs(ME) if s < portal.checkpoint_size)
    explode_ledger(portal.vault.settings.store)  # one row per entry: the edit touches one
    if backend == "sqlite":
        raw_sql(portal.vault, "DROP TRIGGER ledger_bundles_no_update")
    else:
        raw_sql(portal.vault, "DROP TRIGGER ledger_bundles_append_only ON ledger_bundles")
    [(_, entry, _)] = portal.vault.store.ledger_rows(target, target + 1)
    forged = entry.replace(b'"v":1', b'"v":2')
    assert forged != entry
    raw_sql(
        portal.vault,
        "UPDATE ledger_bundles SET entries = ? WHERE seq = ?",
        (one_entry(forged), target),
    )
    states = check_bundle(portal.proofs(portal.seqs(ME)).json())
    assert states.pop(target).startswith("failed: inclusion proof")
    assert set(states.values()) == {"verified", "pending"}


# --- isolation --------------------------------------------------------------------------------


def test_other_subjects_entries_are_answered_as_absent(portal: Portal) -> None:
    portal.sign_in(ME)
    mine, theirs = portal.seqs(ME), portal.seqs(THEM)
    foreign = portal.proofs(theirs[:1])
    absent = portal.proofs([10**9])
    mixed = portal.proofs([mine[0], theirs[0]])
    assert foreign.status_code == absent.status_code == mixed.status_code == 404
    assert foreign.json() == absent.json() == mixed.json()
    assert foreign.json()["error"]["code"] == "not_found"
    assert portal.client.get(f"/portal/entry/{theirs[0]}").status_code == 404
    assert portal.client.get(f"/portal/entry/{10**9}").status_code == 404
    assert portal.client.get(f"/portal/entry/{mine[0]}").status_code == 200
    # No parameter names a subject: adding one changes nothing.
    html = portal.client.get("/portal", params={"subject": THEM.id_number}).text
    assert page_seqs(html) == mine


@pytest.mark.parametrize("seqs", ["", "1,x", "-1", ",".join(["1"] * 257), "1" * 25])
def test_malformed_proof_requests_are_refused(portal: Portal, seqs: str) -> None:
    portal.sign_in(ME)
    response = portal.client.get("/portal/proofs", params={"seqs": seqs})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_pages_need_a_session(portal: Portal) -> None:
    for path in ("/portal", "/portal/entry/0", "/portal?org=x"):
        response = portal.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/portal/login"
    response = portal.proofs([0])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_api_tokens_and_portal_sessions_do_not_mix(portal: Portal) -> None:
    credentials = portal.client.app.state.service.credentials  # type: ignore[attr-defined]
    token = credentials.issue(CredentialKind.API_TOKEN, "duty-1", timedelta(days=1))
    portal.client.cookies.set(PORTAL_COOKIE, token, path="/portal")
    assert portal.client.get("/portal", follow_redirects=False).status_code == 303
    assert portal.proofs([0]).status_code == 401
    portal.client.cookies.clear()

    portal.sign_in(ME)
    session = portal.client.cookies[PORTAL_COOKIE]
    portal.client.cookies.clear()
    entry = portal.seqs(ME)[0]
    as_bearer = portal.client.get(
        f"/v1/ledger/entries/{entry}", headers={"Authorization": f"Bearer {session}"}
    )
    assert as_bearer.status_code == 401
    portal.client.cookies.set("custodes_session", session)
    assert portal.client.get(f"/v1/ledger/entries/{entry}").status_code == 401


# --- signing in -------------------------------------------------------------------------------


def test_the_session_cookie_is_locked_down(portal: Portal) -> None:
    response = portal.client.post(
        "/portal/login", data={"code": portal.code(ME)}, headers=SAME, follow_redirects=False
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{PORTAL_COOKIE}=css_")
    for flag in ("HttpOnly", "Path=/portal", "SameSite=strict", "Max-Age=1800"):
        assert flag in cookie
    assert "Secure" not in cookie

    with portal.fork(base="https://portal.example") as tls:
        response = tls.client.post(
            "/portal/login",
            data={"code": tls.code(ME)},
            headers={"origin": "https://portal.example"},
            follow_redirects=False,
        )
        assert response.status_code == 303 and "Secure" in response.headers["set-cookie"]


def test_a_code_works_once_and_expires(portal: Portal) -> None:
    with portal.fork() as own:
        check_one_time_codes(own)


def check_one_time_codes(portal: Portal) -> None:
    code = portal.code(ME)
    first = portal.client.post("/portal/login", data={"code": code}, headers=SAME)
    assert first.status_code == 200 and first.url.path == "/portal"
    portal.client.cookies.clear()
    again = portal.client.post("/portal/login", data={"code": code}, headers=SAME)
    assert again.status_code == 401 and "not valid" in again.text

    late = portal.code(ME)
    portal.clock.advance(timedelta(minutes=portal.settings.api.portal_code_minutes, seconds=1))
    assert portal.client.post("/portal/login", data={"code": late}, headers=SAME).status_code == 401


def test_wrong_codes_are_throttled_per_address(portal: Portal) -> None:
    with portal.fork() as own:
        check_throttle(own)


def check_throttle(portal: Portal) -> None:
    wrong = {"code": "AAAA-BBBB-CCCC"}
    for _ in range(10):
        response = portal.client.post("/portal/login", data=wrong, headers=SAME)
        assert response.status_code == 401
        assert "That code is not valid" in response.text  # the same words for every failure
    good = portal.code(ME)
    blocked = portal.client.post("/portal/login", data={"code": good}, headers=SAME)
    assert blocked.status_code == 429 and "Too many attempts" in blocked.text
    portal.clock.advance(timedelta(minutes=11))
    response = portal.client.post(
        "/portal/login", data={"code": good}, headers=SAME, follow_redirects=False
    )
    assert response.status_code == 303  # the blocked attempt did not use the code up


def test_the_throttle_forgets_old_addresses_first() -> None:
    throttle = LoginThrottle(limit=1, max_keys=2)
    for address in ("a", "b", "c"):
        throttle.fail(address, START)
    assert not throttle.blocked("a", START)
    assert throttle.blocked("b", START) and throttle.blocked("c", START)


@pytest.mark.parametrize(
    "headers",
    [{}, {"origin": "https://evil.example"}, {"origin": "null"}, {"referer": "https://evil/x"}],
)
def test_posts_must_come_from_this_site(portal: Portal, headers: dict[str, str]) -> None:
    response = portal.client.post("/portal/login", data={"code": portal.code(ME)}, headers=headers)
    assert response.status_code == 403
    portal.sign_in(ME)
    assert portal.client.post("/portal/logout", headers=headers).status_code == 403
    assert portal.client.get("/portal", follow_redirects=False).status_code == 200


def test_sign_out_ends_the_session(portal: Portal) -> None:
    portal.sign_in(ME)
    session = portal.client.cookies[PORTAL_COOKIE]
    response = portal.client.post(
        "/portal/logout", headers={"referer": f"{HOST}/portal"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/portal/login"
    portal.client.cookies.set(PORTAL_COOKIE, session, path="/portal")
    assert portal.client.get("/portal", follow_redirects=False).status_code == 303


def test_pages_carry_safety_headers(portal: Portal) -> None:
    portal.sign_in(ME)
    for path in ("/portal/login", "/portal", f"/portal/entry/{portal.seqs(ME)[0]}"):
        headers = portal.client.get(path).headers
        assert headers["cache-control"] == "no-store"
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
    assert portal.proofs(portal.seqs(ME)).headers["cache-control"] == "no-store"
    assert portal.client.get("/static/verify.js").status_code == 200
    # The portal is not part of the API's OpenAPI document.
    assert not [p for p in portal.client.get("/openapi.json").json()["paths"] if "portal" in p]


# --- OIDC -------------------------------------------------------------------------------------

ISSUER = "https://id.example"
AUDIENCE = "custodes-portal"


def id_token(key: ec.EllipticCurvePrivateKey, now: int, **claims: Any) -> str:
    body = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300, "sub": "u1", **claims}
    return jwt.encode(body, key, algorithm="ES256", headers={"kid": "k1"})


@pytest.fixture(scope="module")
def shared_oidc(
    shared_portal: Portal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Portal, Any]]:
    """The shared vault behind an app that also accepts ID tokens of a test issuer."""
    portal = shared_portal
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path_factory.mktemp("oidc") / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES256", "use": "sig"}]}))
    api = replace(
        portal.settings.api, oidc_issuer=ISSUER, oidc_audience=AUDIENCE, oidc_jwks=str(jwks)
    )
    with portal.fork(settings=replace(portal.settings, api=api)) as oidc:
        yield oidc, key


@pytest.fixture
def oidc_portal(shared_oidc: tuple[Portal, Any]) -> tuple[TestClient, Any, int]:
    portal, key = shared_oidc
    portal.client.cookies.clear()
    return portal.client, key, int(portal.clock().timestamp())


def test_oidc_sign_in(portal: Portal, oidc_portal: tuple[TestClient, Any, int]) -> None:
    client, key, now = oidc_portal
    token = id_token(key, now, custodes_subject=ME.id_number)
    response = client.post(
        "/portal/login/oidc", data={"id_token": token}, headers={"origin": ISSUER}
    )
    assert response.status_code == 200 and response.headers["refresh"] == "0; url=/portal"
    assert PORTAL_COOKIE in response.headers["set-cookie"]
    assert page_seqs(client.get("/portal").text) == portal.seqs(ME)


@pytest.mark.parametrize(
    ("claims", "origin", "status"),
    [
        ({"custodes_subject": ME.id_number}, "https://evil.example", 403),
        ({"custodes_subject": ME.id_number, "aud": "another-app"}, ISSUER, 401),
        ({"custodes_subject": ME.id_number, "exp": -60}, ISSUER, 401),  # expired
        ({}, ISSUER, 401),  # no ID-number claim
        ({"custodes_subject": "not-an-id"}, ISSUER, 401),
    ],
)
def test_oidc_sign_in_refusals(
    oidc_portal: tuple[TestClient, Any, int], claims: dict[str, Any], origin: str, status: int
) -> None:
    client, key, now = oidc_portal
    token = id_token(key, now, **{k: now + v if k == "exp" else v for k, v in claims.items()})
    response = client.post(
        "/portal/login/oidc", data={"id_token": token}, headers={"origin": origin}
    )
    assert response.status_code == status
    assert "set-cookie" not in response.headers


def test_oidc_tokens_signed_by_another_key_are_refused(
    oidc_portal: tuple[TestClient, Any, int],
) -> None:
    client, _, now = oidc_portal
    forged = id_token(ec.generate_private_key(ec.SECP256R1()), now, custodes_subject=ME.id_number)
    response = client.post("/portal/login/oidc", data={"id_token": forged}, headers=SAME)
    assert response.status_code == 401


def test_oidc_off_by_default(portal: Portal) -> None:
    response = portal.client.post("/portal/login/oidc", data={"id_token": "x"}, headers=SAME)
    assert response.status_code == 404


# --- the checkpoint a bundle carries ----------------------------------------------------------


def test_the_largest_witnessed_checkpoint_is_chosen(own_portal: Portal) -> None:
    portal = own_portal
    log = CheckpointLog.open(portal.settings)
    witness = Witness.open(portal.witness_dir)
    chosen = witnessed_checkpoint(
        checkpoints=log, witnesses=portal.settings.witnesses, ledger_dir=portal.settings.ledger_dir
    )
    assert chosen is not None and chosen.checkpoint.size == portal.checkpoint_size
    assert chosen.witnesses == (WITNESS,)

    # A newer checkpoint, cosigned: chosen. Junk and half-written files beside it: ignored.
    newer = log.sign(portal.vault.ledger, portal.clock())
    cosigned = witness.cosign(newer.note, portal.vault.ledger, portal.clock())
    directory = portal.settings.ledger_dir / "cosignatures"
    (directory / "junk").write_text("not a note\n")
    (directory / ".w.tmp").write_text(cosigned.cosigned_note[:40])
    (directory / "copy").write_text(cosigned.note)  # the log's signature only
    publish_cosignature(portal.settings.ledger_dir, witness.name, cosigned)
    chosen = witnessed_checkpoint(
        checkpoints=log, witnesses=portal.settings.witnesses, ledger_dir=portal.settings.ledger_dir
    )
    assert chosen is not None and chosen.checkpoint.size == newer.checkpoint.size
    assert chosen.note == cosigned.cosigned_note

    # No witness configured: the log's latest checkpoint, which proves entries "unwitnessed".
    unwitnessed = witnessed_checkpoint(
        checkpoints=log, witnesses=(), ledger_dir=portal.settings.ledger_dir
    )
    assert unwitnessed is not None and unwitnessed.witnesses == ()
    with portal.fork(settings=replace(portal.settings, witnesses=())) as plain:
        plain.sign_in(ME)
        bundle = plain.proofs(portal.seqs(ME)[-1:]).json()
    assert set(check_bundle(bundle).values()) == {"unwitnessed"}


# --- the command ------------------------------------------------------------------------------


def test_portal_code_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = StoreSettings(backend="sqlite", path=tmp_path / "home" / "data" / "custodes.db")
    make_vault(tmp_path / "home", store).close()
    home = str(tmp_path / "home")
    assert main(["portal-code", ME.id_number, "--home", home, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}", data["code"])
    assert data["minutes"] == 15
    with Vault.open(Settings.load(tmp_path / "home")) as vault:
        found = Credentials(store=vault.store).redeem_code(data["code"])
        assert found is not None and found.principal == vault.pseudonym(ME.id_number)
    assert main(["portal-code", "12345", "--home", home]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_key_fingerprint_is_stable() -> None:
    vkey = "custodes.local/default+79c98074+ATB4PITs8ftrtuvAi0u7Cy1Py4J3AuVugks/Gp5tcK+B"
    # SHA-256 of the 32-byte public key (base64 after the 0x01 type byte), first 16 bytes.
    assert key_fingerprint(vkey) == "8f53 fb00 bf71 6daa b940 6118 cdf6 ac3a"


def test_a_session_is_rate_limited(portal: Portal) -> None:
    api = replace(portal.settings.api, rate_per_second=1, rate_burst=3)
    with portal.fork(settings=replace(portal.settings, api=api)) as slow:
        slow.sign_in(ME)
        seq = slow.seqs(ME)[0]
        answers = [slow.proofs([seq]).status_code for _ in range(10)]
        assert answers[:3] == [200, 200, 200] and 429 in answers[3:]
        refused = slow.proofs([seq])
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 1


def test_the_portals_public_names() -> None:
    import custodes.web

    portal = {
        "BUNDLE_FORMAT",
        "PORTAL_COOKIE",
        "STATIC_PATH",
        "WitnessedCheckpoint",
        "check_bundle",
        "issue_portal_code",
        "key_fingerprint",
        "portal_router",
        "proof_bundle",
        "static_files",
        "witnessed_checkpoint",
    }
    assert portal <= set(custodes.web.__all__)
    assert all(hasattr(custodes.web, name) for name in custodes.web.__all__)
