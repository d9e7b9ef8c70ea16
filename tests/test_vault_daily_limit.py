"""A grant's daily limit holds however the subjects are reached: read, found or exported.

A find or an export names no subject when it is decided; the subjects it reaches are known
only afterwards. They count against the limit then, before anything is released: otherwise
an accessor limited to two people a day could find any number of them by ID number (and,
those subjects now being "today's", read them all too).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.config import StoreSettings
from custodes.errors import AccessDenied
from custodes.model import Access, Action
from custodes.sim import generate_people
from custodes.vault import Vault
from tests.helpers import START, checker_vault

PEOPLE = generate_people(5, seed=17)
GRANTS = """
[purposes.limited_check]
description = "Lookups and reads of at most two people a day (tests only)."
[purposes.limited_export]
description = "Exports reaching at most three people a day (tests only)."

[[grants]]
role = "checker"
purpose = "limited_check"
actions = ["get", "find"]
collections = ["identity"]
fields = ["name", "id_number"]
max_subjects_per_day = 2

[[grants]]
role = "checker"
purpose = "limited_export"
actions = ["export"]
collections = ["identity"]
fields = ["name"]
max_subjects_per_day = 3
"""


@pytest.fixture
def vault(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Vault]:
    with checker_vault(tmp_path / "home", store_settings, GRANTS, PEOPLE) as v:
        yield v


def _checker(vault: Vault, purpose: str) -> Access:
    return Access(vault.principal("chk-1"), purpose)


def test_finds_count_towards_the_daily_limit(vault: Vault) -> None:
    check = _checker(vault, "limited_check")
    for p in PEOPLE[:2]:
        (found,) = vault.find(check, "identity", "id_number", p.id_number)
        assert found.values["name"] == p.name
    before = vault.store.event_count()
    with pytest.raises(AccessDenied) as info:
        vault.find(check, "identity", "id_number", PEOPLE[2].id_number)
    assert info.value.missing == ("quota",)
    assert "daily limit of 2 subjects" in info.value.reason
    # The refusal is recorded, naming no subject (the find's target is not revealed).
    ((_, event),) = list(vault.store.events(before))
    assert (event.action, event.decision, event.subject) == ("find", "deny", None)
    # Nothing of the third person was released, so reading them is refused too...
    with pytest.raises(AccessDenied):
        vault.get(check, "identity", PEOPLE[2].id_number)
    # ...while the two people of today may be found and read again.
    (again,) = vault.find(check, "identity", "id_number", PEOPLE[0].id_number)
    assert again.values["name"] == PEOPLE[0].name
    (read,) = vault.get(check, "identity", PEOPLE[1].id_number)
    assert read.values["name"] == PEOPLE[1].name


def test_a_find_that_reaches_nobody_is_not_refused(vault: Vault) -> None:
    check = _checker(vault, "limited_check")
    for p in PEOPLE[:2]:
        vault.get(check, "identity", p.id_number)
    unknown = generate_people(1, seed=99)[0].id_number
    assert vault.find(check, "identity", "id_number", unknown) == []


def test_an_export_reaching_more_people_than_the_limit_is_refused_whole(vault: Vault) -> None:
    export = _checker(vault, "limited_export")
    before = vault.store.event_count()
    with pytest.raises(AccessDenied) as info:
        vault.export(export, "identity")  # five people; the limit is three
    assert info.value.missing == ("quota",)
    ((_, event),) = list(vault.store.events(before))
    assert (event.action, event.decision, event.count) == ("export", "deny", 0)
    # Nothing was released: the refused export put nobody on today's list.
    check = _checker(vault, "limited_check")
    for p in PEOPLE[:2]:
        (read,) = vault.get(check, "identity", p.id_number)
        assert read.values["name"] == p.name


def test_a_decision_carries_its_grants_daily_limit(vault: Vault) -> None:
    def limit(access: Access, action: Action) -> int:
        decision = vault.policy.decide(
            access=access,
            action=action,
            collection="identity",
            fields=None,
            subject_ref=None,
            subject=None,
            case=None,
            now=START,
            subjects_today=frozenset(),
        )
        assert decision.allowed
        return decision.daily_limit

    assert limit(_checker(vault, "limited_check"), Action.FIND) == 2
    assert limit(_checker(vault, "limited_export"), Action.EXPORT) == 3
    assert limit(Access(vault.principal("reg-1"), "registration"), Action.PUT) == 0
