"""Each detector on small hand-built logs: it fires on the misuse it is for, and stays quiet on
ordinary work of the same volume (the peer group's routine)."""

from __future__ import annotations

import math

from custodes.detect import ALERT_THRESHOLD as ALERT
from custodes.detect import CaseInfo, poisson_tail
from custodes.detect._how import (
    BulkRateDetector,
    DepartingDetector,
    DossierDetector,
    EnumerationDetector,
    LowAndSlowDetector,
)
from custodes.detect._whom import (
    CanaryDetector,
    CoworkerDetector,
    FamilyDetector,
    NeighbourDetector,
    OfficialDetector,
    ProtectedDetector,
)
from custodes.detect._why import DenialDetector, PurposeMisuseDetector, UnexplainedDetector
from tests.detect.world import DAY, HOUR, PLAIN, T0, benign_scores, directory, ev, run, top


def test_poisson_tail_matches_the_direct_sum() -> None:
    for count, mean in [(0, 1.0), (1, 0.5), (3, 0.2), (7, 2.5), (40, 10.0)]:
        direct = 1 - sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(count))
        assert math.isclose(poisson_tail(count, mean), direct, rel_tol=1e-6, abs_tol=1e-15)


def test_canary_touch_alerts_at_the_first_read() -> None:
    pipeline = run([CanaryDetector()], [ev("duty-1", "canary", at=3 * DAY + 5)])
    (finding,) = pipeline.findings("duty-1")
    assert finding.score == 1.0
    assert finding.raised == T0 + 3 * DAY + 5
    assert benign_scores(pipeline, but={"duty-1"}) == {}


def test_canary_written_by_a_registrar_is_not_a_touch() -> None:
    write = ev("clerk-1", "canary", action="write", purpose="registration")
    assert top(run([CanaryDetector()], [write]), "clerk-1") == 0.0


def test_unexplained_reads_of_strangers_by_a_teller() -> None:
    strangers = [ev("teller-1", PLAIN[300 + i], at=DAY + i * 900) for i in range(6)]
    pipeline = run([UnexplainedDetector()], strangers)
    assert top(pipeline, "teller-1") >= ALERT
    assert benign_scores(pipeline, but={"teller-1"}) == {}


def test_a_case_explains_reads_of_its_subjects() -> None:
    case = CaseInfo("C-1", "police-1", frozenset(PLAIN[300:306]), frozenset({"inv-1"}),
                    T0, "sup-1", None)  # fmt: skip
    world = directory(cases=[case])
    reads = [ev("inv-1", PLAIN[300 + i], at=DAY + i * 900, case="C-1") for i in range(6)]
    assert top(run([UnexplainedDetector()], reads, world=world), "inv-1") == 0.0
    # The same reads by someone the case is not assigned to are unexplained.
    stolen = [ev("inv-2", PLAIN[300 + i], at=DAY + i * 900, case="C-1") for i in range(6)]
    assert top(run([UnexplainedDetector()], stolen, world=world), "inv-2") >= ALERT


def test_purpose_misuse_asks_an_identity_check_for_travel_history() -> None:
    tries = [
        ev("duty-1", PLAIN[i], at=DAY + i * 60, collection=c, allowed=False)
        for i in range(4)
        for c in ("hotel_stays", "flights")
    ]
    pipeline = run([PurposeMisuseDetector()], tries)
    assert top(pipeline, "duty-1") >= ALERT
    # Asking for too many fields of a collection the purpose covers is ordinary noise.
    noise = [ev("duty-2", PLAIN[1], at=DAY, allowed=False)]
    assert top(run([PurposeMisuseDetector()], noise), "duty-2") == 0.0


def test_repeated_denials_of_one_person_across_days() -> None:
    tries = [
        ev("clerk-1", PLAIN[5], at=d * DAY + 3600, collection="phone_location",
           purpose="lawful_intercept", allowed=False)
        for d in range(4)
        for _ in range(3)
    ]  # fmt: skip
    pipeline = run([DenialDetector()], tries)
    assert top(pipeline, "clerk-1") >= ALERT
    assert benign_scores(pipeline, but={"clerk-1"}) == {}


def test_one_denial_is_not_an_alert() -> None:
    one = [ev("inv-1", PLAIN[5], at=DAY, collection="hotel_stays", allowed=False)]
    assert top(run([DenialDetector()], one), "inv-1") < ALERT


def test_public_figure_read_by_a_border_officer_without_any_reason() -> None:
    peeks = [ev("border-1", "vip", at=d * DAY + 7200) for d in (1, 3)]
    assert top(run([ProtectedDetector()], peeks), "border-1") >= ALERT


def test_public_figure_met_once_in_routine_identity_checks_is_not_an_alert() -> None:
    once = [ev("duty-1", "vip", at=DAY + 10)]
    assert top(run([ProtectedDetector()], once), "duty-1") < ALERT


def test_officials_of_other_organizations_targeted_by_a_director() -> None:
    tries = [
        ev("director-1", who, at=DAY + i * 600, collection=c, purpose="criminal_investigation",
           allowed=False)
        for i, who in enumerate(("official-1", "official-2"))
        for c in ("hotel_stays", "bank_deposits")
    ]  # fmt: skip
    assert top(run([OfficialDetector()], tries), "director-1") >= ALERT


