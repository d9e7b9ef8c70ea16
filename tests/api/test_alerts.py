"""Alerts over HTTP, on both backends: listing, evidence, acknowledgement as a ledger entry.

Only oversight roles may see or acknowledge alerts; an acknowledgement is an ``alert_ack`` entry
by the auditor naming the alert, its note sealed; a refused attempt is ledgered too; the state
lives in the ledger alone, so it survives reopening the vault.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from custodes.api import create_app
from custodes.config import Settings, StoreSettings
from custodes.detect import AlertBook, alert_id
from custodes.errors import AccessDenied
from custodes.model import AccessEvent, Accessor, CredentialKind
from custodes.vault import Vault
from tests.api.conftest import PEOPLE, Api, build_api, store_settings_for
from tests.helpers import access

NOTE = "Checked with the station: no case explains this; referred to discipline."
# The alerts file a detector would have written (evidence filled in by _seed_alerts).
ROWS: dict[str, dict[str, Any]] = {
    "probing": {
        "accessor": "clerk-1",
        "kind": "repeated_denials",
        "kinds": ["repeated_denials"],
        "score": 0.9,
        "first_ts": "2026-03-02T02:00:00+00:00",
        "last_ts": "2026-03-02T02:00:00+00:00",
        "raised_at": "2026-03-02T02:00:00+00:00",
        "explanation": "clerk-1 (clerk at hotel-1) was refused 4 times.",
        "live": True,
    },
    "seller": {
        "accessor": "inv-2",
        "kind": "dossier_pull",
        "kinds": ["dossier_pull", "unexplained_access"],
        "score": 1.0,
        "first_ts": "2026-03-02T01:00:00+00:00",
        "last_ts": "2026-03-02T02:00:00+00:00",
        "raised_at": "2026-03-02T02:00:00+00:00",
        "explanation": "inv-2 pulled full histories of 3 people.",
        "live": False,
    },
    "snoop": {
        "accessor": "sup-9",
        "kind": "vip_snooping",
        "kinds": ["vip_snooping"],
        "score": 0.6,
        "first_ts": "2026-03-02T01:30:00+00:00",
        "last_ts": "2026-03-02T01:30:00+00:00",
        "explanation": "sup-9 looked up a protected person.",
    },
}


def _seed_alerts(vault: Vault) -> None:
    """Make refused reads by the clerk (the evidence) and write the alerts file."""
    clerk = access(vault, "clerk-1", "identity_check")
    before = vault.store.event_count()
    for person in PEOPLE[:4]:
        with pytest.raises(AccessDenied):
            vault.get(clerk, "identity", person.id_number)
    denials = list(range(before, before + 4))
    lines = [
        {**ROWS["probing"], "evidence": denials},
        {**ROWS["seller"], "evidence": [0, 1, 2]},
        {**ROWS["snoop"], "evidence": [3]},
        {**ROWS["probing"], "evidence": denials},  # written twice: one alert
        {"kind": "broken"},  # not an alert: skipped
    ]
    folder = vault.settings.home / "detect"
    folder.mkdir(exist_ok=True)
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (folder / "alerts.jsonl").write_text(text, encoding="utf-8")


def _id(name: str, evidence: list[int]) -> str:
    row = ROWS[name]
    return alert_id(row["accessor"], row["kind"], row["first_ts"], evidence)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("alerts") / "home"
    store = store_settings_for(str(request.param), home, request)
    yield from build_api(home, store, prepare=_seed_alerts)


def _alerts(api: Api, caller: str = "aud-1", **params: Any) -> list[dict[str, Any]]:
    response = api.client.get("/v1/alerts", headers=api.headers(caller), params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["alerts"]
    return found


def _by_accessor(api: Api, who: str) -> dict[str, Any]:
    return next(a for a in _alerts(api) if a["accessor"] == who)


def _last(api: Api) -> AccessEvent:
    return api.events()[-1]


def test_alerts_are_listed_gravest_first_with_stable_ids(api: Api) -> None:
    alerts = _alerts(api)
    assert [a["accessor"] for a in alerts] == ["inv-2", "clerk-1", "sup-9"]
    seller, probing, snoop = alerts
    # Bands: a dossier pull is critical; repeated refusals medium; a protected person's lookup
    # is high, one band lower on weak evidence (score under 0.8).
    assert [seller["severity"], probing["severity"], snoop["severity"]] == [
        "critical",
        "medium",
        "medium",
    ]
    assert seller["alert_id"] == _id("seller", [0, 1, 2])
    assert seller["kinds"] == ["dossier_pull", "unexplained_access"]
    assert seller["evidence"] == [0, 1, 2] and seller["live"] is False
    assert snoop["raised_at"] is None
    assert [a["alert_id"] for a in _alerts(api)] == [a["alert_id"] for a in alerts]


def test_filters_select_by_severity_kind_accessor_and_state(api: Api) -> None:
    assert [a["accessor"] for a in _alerts(api, severity="critical")] == ["inv-2"]
    assert [a["accessor"] for a in _alerts(api, kind="unexplained_access")] == ["inv-2"]
    assert [a["accessor"] for a in _alerts(api, accessor="sup-9")] == ["sup-9"]
    assert _alerts(api, severity="low") == []
    acked = _alerts(api, acknowledged="true")
    still_open = _alerts(api, acknowledged="false")
    assert all(a["acknowledged"] for a in acked)
    assert not any(a["acknowledged"] for a in still_open)
    assert len(acked) + len(still_open) == 3
    assert api.get("/v1/alerts", "aud-1", severity="urgent").status_code == 422


def test_an_alert_is_shown_with_its_evidence_events(api: Api) -> None:
    probing = _by_accessor(api, "clerk-1")
    response = api.get(f"/v1/alerts/{probing['alert_id']}", "aud-1")
    assert response.status_code == 200, response.text
    shown = response.json()
    assert [e["seq"] for e in shown["events"]] == probing["evidence"]
    assert {(e["accessor"], e["action"], e["decision"]) for e in shown["events"]} == {
        ("clerk-1", "get", "deny")
    }
    # Subjects appear as ledger pseudonyms, never as ID numbers.
    assert shown["events"][0]["subject"] == api.vault.pseudonym(PEOPLE[0].id_number)
    assert PEOPLE[0].id_number not in response.text


def test_acknowledging_appends_one_ledger_entry_by_the_auditor(api: Api) -> None:
    snoop = _by_accessor(api, "sup-9")
    before = api.vault.store.event_count()
    response = api.post(f"/v1/alerts/{snoop['alert_id']}/ack", "aud-1", {"note": NOTE})
    assert response.status_code == 201, response.text
    ack = response.json()
    assert api.vault.store.event_count() == before + 1
    assert ack["seq"] == before and ack["accessor"] == "aud-1" and ack["note"] == NOTE

    event = _last(api)
    assert event.action == "alert_ack" and event.decision == "allow"
    assert (event.accessor, event.role, event.org) == ("aud-1", "auditor", "oversight-office")
    assert event.purpose == "oversight" and event.subject is None and event.collection is None
    assert event.reason == f"alert {snoop['alert_id']} acknowledged"
    # The note is kept sealed in the entry, and opens for oversight screens.
    assert event.justification is not None and NOTE not in event.justification
    assert api.vault.audit_note(event) == NOTE
    api.vault.ledger.verify()

    shown = _by_accessor(api, "sup-9")
    assert shown["acknowledged"] is True
    assert [(a["seq"], a["accessor"], a["note"]) for a in shown["acknowledgements"]] == [
        (before, "aud-1", NOTE)
    ]
    assert [a["accessor"] for a in _alerts(api, acknowledged="true")] == ["sup-9"]


def test_the_note_never_reaches_the_database_in_clear(api: Api) -> None:
    probing = _by_accessor(api, "clerk-1")
    secret = "Suspect named Wang Fang in the note"
    response = api.post(f"/v1/alerts/{probing['alert_id']}/ack", "aud-1", {"note": secret})
    assert response.status_code == 201
    assert secret.encode() not in _database_bytes(api.vault)
    assert _by_accessor(api, "clerk-1")["acknowledgements"][-1]["note"] == secret


def _database_bytes(vault: Vault) -> bytes:
    st = vault.settings.store
    if st.backend == "sqlite":
        assert st.path is not None
        # The page cache may not have reached the main file yet: read the WAL too.
        files = [st.path, st.path.with_name(st.path.name + "-wal")]
        return b"".join(p.read_bytes() for p in files if p.exists()) + _entries(vault)
    assert st.url is not None
    with psycopg.connect(st.url) as conn:
        events = conn.execute("SELECT reason, justification FROM events").fetchall()
    return repr(events).encode() + _entries(vault)


def _entries(vault: Vault) -> bytes:
    # Bundles of many entries are stored compressed: search what they decompress to.
    return b"".join(entry for _, entry, _ in vault.store.ledger_rows())


def test_a_clerk_is_refused_and_the_attempt_is_ledgered(api: Api) -> None:
    probing = _by_accessor(api, "clerk-1")
    path = f"/v1/alerts/{probing['alert_id']}"
    assert api.get("/v1/alerts", "clerk-1").status_code == 403
    assert api.get(path, "clerk-1").status_code == 403
    acks_before = len(probing["acknowledgements"])

    before = api.vault.store.event_count()
    # The alert is about this very clerk: acknowledging it away is what they would try.
    refused = api.post(f"{path}/ack", "clerk-1", {"note": "nothing to see"})
    assert refused.status_code == 403
    assert refused.json()["error"]["missing"] == ["oversight_role"]
    assert api.vault.store.event_count() == before + 1
    event = _last(api)
    assert (event.action, event.decision, event.accessor) == ("alert_ack", "deny", "clerk-1")
    assert probing["alert_id"] in event.reason and event.justification is None
    # Refused before the body is read: no body at all is still a 403, not a 422.
    assert api.client.post(f"{path}/ack", headers=api.headers("clerk-1")).status_code == 403
    assert len(_by_accessor(api, "clerk-1")["acknowledgements"]) == acks_before


def test_without_credentials_every_alert_route_is_401(api: Api) -> None:
    probing = _by_accessor(api, "clerk-1")
    path = f"/v1/alerts/{probing['alert_id']}"
    before = api.vault.store.event_count()
    for response in (
        api.get("/v1/alerts", None),
        api.get(path, None),
        api.post(f"{path}/ack", None, {"note": "x"}),
        api.client.post(f"{path}/ack", headers={"Authorization": "Bearer cst_forged"}),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
    assert api.vault.store.event_count() == before


def test_unknown_alerts_and_bad_notes_record_nothing(api: Api) -> None:
    before = api.vault.store.event_count()
    missing = api.post(f"/v1/alerts/{'0' * 24}/ack", "aud-1", {"note": NOTE})
    assert missing.status_code == 404
    assert api.get(f"/v1/alerts/{'0' * 24}", "aud-1").status_code == 404
    assert api.get("/v1/alerts/not-an-id", "aud-1").status_code == 422
    probing = _by_accessor(api, "clerk-1")
    for note in ("", "   ", "line\x00break", "x" * 2001):
        bad = api.post(f"/v1/alerts/{probing['alert_id']}/ack", "aud-1", {"note": note})
        assert bad.status_code == 422, note
        assert bad.json()["error"]["code"] == "invalid_request"
    assert api.vault.store.event_count() == before


def test_a_damaged_alerts_file_is_an_error_in_the_one_shape(api: Api) -> None:
    path = api.vault.settings.home / "detect" / "alerts.jsonl"
    kept = path.read_bytes()
    try:
        path.write_bytes(kept + b"{not json\n")
        response = api.get("/v1/alerts", "aud-1")
        assert response.status_code == 503
        assert "alerts file" in response.json()["error"]["message"]
    finally:
        path.write_bytes(kept)
    assert len(_alerts(api)) == 3


def test_acknowledgements_survive_reopening_the_vault(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    with _built(home, store_settings_for(backend, home, request)) as first:
        seller = _by_accessor(first, "inv-2")
        acked = first.post(f"/v1/alerts/{seller['alert_id']}/ack", "aud-1", {"note": NOTE})
        assert acked.status_code == 201
    # As in a new process: nothing is kept in memory, only what the ledger holds.
    settings = Settings.load(home)
    app = create_app(settings, vault=Vault.open(settings, monitor=False))
    token = app.state.service.credentials.issue(
        CredentialKind.API_TOKEN, "aud-1", timedelta(hours=1)
    )
    with TestClient(app) as client:
        response = client.get("/v1/alerts", headers={"Authorization": f"Bearer {token}"})
    shown = next(a for a in response.json()["alerts"] if a["accessor"] == "inv-2")
    assert shown["acknowledged"] is True
    assert shown["acknowledgements"][0]["note"] == NOTE


@contextmanager
def _built(home: Path, store: StoreSettings) -> Iterator[Api]:
    """An app of its own over a fresh vault with the alerts seeded (closed afterwards)."""
    gen = build_api(home, store, prepare=_seed_alerts, holders=("aud-1",))
    try:
        yield next(gen)
    finally:
        gen.close()


def test_an_acknowledgement_counts_only_while_its_author_holds_an_oversight_role(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    with _built(home, store_settings_for("sqlite", home, request)) as api:
        seller = _by_accessor(api, "inv-2")
        api.post(f"/v1/alerts/{seller['alert_id']}/ack", "aud-1", {"note": NOTE})
        book = AlertBook(vault=api.vault)
        assert book.alert(seller["alert_id"]).acknowledged
        # aud-1 is moved out of oversight (say, found shielding a colleague): their
        # acknowledgements close nothing any more, and the alert is open again.
        api.vault.add_accessor(Accessor("aud-1", "hotel-1", "clerk"))
        assert not book.alert(seller["alert_id"]).acknowledged
        api.vault.add_accessor(Accessor("aud-1", "oversight-office", "auditor"))
        assert book.alert(seller["alert_id"]).acknowledged
