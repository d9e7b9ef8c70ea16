"""Misuse detection against the simulator's ground truth, with two baselines in the same run.

For each (seed, people, days) it runs ``custodes demo --export`` (cached under --work), then
``custodes.detect`` over the interchange files, and reports per misuse kind the recall, false
alerts per 1,000 benign accessor-days, the median hours from a misuse's first event to its alert,
and events processed per second. Two baselines run on the same files:

* ``volume_z``: peer-group volume rule: an accessor is flagged the moment its distinct people
  read in one day exceed its peers' mean daily count by 3 standard deviations.
* ``eba3``: plain explanation-based auditing: flagged after 3 accesses that no case,
  relationship or routine duty of the peer group explains.

Seeds 7 and 8 (standard mix) are the ones detection was tuned on; the held-out runs (seeds 101
and 202, a 10,000-person world, and a 21-day month of 3,000 people) were never looked at while
tuning and are reported separately, as is the held-out scenario mix (``--mix shifted``: other
benign-noise levels and misuse intensities; seeds 101 and 303) in ``held_out_mix``.

``streaming`` measures detection inside a vault (``Vault.open(monitor=True)``, SQLite, system
clock): after two simulated days of benign work, one canary read per accessor, and one burst of
distinct reads per border officer; the latency is the real time from the ``get`` that completes
the evidence returning to the alert line being in ``<home>/detect/alerts.jsonl`` (p50 and max over
the trials). Prints JSON.

    .venv/bin/python bench/detect.py [--work DIR] [--quick] [--big] [--no-streaming]
                                     [--no-held-out-mix]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from custodes._home import init_home
from custodes.clock import ManualClock, system_clock
from custodes.config import Settings
from custodes.detect import (
    Baseline,
    Context,
    Directory,
    Event,
    Explanation,
    Pipeline,
    peer_group,
    read_accessors,
    read_cases,
    read_events,
    read_subjects,
)
from custodes.model import Access
from custodes.sim import World, accessor_rows, build_world, simulate, subject_rows
from custodes.vault import Vault

TUNED = [(7, 2_000, 30), (8, 2_000, 30)]
HELD_OUT = [(101, 2_000, 30), (202, 2_000, 30), (303, 10_000, 30), (404, 3_000, 21)]
HELD_OUT_MIX = [(101, 2_000, 30), (303, 2_000, 30)]  # with --mix shifted
BIG = (9, 60_000, 30)  # the throughput run (a few hundred thousand events)


def export(work: Path, seed: int, people: int, days: int, mix: str = "standard") -> Path:
    """The interchange files of one demo run (made once, then reused)."""
    suffix = "" if mix == "standard" else f"-{mix}"
    target = work / f"seed{seed}-p{people}-d{days}{suffix}"
    if not (target / "truth.json").exists():
        subprocess.run(  # noqa: S603 - our own command with fixed arguments
            [
                str(Path(sys.executable).parent / "custodes"), "demo", "--no-serve", "--json",
                "--seed", str(seed), "--people", str(people), "--days", str(days),
                "--mix", mix, "--export", str(target), "--force",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return target


def volume_z(events: list[Event], directory: Directory) -> dict[str, float]:
    """Flag time per accessor of the peer-group volume z-score rule."""
    daily: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
    for ev in events:
        if ev.allowed and ev.subject is not None and ev.action in ("read", "find", "export"):
            daily[ev.accessor][int(ev.ts // 86400)].add(ev.subject)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for info in directory.accessors.values():
        groups[peer_group(info.org, info.role)].append(info.accessor)
    bars: dict[str, float] = {}
    for members in groups.values():
        for accessor in members:
            counts = [len(s) for peer in members if peer != accessor for s in daily[peer].values()]
            if len(counts) >= 2:
                bars[accessor] = statistics.fmean(counts) + 3 * statistics.pstdev(counts)
    flagged: dict[str, float] = {}
    running: dict[tuple[str, int], set[str]] = defaultdict(set)
    for ev in events:
        if ev.accessor in flagged or ev.accessor not in bars or ev.subject is None:
            continue
        if not ev.allowed or ev.action not in ("read", "find", "export"):
            continue
        seen = running[(ev.accessor, int(ev.ts // 86400))]
        seen.add(ev.subject)
        if len(seen) > bars[ev.accessor]:
            flagged[ev.accessor] = ev.ts
    return flagged


def eba3(events: list[Event], context: Context) -> dict[str, float]:
    """Flag time per accessor of plain explanation-based auditing (3 unexplained accesses)."""
    counts: dict[str, int] = defaultdict(int)
    flagged: dict[str, float] = {}
    for ev in events:
        if ev.accessor in flagged or not ev.allowed or ev.subject is None:
            continue
        if ev.action not in ("read", "find", "export"):
            continue
        if context.explain(ev) == Explanation.NONE:
            counts[ev.accessor] += 1
            if counts[ev.accessor] >= 3:
                flagged[ev.accessor] = ev.ts
    return flagged


def score(
    flagged: dict[str, float], truth: list[dict[str, Any]], starts: dict[int, float], benign: int
) -> dict[str, Any]:
    """Recall per kind, false alerts, delays of one detector's flags against the truth."""
    misusers = {m["accessor"] for m in truth}
    per_kind: dict[str, list[bool]] = defaultdict(list)
    delays = []
    for m in truth:
        hit = m["accessor"] in flagged
        per_kind[m["kind"]].append(hit)
        if hit and m["events"]:
            delays.append((flagged[m["accessor"]] - starts[m["events"][0]]) / 3600)
    false = sorted(a for a in flagged if a not in misusers)
    return {
        "found": sum(h for hits in per_kind.values() for h in hits),
        "misusers": len(truth),
        "recall": round(sum(h for v in per_kind.values() for h in v) / max(1, len(truth)), 3),
        "per_kind": {k: sum(v) / len(v) for k, v in sorted(per_kind.items())},
        "false_alerts": len(false),
        "false_accessors": false,
        "false_per_1000_benign_days": round(1000 * len(false) / max(1, benign), 3),
        "median_hours_to_alert": round(statistics.median(delays), 2) if delays else None,
    }


