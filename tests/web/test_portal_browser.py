"""The transparency portal in headless Chromium, against a served demo vault.

A victim of the demo's data seller signs in with a one-time code and sees the seller's reads of
their record, each checked by the browser itself (Web Crypto) against the witnessed checkpoint;
an entry rewritten in the database shows as NOT verified; a subject cannot reach another
subject's entries by editing URLs; codes work once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.conftest import REPO, Demo, LiveServer, screenshot, tamper_entry

pytestmark = pytest.mark.browser

TAMPERED_FROM = b'"purpose":"criminal_investigation"'
TAMPERED_TO = b'"purpose":"identity_check"'


def sign_in(page: Any, server: LiveServer, subject: str) -> None:
    """Sign in through the login form with a fresh code; wait until every row is checked."""
    page.goto(f"{server.url}/portal/login")
    page.fill("#code", server.portal_code(subject))
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/portal")
    wait_checked(page)


def wait_checked(page: Any) -> None:
    page.wait_for_selector('#verify-status[data-done="true"]')


def marks(page: Any) -> dict[int, tuple[str, str]]:
    """Every row's (state, mark text), by ledger position."""
    found: list[list[Any]] = page.eval_on_selector_all(
        "tr[data-seq]",
        "rows => rows.map(r => [Number(r.dataset.seq), r.querySelector('.mark').dataset.state,"
        " r.querySelector('.mark').textContent])",
    )
    return {seq: (state, text) for seq, state, text in found}


def cell(page: Any, seq: int, column: str) -> str:
    text: str = page.inner_text(f'tr[data-seq="{seq}"] [data-col="{column}"]')
    return text


@pytest.fixture(scope="module")
def tampered(demo_homes: tuple[Demo, Demo]) -> Iterator[tuple[LiveServer, int]]:
    """The copy of the demo with one of the seller's reads of the victim rewritten in the
    database (its purpose made to look routine), served on its own port."""
    copy = demo_homes[1]
    victim = copy.victim("seller")
    seq = victim.events[1]
    tamper_entry(copy.home, seq, TAMPERED_FROM, TAMPERED_TO)
    server = LiveServer(copy.home).start()
    yield server, seq
    server.stop()


def test_victim_sees_the_sellers_reads_all_verified(
    page: Any, live_server: LiveServer, demo: Demo
) -> None:
    victim = demo.victim("seller")
    seller = next(m for m in demo.report.result.truth if m.kind == "seller")
    assert victim.accessor == seller.accessor
    assert set(victim.events) <= set(seller.events)

    sign_in(page, live_server, victim.subject)

    rows = marks(page)
    assert set(victim.events) <= set(rows)
    assert all(state == "verified" for state, _ in rows.values()), rows
    for seq in victim.events:
        assert rows[seq][1].startswith("✓ verified")
        assert seller.accessor in cell(page, seq, "official")
        row = page.locator(f'tr[data-seq="{seq}"]')
        assert row.get_attribute("data-rendered") == "entry"  # drawn from the checked bytes
        assert "witness.custodes.local/demo" in (row.locator(".mark").get_attribute("title") or "")
    status = page.inner_text("#verify-status")
    assert f"{len(rows)} verified" in status and "NOT" not in status
    assert "cosigned by witness.custodes.local/demo" in page.inner_text("#witness-info")
    fingerprint = page.inner_text("#log-fingerprint")
    assert re.fullmatch(r"([0-9a-f]{4} ){7}[0-9a-f]{4}", fingerprint)

    shot = screenshot(page, "portal.png")
    # Refreshed only on request (CUSTODES_README_SCREENSHOTS=1), so test runs leave the tree clean.
    if os.environ.get("CUSTODES_README_SCREENSHOTS") == "1":
        shutil.copyfile(shot, REPO / "docs" / "images" / "portal.png")


def test_filters_narrow_the_rows_and_the_chart(
    page: Any, live_server: LiveServer, demo: Demo
) -> None:
    victim = demo.victim("seller")
    sign_in(page, live_server, victim.subject)
    everything = marks(page)
    org = cell(page, victim.events[0], "org")

    page.select_option("select[name=org]", org)
    page.click("#filters button[type=submit]")
    page.wait_for_url(re.compile(r".*/portal\?.*org="))
    wait_checked(page)
    narrowed = marks(page)
    assert set(victim.events) <= set(narrowed) <= set(everything)
    assert all(cell(page, seq, "org") == org for seq in narrowed)
    assert all(state == "verified" for state, _ in narrowed.values())
    assert page.locator("#timeline g.day").count() >= 1
    assert victim.subject not in page.url  # no ID number in any URL
    screenshot(page, "portal-filtered.png")


