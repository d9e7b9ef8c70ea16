"""The lookup helper process of trace-leak: it answers exactly what this process would, on both
backends, and a helper that fails or answers garbage costs time, never a wrong result."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.forensics import _trace, read_leak, resolve_subjects, trace_leak
from custodes.forensics._lookups import LookupHelper, _decode, _encode, lookup_values
from custodes.model import Access, Accessor
from custodes.sim import Person, generate_people
from custodes.vault import Vault

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def vault(tmp_path: Path, store_settings: StoreSettings) -> Iterator[Vault]:
    """A vault holding the identity records of the first 150 of ``_people()``."""
    settings = init_home(tmp_path / "vault", backend=store_settings.backend, url=store_settings.url)
    with Vault.open(settings, clock=ManualClock(START), monitor=False) as opened:
        opened.add_accessor(Accessor("reg-1", "registry", "registrar"))
        registrar = Access(opened.principal("reg-1"), "registration")
        opened.put_many(
            registrar, "identity", [(p.id_number, p.identity_record()) for p in _people()[:150]]
        )
        yield opened


def _people() -> list[Person]:
    return generate_people(200, seed=5)


def _numbers() -> list[str]:
    return [p.id_number for p in _people()]  # 150 in the vault, 50 not


def test_the_helper_answers_what_this_process_would(vault: Vault) -> None:
    expected = lookup_values(vault.store, vault._index, "identity", "id_number", _numbers())
    assert len(expected[0]) == 150 and len(expected[1]) == 150
    with LookupHelper(vault.settings) as helper:
        assert helper.running
        helper.submit("identity", "id_number", _numbers())
        assert helper.result() == expected
        assert not helper.running  # one request, then the helper is gone


def _leak(tmp_path: Path) -> Path:
    path = tmp_path / "leak.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["证件号码", "姓名", "手机号"])
        for person in _people():
            writer.writerow([person.id_number, person.name, person.phone])
    return path


def test_a_trace_with_a_helper_reports_what_one_without_does(
    vault: Vault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leak = _leak(tmp_path)
    alone = trace_leak(vault, leak).as_dict()
    monkeypatch.setattr(_trace, "HELPER_MIN_BYTES", 0)
    monkeypatch.setattr(_trace, "HELPER_MIN_VALUES", 1)
    helped = trace_leak(vault, leak).as_dict()
    for report in (alone, helped):
        del report["seconds"], report["timings"]
    assert helped == alone
    assert helped["matched_rows"] == 150 and helped["verdict"] == "ours"


def test_a_helper_that_cannot_open_the_vault_costs_time_not_results(
    vault: Vault, tmp_path: Path
) -> None:
    table = read_leak(_leak(tmp_path))
    alone = resolve_subjects(vault, table)
    keyless = dataclasses.replace(vault.settings, keys_dir=tmp_path / "no-keys-here")
    with LookupHelper(keyless) as helper:
        assert _trace.HELPER_MIN_VALUES > 150
        values = list({n for n in table.id_numbers if n})
        helper.submit("identity", "id_number", values)
        assert helper.result() is None  # it died on the missing key file
    with LookupHelper(keyless) as helper:
        # Forced to share the work with the dying helper, the trace does its half here.
        shared = _trace._lookup_shared(vault, helper, "identity", "id_number", values, None, {})
    assert shared == lookup_values(vault.store, vault._index, "identity", "id_number", values)[0]
    assert sum(1 for s in alone.table.subjects if s) == 150


def test_a_garbled_answer_is_refused_not_believed(vault: Vault) -> None:
    values = _numbers()
    found, names = lookup_values(vault.store, vault._index, "identity", "id_number", values)
    answer = _encode(values, found, names)
    assert _decode(answer, values) == (found, names)
    assert _decode(answer, values[:10]) is None  # positions past the values asked about
    hits = len(found)
    garbled = answer[: -hits * 32] + b"\xff" * (hits * 32)  # pseudonyms that are not hex text
    assert _decode(garbled, values) is None
