"""Streaming detection inside the vault, on both backends: alerts for canary touches and bulk
exfiltration as the reads are committed (0 s of simulated time, under 1 s of wall-clock time),
a broken detector never breaks a read, and ``custodes alerts`` lists what was raised."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes._cli_common import out
from custodes._home import init_home
from custodes.cli import main
from custodes.clock import ManualClock, system_clock
from custodes.config import Settings, StoreSettings
from custodes.detect import (
    Alert,
    Context,
    Detector,
    Event,
    Finding,
    Monitor,
    default_detectors,
)
from custodes.model import Access
from custodes.sim import World, accessor_rows, build_world, simulate, subject_rows
from custodes.sim._people import Person
from custodes.vault import Vault

SIM_START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


@dataclass
class Annotated:
    """A vault home after two simulated days of benign work, with the world's annotations."""

    settings: Settings
    world: World
    clock: ManualClock

    def open(self, **kw: object) -> Vault:
        kw.setdefault("clock", self.clock)
        kw.setdefault("monitor", True)
        return Vault.open(self.settings, **kw)  # type: ignore[arg-type]

    def alerts_file(self) -> list[dict[str, object]]:
        path = self.settings.home / "detect" / "alerts.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def annotated(tmp_path: Path, store_settings: StoreSettings) -> Annotated:
    settings = init_home(tmp_path / "vault", backend=store_settings.backend, url=store_settings.url)
    world = dataclasses.replace(build_world(250, seed=11), misusers=())  # benign history only
    clock = ManualClock(SIM_START)
    with Vault.open(settings, clock=clock, monitor=False) as vault:
        simulate(vault, world, days=2, seed=11, clock=clock)
        folder = settings.home / "detect"
        folder.mkdir()
        for name, rows in (
            ("subjects.jsonl", subject_rows(vault, world)),
            ("accessors.jsonl", accessor_rows(vault, world)),
        ):
            text = "".join(json.dumps(row) + "\n" for row in rows)
            (folder / name).write_text(text, encoding="utf-8")
    return Annotated(settings, world, clock)


def _staff(world: World, role: str, monitor: Monitor | None = None) -> str:
    """An accessor of ``role`` that the history did not already alert on (a short history
    makes a thin baseline: a few benign accessors are alerted while the monitor catches up)."""
    taken = {a.accessor for a in monitor.alerts} if monitor is not None else set()
    return next(s.accessor for s in world.staff if s.role == role and s.accessor not in taken)


def _live(monitor: Monitor) -> list[Alert]:
    return monitor.alerts[monitor.caught_up :]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def test_a_canary_read_is_alerted_at_the_moment_of_the_read(annotated: Annotated) -> None:
    with annotated.open() as vault:
        monitor = vault.monitor
        assert monitor is not None and monitor.flush(30)
        annotated.clock.advance(timedelta(hours=3))
        duty = _staff(annotated.world, "duty_officer", monitor)
        canary = annotated.world.canaries[0]
        records = vault.get(
            Access(vault.principal(duty), "identity_check"), "identity", canary.id_number
        )
        assert records  # the read itself is unaffected
        seq = vault.store.event_count() - 1
        assert monitor.flush(5)
        (alert,) = _live(monitor)
    assert alert.accessor == duty and alert.kind == "canary_touch"
    assert alert.evidence == [seq]
    assert alert.raised == annotated.clock.now.timestamp()  # 0 s of simulated latency
    (line,) = [a for a in annotated.alerts_file() if a["live"]]
    assert line["accessor"] == duty and line["evidence"] == [seq] and line["live"] is True
    assert line["raised_at"] == _iso(annotated.clock.now)


def _travellers(world: World, org: str, officer: str, count: int) -> list[Person]:
    """People the post legitimately deals with and nothing else marks (not employees,
    protected persons or the officer's household), so only the volume is unusual."""
    me = next(s.person for s in world.staff if s.accessor == officer)
    related = set(world.relations[org])
    plain = [
        p
        for p in world.people
        if p.id_number in related
        and p.id_number not in world.employer
        and p.id_number not in world.protected
        and p.address != me.address
    ]
    assert len(plain) >= count
    return random.Random(3).sample(plain, count)


def test_a_night_burst_is_alerted_during_the_burst(annotated: Annotated) -> None:
    # 03:00 in Shanghai on the next day, a read every 4 seconds.
    annotated.clock.now = datetime(2026, 3, 4, 19, 0, tzinfo=UTC)
    with annotated.open() as vault:
        monitor = vault.monitor
        assert monitor is not None and monitor.flush(30)
        officer = _staff(annotated.world, "border_officer", monitor)
        org = vault.principal(officer).org
        people = _travellers(annotated.world, org, officer, 60)
        border = Access(vault.principal(officer), "border_control")
        crossed, reads = None, []
        for number, person in enumerate(people, 1):
            vault.get(border, "identity", person.id_number)
            reads.append((vault.store.event_count() - 1, annotated.clock.now))
            assert monitor.flush(5)
            if crossed is None and _live(monitor):
                crossed = number
            annotated.clock.advance(timedelta(seconds=4))
        (alert,) = _live(monitor)
    assert alert.kind == "bulk_exfiltration" and alert.accessor == officer
    # Raised at the read that brought the hour to the bar (>= 30 people), long before the end,
    # with no delay in simulated time; its evidence is the burst so far.
    assert crossed is not None and 30 <= crossed < len(people)
    seq, at = reads[crossed - 1]
    assert alert.raised == at.timestamp()
    assert alert.evidence == [s for s, _ in reads[:crossed]]
    assert seq == alert.evidence[-1]