def run(directory: Path, days: int) -> dict[str, Any]:
    """Detection and both baselines over one export."""
    began = time.perf_counter()
    people = Directory(
        read_accessors(directory / "accessors.jsonl"),
        read_subjects(directory / "subjects.jsonl"),
        read_cases(directory / "cases.jsonl"),
    )
    events = list(read_events(directory / "events.jsonl"))
    context = Context(people, Baseline.learn(events, people))
    pipeline = Pipeline(context)
    pipeline.feed(events)
    alerts = pipeline.alerts()
    seconds = time.perf_counter() - began
    truth = json.loads((directory / "truth.json").read_text(encoding="utf-8"))["misuse"]
    starts = {i: events[i].ts for m in truth for i in m["events"][:1]}
    benign = (len(people.accessors) - len({m["accessor"] for m in truth})) * days
    ours = {a.accessor: a.raised for a in alerts}
    kinds = {a.accessor: a.kind for a in alerts}
    return {
        "events": len(events),
        "accessors": len(people.accessors),
        "benign_accessor_days": benign,
        "seconds": round(seconds, 3),
        "events_per_second": round(len(events) / seconds),
        "custodes": score(ours, truth, starts, benign),
        "labels": {m["kind"]: kinds.get(m["accessor"]) for m in truth},
        "volume_z": score(volume_z(events, people), truth, starts, benign),
        "eba3": score(eba3(events, context), truth, starts, benign),
    }


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over several runs, per method."""
    out: dict[str, Any] = {}
    for method in ("custodes", "volume_z", "eba3"):
        found = sum(r[method]["found"] for r in runs)
        total = sum(r[method]["misusers"] for r in runs)
        false = sum(r[method]["false_alerts"] for r in runs)
        benign = sum(r["benign_accessor_days"] for r in runs)
        kinds: dict[str, list[float]] = defaultdict(list)
        for r in runs:
            for kind, value in r[method]["per_kind"].items():
                kinds[kind].append(value)
        delays = [r[method]["median_hours_to_alert"] for r in runs]
        out[method] = {
            "recall": round(found / max(1, total), 3),
            "found": f"{found}/{total}",
            "kinds_found_at_least_once": sum(1 for v in kinds.values() if max(v) > 0),
            "kinds": len(kinds),
            "per_kind_recall": {k: round(statistics.fmean(v), 2) for k, v in sorted(kinds.items())},
            "false_alerts": false,
            "false_per_1000_benign_days": round(1000 * false / max(1, benign), 3),
            "median_hours_to_alert": statistics.median(d for d in delays if d is not None)
            if any(d is not None for d in delays)
            else None,
        }
    return out


def _stream_home(work: Path) -> tuple[Path, World]:
    """A vault after two simulated days of benign work, with the world's annotations."""
    world = dataclasses.replace(build_world(400, seed=21), misusers=())
    settings = init_home(work / "vault")
    clock = ManualClock(datetime(2026, 3, 2, tzinfo=UTC))
    with Vault.open(settings, clock=clock, monitor=False) as vault:
        simulate(vault, world, days=2, seed=21, clock=clock)
        folder = settings.home / "detect"
        folder.mkdir()
        for name, rows in (
            ("subjects.jsonl", subject_rows(vault, world)),
            ("accessors.jsonl", accessor_rows(vault, world)),
        ):
            text = "".join(json.dumps(row) + "\n" for row in rows)
            (folder / name).write_text(text, encoding="utf-8")
    return settings.home, world


