"""The pipeline: weak findings about one accessor add up, one alone does not; alerts are raised
at the event that crossed the threshold, so events can be fed one at a time."""

from __future__ import annotations

from custodes.detect import ALERT_THRESHOLD, Baseline, Context, Pipeline, default_detectors
from custodes.detect._context import Explanation
from tests.detect.world import DAY, PLAIN, directory, ev, log, routine, run


def test_every_detector_has_a_name_and_a_description() -> None:
    detectors = default_detectors()
    names = [d.name for d in detectors]
    assert len(set(names)) == len(names) >= 12
    assert all(d.description for d in detectors)


def test_routine_work_raises_no_alert() -> None:
    assert run(default_detectors(), []).alerts() == []


def test_one_weak_signal_stays_below_the_threshold_and_two_add_up() -> None:
    # One colleague pressed once: a weak coworker finding, no alert.
    weak = [
        ev("duty-1", "mate-1", at=DAY),
        ev("duty-1", "mate-1", at=DAY + 40, collection="hotel_stays", allowed=False),
    ]
    pipeline = run(default_detectors(), weak)
    assert 0 < max(f.score for f in pipeline.findings("duty-1")) < ALERT_THRESHOLD
    assert pipeline.alerts() == []
    # Add a flatmate pressed the same way: two kinds of evidence about the same person.
    more = [
        ev("duty-1", "flat-1", at=2 * DAY),
        ev("duty-1", "flat-1", at=2 * DAY + 40, collection="flights", allowed=False),
    ]
    (alert,) = run(default_detectors(), weak + more).alerts()
    assert alert.accessor == "duty-1"
    assert alert.score >= ALERT_THRESHOLD
    assert {"coworker_lookup", "neighbour_lookup"} <= set(alert.kinds)


def test_events_fed_one_at_a_time_raise_the_alert_at_the_crossing_event() -> None:
    world = directory()
    events = log([*routine(), ev("teller-1", "canary", at=2 * DAY + 5)])
    pipeline = Pipeline(Context(world, Baseline.learn(events, world)))
    raised = [(e.index, a) for e in events if (a := pipeline.observe(e)) is not None]
    ((index, alert),) = raised
    assert events[index].subject == "canary"
    assert alert.kind == "canary_touch" and alert.raised == events[index].ts
    body = alert.as_dict()
    assert body["evidence"] == [index] and body["first_ts"] == body["last_ts"]


def test_one_misuser_cannot_make_their_habit_look_like_duty() -> None:
    # teller-3 reads strangers all month; its two peers at bank-1 read only customers.
    habit = [ev("teller-3", PLAIN[i], at=i * 600.0) for i in range(60)]
    world = directory()
    events = log(routine() + habit)
    context = Context(world, Baseline.learn(events, world))
    assert context.explain(habit[0]) == Explanation.NONE