def test_a_tampered_entry_is_not_verified(
    page: Any, tampered: tuple[LiveServer, int], demo: Demo
) -> None:
    server, seq = tampered
    victim = demo.victim("seller")
    sign_in(page, server, victim.subject)

    rows = marks(page)
    state, text = rows.pop(seq)
    assert state == "failed"
    assert text.startswith("✗ NOT verified")
    assert "signed root" in text
    assert rows and all(state == "verified" for state, _ in rows.values()), rows
    # The row shows what the database now says, flagged: the forged purpose, in red.
    assert cell(page, seq, "purpose") == "identity_check"
    assert "unverified" in (page.locator(f'tr[data-seq="{seq}"]').get_attribute("class") or "")
    assert "1 NOT verified" in page.inner_text("#verify-status")
    screenshot(page, "portal-tampered.png")

    page.goto(f"{server.url}/portal/entry/{seq}")
    wait_checked(page)
    assert marks(page)[seq][0] == "failed"
    assert json.loads(page.inner_text("#entry-json"))["purpose"] == "identity_check"


def test_a_subject_cannot_reach_another_subjects_entries(
    page: Any, live_server: LiveServer, demo: Demo
) -> None:
    me, other = demo.victim("seller"), demo.victim("covered_seller")
    sign_in(page, live_server, me.subject)
    mine = set(marks(page))
    theirs = set(other.events)
    assert mine and theirs and not mine & theirs

    api = page.request
    foreign = min(theirs)
    absent = 10**12
    refused = api.get(f"{live_server.url}/portal/proofs?seqs={foreign}")
    nothing = api.get(f"{live_server.url}/portal/proofs?seqs={absent}")
    mixed = api.get(f"{live_server.url}/portal/proofs?seqs={min(mine)},{foreign}")
    assert refused.status == nothing.status == mixed.status == 404
    assert refused.json() == nothing.json() == mixed.json()  # existence is not revealed
    assert api.get(f"{live_server.url}/portal/proofs?seqs={min(mine)}").status == 200

    response = page.goto(f"{live_server.url}/portal/entry/{foreign}")
    assert response is not None and response.status == 404
    assert "No such entry" in page.inner_text("main")
    absent_page = api.get(f"{live_server.url}/portal/entry/{absent}")
    assert absent_page.status == 404

    # Query parameters naming someone else change nothing: there is no subject parameter.
    page.goto(f"{live_server.url}/portal?subject={other.subject}&seqs={foreign}")
    wait_checked(page)
    assert set(marks(page)) == mine
    # The session cookie is out of the page's reach (HttpOnly).
    assert "custodes_portal" not in page.evaluate("document.cookie")


def test_codes_work_once_and_wrong_codes_fail(
    page: Any, live_server: LiveServer, demo: Demo
) -> None:
    victim = demo.victim("seller")
    response = page.goto(f"{live_server.url}/portal")
    assert response is not None and page.url == f"{live_server.url}/portal/login"

    page.fill("#code", "ABCD-EFGH-JKMN")
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text("#login-error")
    assert page.url == f"{live_server.url}/portal/login"

    code = live_server.portal_code(victim.subject)
    page.fill("#code", code.lower())  # codes are read aloud and typed: case does not matter
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/portal")
    page.click("#sign-out")
    page.wait_for_url(f"{live_server.url}/portal/login")
    assert page.goto(f"{live_server.url}/portal") is not None
    assert page.url == f"{live_server.url}/portal/login"

    page.fill("#code", code)
    page.click("button[type=submit]")
    assert "not valid" in page.inner_text("#login-error")
    assert page.context.cookies() == []


def test_an_entry_page_shows_the_checked_bytes_and_proof(
    page: Any, live_server: LiveServer, demo: Demo
) -> None:
    victim = demo.victim("seller")
    sign_in(page, live_server, victim.subject)
    seq = victim.events[0]
    page.click(f'tr[data-seq="{seq}"] [data-col="when"] a')
    page.wait_for_url(f"{live_server.url}/portal/entry/{seq}")
    wait_checked(page)
    assert marks(page) == {seq: ("verified", "✓ verified")}
    entry = json.loads(page.inner_text("#entry-json"))
    assert entry["seq"] == seq and entry["accessor"] == victim.accessor
    assert page.locator("#proof li").count() >= 10  # log2 of a few thousand entries
    assert page.inner_text("#checkpoint-note").startswith("custodes.local/default\n")
    screenshot(page, "portal-entry.png")