def test_an_official_of_the_same_organization_is_not_cross_org_targeting() -> None:
    reads = [ev("duty-3", "official-1", at=d * DAY) for d in range(3)]  # both at police-2
    assert top(run([OfficialDetector()], reads), "duty-3") == 0.0


def test_colleagues_pressed_for_more_than_an_identity_check() -> None:
    peeks = [
        e
        for d, mate in ((1, "mate-1"), (2, "mate-2"))
        for e in (
            ev("duty-1", mate, at=d * DAY),
            ev("duty-1", mate, at=d * DAY + 40, collection="hotel_stays", allowed=False),
        )
    ]
    pipeline = run([CoworkerDetector()], peeks)
    assert top(pipeline, "duty-1") >= ALERT
    # A colleague met once in routine checks is no alert.
    assert top(run([CoworkerDetector()], [ev("duty-2", "mate-1", at=DAY)]), "duty-2") < ALERT


def test_family_read_by_a_teller_on_two_days() -> None:
    peeks = [ev("teller-1", "kin-1", at=d * DAY + 600) for d in (1, 3)]
    assert top(run([FamilyDetector()], peeks), "teller-1") >= ALERT
    # Someone else reading the same person is not a family lookup.
    other = [ev("teller-2", "kin-1", at=d * DAY + 600) for d in (1, 3)]
    assert top(run([FamilyDetector()], other), "teller-2") == 0.0


def test_flatmates_looked_up_with_extra_collections() -> None:
    peeks = [
        e
        for d, who in ((1, "flat-1"), (2, "flat-2"))
        for e in (
            ev("duty-1", who, at=d * DAY),
            ev("duty-1", who, at=d * DAY + 40, collection="hotel_stays", allowed=False),
        )
    ]
    assert top(run([NeighbourDetector()], peeks), "duty-1") >= ALERT
    assert top(run([NeighbourDetector()], peeks), "duty-2") == 0.0


def test_bulk_reads_in_one_hour_far_above_any_peer() -> None:
    dump = [ev("border-1", PLAIN[i % 400] + f"-{i}", at=DAY + 30 * i) for i in range(100)]
    pipeline = run([BulkRateDetector()], dump)
    assert top(pipeline, "border-1") >= ALERT
    assert benign_scores(pipeline, but={"border-1"}) == {}


def test_a_busy_hour_within_the_peers_range_is_not_bulk() -> None:
    busy = [ev("border-1", PLAIN[200 + i], at=DAY + 60 * i) for i in range(12)]
    assert top(run([BulkRateDetector()], busy), "border-1") == 0.0


def test_enumeration_of_made_up_numbers() -> None:
    guesses = [ev("duty-1", None, at=DAY + 30 * i, action="find", count=0) for i in range(20)]
    assert top(run([EnumerationDetector()], guesses), "duty-1") >= ALERT
    typo = [ev("duty-2", None, at=DAY, action="find", count=0)]
    assert top(run([EnumerationDetector()], typo), "duty-2") == 0.0


def test_low_and_slow_accumulation_over_days() -> None:
    slow = [ev("teller-1", PLAIN[300 + d], at=d * DAY / 2 + 3600) for d in range(8)]
    assert top(run([LowAndSlowDetector()], slow), "teller-1") >= ALERT
    two_days = [ev("teller-1", PLAIN[300 + d], at=d * DAY + 3600) for d in range(2)]
    assert top(run([LowAndSlowDetector()], two_days), "teller-1") == 0.0


def test_dossiers_pulled_minutes_apart_even_under_a_case() -> None:
    collections = ("identity", "hotel_stays", "flights", "border_crossings", "rentals")
    pulls = [
        ev("inv-1", PLAIN[300 + s], at=DAY + s * 900 + i * 60, collection=c, case="C-9")
        for s in range(3)
        for i, c in enumerate(collections)
    ]
    assert top(run([DossierDetector()], pulls), "inv-1") >= ALERT
    spread = [
        ev("inv-1", PLAIN[300], at=DAY + i * 2 * HOUR, collection=c)
        for i, c in enumerate(collections)
    ]
    assert top(run([DossierDetector()], spread), "inv-1") == 0.0


def test_account_used_after_its_holder_left() -> None:
    world = directory(active_to={"teller-1": T0 + 2 * DAY})
    pipeline = run([DepartingDetector()], [], world=world)  # routine work goes on after leaving
    (finding,) = pipeline.findings("teller-1")
    assert finding.score == 1.0
    assert finding.raised >= T0 + 2 * DAY


def test_surge_in_the_days_before_leaving() -> None:
    world = directory(active_to={"teller-2": T0 + 10 * DAY})
    surge = [ev("teller-2", PLAIN[i % 200], at=3 * DAY + 60 * i) for i in range(80)]
    assert top(run([DepartingDetector()], surge, world=world), "teller-2") >= ALERT
    calm = directory(active_to={"teller-2": T0 + 10 * DAY})
    assert top(run([DepartingDetector()], [], world=calm), "teller-2") == 0.0
