"""The fast audited read, on both backends: remembered decisions change no outcome.

Reads under a grant with no case, hours or daily limit are decided without loading today's
subjects; those reads must still count towards the daily limit of another grant, and every read
still leaves its event in the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.config import StoreSettings
from custodes.errors import AccessDenied
from custodes.model import Access
from custodes.sim import generate_people
from custodes.vault import Vault
from tests.helpers import checker_vault

PEOPLE = generate_people(4, seed=11)
GRANTS = """
[purposes.open_check]
description = "Reads without conditions (tests only)."
[purposes.limited_check]
description = "Reads limited to two subjects a day (tests only)."

[[grants]]
role = "checker"
purpose = "open_check"
actions = ["get"]
collections = ["identity"]
fields = ["name", "id_number"]

[[grants]]
role = "checker"
purpose = "limited_check"
actions = ["get"]
collections = ["identity"]
fields = ["name"]
max_subjects_per_day = 2
"""


@pytest.fixture
def vault(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Vault]:
    with checker_vault(tmp_path / "home", store_settings, GRANTS, PEOPLE) as v:
        yield v


def test_reads_without_conditions_count_towards_a_daily_limit(vault: Vault) -> None:
    checker = vault.principal("chk-1")
    open_check = Access(checker, "open_check")
    for p in PEOPLE[:2]:
        [record] = vault.get(open_check, "identity", p.id_number)
        assert record.values == {"name": p.name, "id_number": p.id_number}
    limited = Access(checker, "limited_check")
    # Two subjects already read today (under the unconditional grant): a third is refused...
    with pytest.raises(AccessDenied) as info:
        vault.get(limited, "identity", PEOPLE[2].id_number)
    assert info.value.missing == ("quota",)
    # ...while a subject already read today is not a new one.
    [record] = vault.get(limited, "identity", PEOPLE[0].id_number)
    assert record.values == {"name": PEOPLE[0].name}


def test_reads_after_the_limit_was_loaded_are_counted_too(vault: Vault) -> None:
    checker = vault.principal("chk-1")
    limited, open_check = Access(checker, "limited_check"), Access(checker, "open_check")
    vault.get(limited, "identity", PEOPLE[0].id_number)  # loads today's subjects
    vault.get(open_check, "identity", PEOPLE[1].id_number)  # decided without them
    with pytest.raises(AccessDenied) as info:
        vault.get(limited, "identity", PEOPLE[2].id_number)
    assert info.value.missing == ("quota",)


def test_every_fast_read_is_in_the_ledger(vault: Vault) -> None:
    open_check = Access(vault.principal("chk-1"), "open_check")
    before = vault.store.event_count()
    for p in PEOPLE:
        vault.get(open_check, "identity", p.id_number, ["name"])
    events = list(vault.store.events(before))
    assert [e.decision for _, e in events] == ["allow"] * len(PEOPLE)
    assert {e.subject for _, e in events} == {vault.pseudonym(p.id_number) for p in PEOPLE}
    assert all(e.fields == ("name",) and e.count == 1 for _, e in events)
    vault.ledger.verify()


def test_remembered_subjects_stay_right_when_the_memo_overflows(
    vault: Vault, tmp_path: Path, store_settings: StoreSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Subject refs and pseudonyms are remembered per vault (bounded); a memo that fills up
    # and starts again must still give each subject its own records and pseudonym.
    monkeypatch.setattr("custodes.vault._SUBJECTS_MAX", 2)
    assert len(vault._subjects) == len(PEOPLE)  # remembered from writing their records
    vault._subjects.clear()
    reader = Access(vault.principal("chk-1"), "open_check")
    for _ in range(2):
        for person in reversed(PEOPLE):
            (record,) = vault.get(reader, "identity", person.id_number)
            assert record.values == {"name": person.name, "id_number": person.id_number}
    assert len(vault._subjects) <= 2
    with Vault.open(vault.settings) as fresh:  # nothing remembered: computed from the keys
        for person in PEOPLE:
            assert vault.pseudonym(person.id_number) == fresh.pseudonym(person.id_number)
