"""The auditor dashboard over HTTP (no browser), on both storage backends.

Sign-in is for oversight roles only and every page needs it; POSTs must come from this site;
acknowledging from the page is one ledger entry; whatever an accessor put in their own id or
organization (which reach the pages, charts included) is escaped; the incremental counts equal
a count from scratch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from custodes.api.deps import SESSION_COOKIE
from custodes.errors import AccessDenied
from custodes.model import Accessor
from custodes.vault import Vault
from custodes.web._dashboard_activity import DISCLOSURES, ActivityCounter
from tests.api.conftest import PEOPLE, Api, build_api, store_settings_for
from tests.helpers import access

HOST = "http://testserver"
SAME = {"origin": HOST}
# An accessor whose id and organization are markup: both reach the pages and the charts.
MARKUP = Accessor("<img src=x onerror=alert(1)>", "<i>org</i>", "duty_officer")
CANARY = PEOPLE[5]
EXPLANATION = "<script>alert(1)</script> read a canary record."


def _prepare(vault: Vault) -> None:
    vault.add_accessor(MARKUP)
    vault.add_accessor(Accessor("aud-2", "oversight-office", "auditor"))
    duty = access(vault, MARKUP.accessor, "identity_check")
    first = vault.store.event_count()
    for person in (CANARY, PEOPLE[6], PEOPLE[7]):
        vault.get(duty, "identity", person.id_number)
    with pytest.raises(AccessDenied):
        vault.get(access(vault, "clerk-1", "identity_check"), "identity", PEOPLE[8].id_number)
    folder = vault.settings.home / "detect"
    folder.mkdir(exist_ok=True)
    subject = {
        "subject": vault.pseudonym(CANARY.id_number),
        "surname_token": None,
        "address_token": None,
        "employer_org": None,
        "protected": False,
        "canary": True,
        "relations": [],
    }
    (folder / "subjects.jsonl").write_text(json.dumps(subject) + "\n", encoding="utf-8")
    alert = {
        "accessor": MARKUP.accessor,
        "kind": "canary_touch",
        "kinds": ["canary_touch"],
        "score": 1.0,
        "first_ts": "2026-03-02T02:00:00+00:00",
        "last_ts": "2026-03-02T02:00:00+00:00",
        "raised_at": "2026-03-02T02:00:00+00:00",
        "evidence": [first],
        "explanation": EXPLANATION,
    }
    (folder / "alerts.jsonl").write_text(json.dumps(alert) + "\n", encoding="utf-8")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    home = tmp_path_factory.mktemp("dashboard") / "home"
    store = store_settings_for(str(request.param), home, request)
    yield from build_api(
        home,
        store,
        prepare=_prepare,
        holders=("aud-1", "aud-2", "clerk-1", "duty-1"),
    )


def _browser(api: Api) -> TestClient:
    # A client of its own (its own cookie jar), never entered: leaving it would shut the app.
    return TestClient(api.app, base_url=HOST, follow_redirects=False)


def _signed_in(api: Api, accessor: str = "aud-1") -> TestClient:
    client = _browser(api)
    response = client.post("/dashboard/login", data={"token": api.tokens[accessor]}, headers=SAME)
    assert response.status_code == 303, response.text
    return client


def _alert_id(client: TestClient) -> str:
    found = re.findall(r'id="alert-([0-9a-f]{24})"', client.get("/dashboard").text)
    assert found
    return str(found[0])


def test_every_page_needs_a_sign_in(api: Api) -> None:
    client = _browser(api)
    for path in ("/dashboard", f"/dashboard/alerts/{'a' * 24}", "/dashboard/accessors/inv-1"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/dashboard/login"
    before = api.vault.store.event_count()
    response = client.post(f"/dashboard/alerts/{'a' * 24}/ack", data={"note": "x"}, headers=SAME)
    assert response.status_code == 303 and api.vault.store.event_count() == before
    page = client.get("/dashboard/login")
    assert page.status_code == 200 and 'name="token"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_only_an_oversight_token_signs_in(api: Api) -> None:
    client = _browser(api)
    clerk = client.post("/dashboard/login", data={"token": api.tokens["clerk-1"]}, headers=SAME)
    assert clerk.status_code == 403 and "not an oversight role" in clerk.text
    assert "set-cookie" not in clerk.headers
    forged = client.post("/dashboard/login", data={"token": "cst_" + "A" * 43}, headers=SAME)
    assert forged.status_code == 401 and "set-cookie" not in forged.headers

    auditor = client.post("/dashboard/login", data={"token": api.tokens["aud-1"]}, headers=SAME)
    assert auditor.status_code == 303 and auditor.headers["location"] == "/dashboard"
    cookie = auditor.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=csa_")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/;" in cookie
    assert api.tokens["aud-1"] not in cookie  # the session is a secret of its own
    page = client.get("/dashboard")
    assert page.status_code == 200 and "aud-1" in page.text


def test_posts_from_another_site_are_refused(api: Api) -> None:
    client = _browser(api)
    evil = {"origin": "https://evil.example"}
    for headers in ({}, evil, {"origin": "null"}, {"referer": "https://evil.example/x"}):
        response = client.post(
            "/dashboard/login", data={"token": api.tokens["aud-1"]}, headers=headers
        )
        assert response.status_code == 403 and "set-cookie" not in response.headers
    client = _signed_in(api)
    alert = _alert_id(client)
    before = api.vault.store.event_count()
    forged = client.post(f"/dashboard/alerts/{alert}/ack", data={"note": "x"}, headers=evil)
    assert forged.status_code == 403 and api.vault.store.event_count() == before
    assert client.post("/dashboard/logout", headers=evil).status_code == 403
    assert client.get("/dashboard").status_code == 200  # still signed in


def test_acknowledging_from_the_page_is_one_ledger_entry(api: Api) -> None:
    client = _signed_in(api, "aud-2")
    alert = _alert_id(client)
    before = api.vault.store.event_count()
    empty = client.post(f"/dashboard/alerts/{alert}/ack", data={"note": "  "}, headers=SAME)
    assert empty.status_code == 422 and 'id="ack-error"' in empty.text
    assert api.vault.store.event_count() == before

    note = "Canary read confirmed.\r\nAccount suspended."
    response = client.post(f"/dashboard/alerts/{alert}/ack", data={"note": note}, headers=SAME)
    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/alerts/{alert}#acknowledgements"
    assert api.vault.store.event_count() == before + 1
    event = api.events()[-1]
    assert (event.action, event.accessor, event.decision) == ("alert_ack", "aud-2", "allow")
    assert alert in event.reason
    shown = client.get(f"/dashboard/alerts/{alert}").text
    assert "Canary read confirmed.\nAccount suspended." in shown and "acknowledged" in shown


def test_a_session_is_refused_once_its_accessor_leaves_oversight(
    backend: str, tmp_path: Any, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    built = build_api(
        home, store_settings_for(backend, home, request), prepare=_prepare, holders=("aud-2",)
    )
    api = next(built)
    try:
        client = _signed_in(api, "aud-2")
        alert = _alert_id(client)
        api.vault.add_accessor(Accessor("aud-2", "hotel-1", "clerk"))
        response = client.get("/dashboard")
        assert response.status_code == 403 and "not an oversight role" in response.text
        before = api.vault.store.event_count()
        ack = client.post(f"/dashboard/alerts/{alert}/ack", data={"note": "x"}, headers=SAME)
        assert ack.status_code == 403 and api.vault.store.event_count() == before + 1
        refused = api.events()[-1]
        assert (refused.action, refused.accessor, refused.decision) == (
            "alert_ack",
            "aud-2",
            "deny",
        )
        api.vault.add_accessor(Accessor("aud-2", "oversight-office", "auditor", active=False))
        assert client.get("/dashboard").status_code == 303  # deactivated: sign in again
    finally:
        built.close()


def test_whatever_an_accessor_named_is_escaped(api: Api) -> None:
    client = _signed_in(api)
    pages = [
        client.get("/dashboard").text,
        client.get(f"/dashboard/alerts/{_alert_id(client)}").text,
        client.get("/dashboard/accessors/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E").text,
    ]
    for text in pages:
        assert "<img src=x" not in text and "<script>alert" not in text and "<i>org" not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text
    overview = pages[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in overview
    assert "&lt;i&gt;org&lt;/i&gt;" in overview  # the organization, in the chart and legend


def test_the_overview_counts_what_the_ledger_holds(api: Api) -> None:
    client = _signed_in(api)
    page = client.get("/dashboard").text
    events = [(seq, e) for seq, e in api.vault.store.events()]
    accesses = sum(e.decision == "allow" and e.action in DISCLOSURES for _, e in events)
    denials = sum(e.decision != "allow" for _, e in events)
    assert re.search(rf'<span class="n">{accesses:,}</span> record accesses', page)
    assert re.search(rf'<span class="n">{denials:,}</span> refusals', page)
    for chart in ("chart-org", "chart-purpose", "chart-denials", "chart-canary"):
        assert f'id="{chart}"' in page
    canary = api.vault.pseudonym(CANARY.id_number)
    touched = [seq for seq, e in events if e.subject == canary and e.action != "put"]
    table = page[page.index('id="touches"') :]
    assert [int(s) for s in re.findall(r'data-seq="(\d+)"', table)] == sorted(touched, reverse=True)


def test_the_counts_grow_with_the_ledger_as_a_fresh_count_would(api: Api) -> None:
    counter = ActivityCounter(vault=api.vault)
    counter.current()
    api.vault.get(access(api.vault, "duty-1", "identity_check"), "identity", CANARY.id_number)
    with pytest.raises(AccessDenied):
        api.vault.get(access(api.vault, "clerk-1", "identity_check"), "identity", CANARY.id_number)
    grown = counter.current()
    fresh = ActivityCounter(vault=api.vault).current()
    assert grown == fresh
    assert grown.size == api.vault.store.event_count()
    assert grown.touches[0][1].accessor == "clerk-1"  # newest first


def test_an_accessor_page_shows_their_timeline_and_alerts(api: Api) -> None:
    client = _signed_in(api)
    page = client.get("/dashboard/accessors/clerk-1").text
    seqs = [int(s) for s in re.findall(r'<tr class="[^"]*" data-seq="(\d+)"', page)]
    assert seqs == [seq for seq, _ in api.vault.store.accessor_events("clerk-1", 100)]
    assert 'id="accessor-no-alerts"' in page and 'id="accessor-chart"' in page
    marked = client.get("/dashboard/accessors/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E").text
    assert "evidence of an alert" in marked and 'class="allowed evidence canary"' in marked
    assert client.get("/dashboard/accessors/nobody").status_code == 404
    assert client.get("/dashboard/alerts/not-an-id").status_code == 404
    assert client.get(f"/dashboard/alerts/{'0' * 24}").status_code == 404


def test_signing_out_ends_the_session_everywhere(api: Api) -> None:
    client = _signed_in(api)
    secret = client.cookies[SESSION_COOKIE]
    assert client.get("/v1/alerts").status_code == 200  # the session also speaks to the API
    out = client.post("/dashboard/logout", headers=SAME)
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/login"
    replay = _browser(api)
    replay.cookies.set(SESSION_COOKIE, secret)
    assert replay.get("/dashboard").status_code == 303
    assert replay.get("/v1/alerts").status_code == 401
