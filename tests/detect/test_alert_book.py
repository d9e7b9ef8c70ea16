"""The alert book: stable ids, severity bands, the alerts file as it changes, acknowledgements
derived from the ledger, and the new ``alert_ack`` action passing through export and detection.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodes.config import StoreSettings
from custodes.detect import (
    SEVERITIES,
    AlertBook,
    Monitor,
    alert_id,
    detect_files,
    read_events,
    severity_of,
)
from custodes.errors import AccessDenied, InputError, NotFound, StoreError
from custodes.ledger.export import export_ledger
from custodes.model import Accessor
from custodes.vault import Vault
from tests.helpers import access, make_vault, raw_sql

AUDITOR = Accessor("aud-1", "oversight-office", "auditor")
SUBJECT = "11010519491231002X"
ROW: dict[str, Any] = {
    "accessor": "inv-1",
    "kind": "canary_touch",
    "kinds": ["canary_touch"],
    "score": 1.0,
    "first_ts": "2026-03-02T02:00:00+00:00",
    "last_ts": "2026-03-02T02:00:00+00:00",
    "raised_at": "2026-03-02T02:00:00+00:00",
    "evidence": [0],
    "explanation": "inv-1 touched a canary record.",
}


@pytest.fixture
def vault(tmp_path: Path) -> Iterator[Vault]:
    store = StoreSettings(backend="sqlite", path=tmp_path / "home" / "data" / "custodes.db")
    opened = make_vault(tmp_path / "home", store)
    opened.add_accessor(AUDITOR)
    opened.put(
        access(opened, "reg-1", "registration"),
        "identity",
        SUBJECT,
        {"name": "Li Lei", "id_number": SUBJECT, "birth_date": "1949-12-31"},
    )
    yield opened
    opened.close()


def _write(vault: Vault, *rows: dict[str, Any] | str) -> Path:
    path = vault.settings.home / "detect" / "alerts.jsonl"
    path.parent.mkdir(exist_ok=True)
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("kinds", "score", "severity"),
    [
        (["canary_touch"], 1.0, "critical"),
        (["bulk_exfiltration"], 0.95, "critical"),
        (["dossier_pull"], 0.7, "high"),  # weak evidence: one band lower
        (["official_targeting"], 0.8, "high"),
        (["unexplained_access", "family_lookup"], 0.9, "high"),  # the gravest kind decides
        (["family_lookup"], 0.6, "medium"),
        (["repeated_denials"], 1.0, "medium"),
        (["purpose_misuse"], 0.55, "low"),
        (["a_kind_added_later"], 0.9, "medium"),
        ([], 0.9, "medium"),
    ],
)
def test_severity_bands(kinds: list[str], score: float, severity: str) -> None:
    assert severity_of(kinds, score) == severity
    assert severity in SEVERITIES


def test_an_alert_id_is_a_digest_of_what_the_alert_says() -> None:
    text = "inv-1\ncanary_touch\n2026-03-02T02:00:00+00:00\n0,5,9"
    expected = hashlib.sha256(text.encode()).hexdigest()[:24]
    assert alert_id("inv-1", "canary_touch", "2026-03-02T02:00:00+00:00", [0, 5, 9]) == expected
    assert alert_id("inv-1", "canary_touch", "2026-03-02T02:00:00+00:00", [0, 5]) != expected


def test_the_book_follows_the_alerts_file(vault: Vault, caplog: pytest.LogCaptureFixture) -> None:
    book = AlertBook(vault=vault)
    assert book.alerts() == []  # no file yet
    path = _write(vault, ROW, ROW, {"accessor": "x"})
    with caplog.at_level(logging.WARNING):
        (only,) = book.alerts()
    assert only.severity == "critical" and only.evidence == (0,)
    assert "line 3 is not an alert" in caplog.text
    second = {**ROW, "accessor": "inv-2", "evidence": [0, 1]}
    with path.open("a", encoding="utf-8") as handle:  # streaming detection appends
        handle.write(json.dumps(second) + "\n")
    assert {a.accessor for a in book.alerts()} == {"inv-1", "inv-2"}
    assert [e[0] for e in book.evidence(book.alerts(accessor="inv-2")[0])] == [0]  # 1 is absent
    with pytest.raises(NotFound):
        book.alert("f" * 24)
    path.write_text("{broken\n", encoding="utf-8")
    with pytest.raises(StoreError, match="alerts file is damaged"):
        book.alerts()


def test_only_oversight_may_acknowledge_and_refusals_are_recorded(vault: Vault) -> None:
    book = AlertBook(vault=vault)
    _write(vault, ROW)
    (alert,) = book.alerts()
    size = vault.store.event_count()
    with pytest.raises(AccessDenied):
        book.acknowledge(access(vault, "inv-1", "oversight"), alert.alert_id, "not me")
    with pytest.raises(AccessDenied):  # an unknown id is no way to learn which ids exist
        book.acknowledge(access(vault, "inv-1", "oversight"), "a" * 24, "probe")
    assert vault.store.event_count() == size + 2
    assert [e.decision for _, e in vault.store.accessor_events("inv-1", 2)] == ["deny", "deny"]
    with pytest.raises(NotFound):
        book.acknowledge(access(vault, "aud-1", "oversight"), "a" * 24, "note")
    with pytest.raises(InputError):
        vault.acknowledge_alert(access(vault, "aud-1", "oversight"), "not hex", "note")
    assert vault.store.event_count() == size + 2
    ack = book.acknowledge(access(vault, "aud-1", "oversight"), alert.alert_id, "a\r\nb")
    assert ack.note == "a\nb" and ack.seq == size + 2
    assert book.alert(alert.alert_id).acknowledgements == (ack,)
    assert book.acknowledgements() == {alert.alert_id: (ack,)}


def test_an_altered_note_is_reported_not_shown(
    vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    book = AlertBook(vault=vault)
    _write(vault, ROW)
    (alert,) = book.alerts()
    seq = book.acknowledge(access(vault, "aud-1", "oversight"), alert.alert_id, "fine").seq
    raw_sql(vault, "DROP TRIGGER IF EXISTS events_no_update")
    raw_sql(vault, "UPDATE events SET justification = '00' || justification WHERE seq = ?", (seq,))
    with caplog.at_level(logging.WARNING):
        (ack,) = AlertBook(vault=vault).alert(alert.alert_id).acknowledgements
    assert ack.note is None and "failed authentication" in caplog.text


def test_export_and_detection_pass_over_acknowledgements(vault: Vault, tmp_path: Path) -> None:
    _write(vault, ROW)
    book = AlertBook(vault=vault)
    book.acknowledge(access(vault, "aud-1", "oversight"), book.alerts()[0].alert_id, "ok")
    with pytest.raises(AccessDenied):
        book.acknowledge(access(vault, "inv-1", "oversight"), book.alerts()[0].alert_id, "x")
    summary = export_ledger(vault, tmp_path / "export")
    events = list(read_events(tmp_path / "export" / "events.jsonl"))
    assert len(events) == summary.size
    assert [(e.action, e.allowed) for e in events[-2:]] == [
        ("alert_ack", True),
        ("alert_ack", False),
    ]
    report = detect_files(
        events=tmp_path / "export" / "events.jsonl",
        accessors=tmp_path / "export" / "accessors.jsonl",
        subjects=tmp_path / "export" / "subjects.jsonl",
        cases=tmp_path / "export" / "cases.jsonl",
    )
    assert report.alerts == []


def test_streaming_detection_starts_over_a_ledger_with_acknowledgements(
    vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    _write(vault, ROW)
    book = AlertBook(vault=vault)
    book.acknowledge(access(vault, "aud-1", "oversight"), book.alerts()[0].alert_id, "ok")
    settings = vault.settings
    vault.close()
    with caplog.at_level(logging.ERROR), Vault.open(settings, monitor=True) as reopened:
        monitor = reopened.monitor
        assert isinstance(monitor, Monitor)
        reopened.get(access(reopened, "duty-1", "identity_check"), "identity", SUBJECT)
        again = AlertBook(vault=reopened)
        again.acknowledge(access(reopened, "aud-1", "oversight"), again.alerts()[0].alert_id, "2")
        assert monitor.flush(timeout=10)
    assert "could not start" not in caplog.text and "failed" not in caplog.text