class _Watch(threading.Thread):
    """Polls alerts.jsonl every millisecond; records when each accessor's line appeared."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.seen, self.stop = path, {}, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if self.path.exists():
                now = time.perf_counter()
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    alert = json.loads(line)
                    self.seen.setdefault(alert["accessor"], (now, alert))
            time.sleep(0.001)


def _latencies(home: Path, world: World) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"canary_touch": [], "bulk_exfiltration": []}
    with Vault.open(Settings.load(home), clock=system_clock, monitor=True) as vault:
        monitor = vault.monitor
        assert monitor is not None and monitor.flush(60)
        watch = _Watch(home / "detect" / "alerts.jsonl")
        watch.start()
        time.sleep(0.05)
        taken = set(watch.seen)
        rng = random.Random(5)
        for staff in world.staff:
            if staff.accessor in taken:
                continue
            returned: dict[int, float] = {}
            if staff.role in ("duty_officer", "supervisor"):
                access = Access(vault.principal(staff.accessor), "identity_check")
                vault.get(access, "identity", rng.choice(world.canaries).id_number)
                returned[vault.store.event_count() - 1] = time.perf_counter()
                kind = "canary_touch"
            elif staff.role == "border_officer":
                access = Access(vault.principal(staff.accessor), "border_control")
                travellers = [
                    p for p in world.people if p.id_number in set(world.relations[staff.org])
                ]
                for person in rng.sample(travellers, min(80, len(travellers))):
                    vault.get(access, "identity", person.id_number)
                    returned[vault.store.event_count() - 1] = time.perf_counter()
                kind = "bulk_exfiltration"
            else:
                continue
            deadline = time.perf_counter() + 5
            while staff.accessor not in watch.seen and time.perf_counter() < deadline:
                time.sleep(0.001)
            if staff.accessor in watch.seen:
                appeared, alert = watch.seen[staff.accessor]
                crossing = max(alert["evidence"])  # the read that completed the evidence
                if alert["kind"] == kind and crossing in returned:
                    out[kind].append(appeared - returned[crossing])
        watch.stop.set()
    return out


def streaming(work: Path) -> dict[str, Any]:
    """Real wall-clock latency from an access to its alert line, per kind."""
    with tempfile.TemporaryDirectory(dir=work, prefix="stream-") as scratch:
        home, world = _stream_home(Path(scratch))
        latencies = _latencies(home, world)
    report: dict[str, Any] = {}
    for kind, values in latencies.items():
        report[kind] = {
            "trials": len(values),
            "p50_s": round(statistics.median(values), 4) if values else None,
            "max_s": round(max(values), 4) if values else None,
            "target_s": 1.0,
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(tempfile.gettempdir()) / "custodes-bench-detect"
    parser.add_argument("--work", type=Path, default=default, help="demo exports (reused)")
    parser.add_argument("--quick", action="store_true", help="tuned seeds only")
    parser.add_argument("--big", action="store_true", help="also the 60,000-person run")
    parser.add_argument("--no-streaming", action="store_true", help="skip the streaming latency")
    parser.add_argument("--no-held-out-mix", action="store_true", help="skip the shifted mix")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    held_out = [] if args.quick else HELD_OUT
    shifted = [] if args.quick or args.no_held_out_mix else HELD_OUT_MIX
    for label, plan, mix in (
        ("tuned", TUNED, "standard"),
        ("held_out", held_out, "standard"),
        ("held_out_mix", shifted, "shifted"),
    ):
        runs = {}
        for seed, people, days in plan:
            name = f"seed {seed}, {people} people, {days} days" + (
                "" if mix == "standard" else f", {mix} mix"
            )
            runs[name] = run(export(args.work, seed, people, days, mix), days)
        if runs:
            report[label] = {"runs": runs, "pooled": pooled(list(runs.values()))}
    if args.big:
        seed, people, days = BIG
        big = run(export(args.work, seed, people, days), days)
        report["throughput"] = {
            "events": big["events"],
            "seconds": big["seconds"],
            "events_per_second": big["events_per_second"],
            "custodes": {k: big["custodes"][k] for k in ("recall", "false_alerts")},
        }
    if not args.no_streaming:
        report["streaming"] = streaming(args.work)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