def test_the_alert_line_is_written_within_a_second_of_the_read(annotated: Annotated) -> None:
    alerts = annotated.settings.home / "detect" / "alerts.jsonl"
    with annotated.open(clock=system_clock) as vault:
        monitor = vault.monitor
        assert monitor is not None and monitor.flush(30)
        duty = _staff(annotated.world, "duty_officer", monitor)
        access = Access(vault.principal(duty), "identity_check")
        vault.get(access, "identity", annotated.world.canaries[1].id_number)
        returned = time.perf_counter()
        while duty not in (alerts.read_text(encoding="utf-8") if alerts.exists() else ""):
            assert time.perf_counter() - returned < 1.0, "no alert line within 1 s of the read"
            time.sleep(0.002)
        latency = time.perf_counter() - returned
    assert latency < 1.0
    (line,) = [a for a in annotated.alerts_file() if a["accessor"] == duty]
    assert line["kind"] == "canary_touch" and line["live"] is True


class _Broken(Detector):
    """A detector that fails on the first event from ledger index ``start`` on, then works
    (and finds nothing)."""

    name = "broken"
    description = "Raises once."

    def __init__(self, start: int) -> None:
        self.start = start
        self.failed = False

    def observe(self, event: Event, why: str, ctx: Context) -> Finding | None:
        if event.index >= self.start and not self.failed:
            self.failed = True
            raise RuntimeError("detector bug")
        return None


def test_a_failing_detector_never_breaks_a_read(
    annotated: Annotated, caplog: pytest.LogCaptureFixture
) -> None:
    annotated.settings.home.joinpath("detect", "accessors.jsonl").unlink()  # fewer than usual

    def factory(vault: Vault) -> Monitor:
        start = vault.store.event_count()  # fail on the first live event
        return Monitor(vault, detectors=lambda: [_Broken(start), *default_detectors()])

    annotated.clock.advance(timedelta(hours=3))
    world = annotated.world
    with caplog.at_level(logging.ERROR), annotated.open(monitor=factory) as vault:
        monitor = vault.monitor
        assert monitor is not None and monitor.flush(30)
        caplog.clear()
        duty = Access(vault.principal(_staff(world, "duty_officer", monitor)), "identity_check")
        first = vault.get(duty, "identity", world.people[0].id_number)
        assert first and first[0].values["id_number"] == world.people[0].id_number
        assert monitor.flush(5)
        assert "streaming detection failed on ledger entry" in caplog.text
        assert "detector bug" in caplog.text
        # Detection goes on after the failure: the next canary read is alerted.
        vault.get(duty, "identity", world.canaries[0].id_number)
        assert monitor.flush(5)
        assert [a.kind for a in _live(monitor)] == ["canary_touch"]


def test_the_alerts_command_lists_alerts_as_json(
    annotated: Annotated, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = str(annotated.settings.home)
    assert main(["alerts", "--home", home, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    annotated.clock.advance(timedelta(hours=3))
    with annotated.open() as vault:
        assert vault.monitor is not None and vault.monitor.flush(30)
        caught_up = vault.monitor.caught_up
        duty = _staff(annotated.world, "duty_officer", vault.monitor)
        access = Access(vault.principal(duty), "identity_check")
        for canary in annotated.world.canaries[:2]:
            vault.get(access, "identity", canary.id_number)
    # close() drained the queue: the alert is on file for a separate process to list.
    assert main(["alerts", "--home", home, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == caught_up + 1
    alert = listed[0]  # newest first
    assert alert["accessor"] == duty and alert["kind"] == "canary_touch" and alert["live"]
    assert {"score", "evidence", "explanation", "raised_at", "written_at"} <= set(alert)
    monkeypatch.setattr(out, "width", 400)  # one table row per alert, nothing folded
    assert main(["alerts", "--home", home]) == 0
    text = capsys.readouterr().out
    assert duty in text and "canary_touch" in text


def test_alerts_refuses_a_directory_that_is_no_vault(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "--home", str(tmp_path), "--json"]) == 1
    captured = capsys.readouterr()
    assert "custodes.toml is missing" in captured.err and "Traceback" not in captured.err


def test_streaming_is_off_unless_asked_for(tmp_path: Path) -> None:
    settings = init_home(tmp_path / "vault")
    with Vault.open(settings) as vault:
        assert vault.monitor is None
    (settings.home / "custodes.toml").write_text(
        (settings.home / "custodes.toml").read_text(encoding="utf-8")
        + "\n[detect]\nstream = true\n",
        encoding="utf-8",
    )
    with Vault.open(Settings.load(settings.home)) as vault:
        assert vault.monitor is not None
