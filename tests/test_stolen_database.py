"""A stolen database (or backup) is ciphertext: no plaintext value, no ID number in any byte.

The reported police database sat in a public cloud unencrypted for over a year. Here we fill a
vault with 10,000 synthetic people across every collection, then read every byte an intruder
would take — SQLite's database, WAL and shared-memory files; a ``pg_dump`` of PostgreSQL — and
search them for every plaintext value and every ID number written.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import string
import subprocess
from collections import defaultdict
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import ahocorasick
import pytest

from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.schema import Schema
from custodes.sim import generate_people, sample_records
from custodes.vault import Vault
from tests.helpers import access, make_vault

PEOPLE = 10_000
# A clock far from every generated value, with microseconds, so that the access timestamps the
# log keeps in clear cannot coincide with a plaintext date or time by chance.
CLOCK_START = datetime(2031, 7, 9, 3, 0, 0, 123457, tzinfo=UTC)
CLOCK_TEXT = CLOCK_START.isoformat().encode()
HEX = frozenset(string.hexdigits)


def _fill(vault: Vault) -> set[str]:
    """Write 10,000 people through the vault; return every plaintext value written."""
    schema = Schema.default()
    rng = random.Random(2026)
    batches: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
    written: set[str] = set()
    for person in generate_people(PEOPLE, seed=2026):
        written.add(person.id_number)
        for collection, records in sample_records(person, rng).items():
            for values in records:
                batches[collection].append((person.id_number, values))
                written.update(values.values())
                written.update(schema.collection(collection).validate(values).values())
    registrar = access(vault, "reg-1", "registration")
    for collection, items in batches.items():
        for start in range(0, len(items), 2_000):
            vault.put_many(registrar, collection, items[start : start + 2_000])
    return written


def _stolen_bytes(vault: Vault) -> bytes:
    st = vault.settings.store
    # Ledger bundles of many entries are zlib-compressed, which would hide a plaintext value
    # from a search of the raw bytes; a thief decompresses them, and so does this test.
    ledger = b"\0".join(entry for _, entry, _ in vault.store.ledger_rows())
    if st.backend == "sqlite":
        files = [st.path, Path(f"{st.path}-wal"), Path(f"{st.path}-shm")]
        return b"".join(p.read_bytes() for p in files if p.exists()) + ledger
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is needed to dump the PostgreSQL database"
    assert st.url is not None
    dump = subprocess.run([pg_dump, st.url], check=True, capture_output=True).stdout
    return dump + ledger


def _stored_values(vault: Vault) -> bytes:
    """Every value of every row of every table, as SQLite hands it back, NUL-separated."""
    st = vault.settings.store
    assert st.path is not None
    parts: list[bytes] = []
    with closing(sqlite3.connect(st.path)) as conn:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        parts.append(value)
                    elif value is not None:
                        parts.append(str(value).encode())
    return b"\0".join(parts)


def _needles(values: set[str], backend: str, min_length: int = 6) -> list[bytes]:
    keep = []
    for value in values:
        raw = value.encode()
        # Shorter strings (a room number, "M") occur in any large random byte string by chance.
        if len(raw) < min_length:
            continue
        # pg_dump writes bytea as hex text: a short all-hex value (a 6-digit amount) would match
        # random ciphertext hex by chance (16^-6 per position), so only long ones are searched.
        if backend == "postgres" and len(raw) < 16 and set(value) <= HEX:
            continue
        keep.append(raw)
    return keep


def _hits(needles: list[bytes], haystack: bytes) -> list[str]:
    automaton = ahocorasick.Automaton()
    for needle in needles:
        key = needle.decode("latin-1")  # byte-exact matching through a 1:1 byte mapping
        automaton.add_word(key, key)
    automaton.make_automaton()
    found = {value for _, value in automaton.iter(haystack.decode("latin-1"))}
    return sorted(found)


@pytest.mark.slow
def test_stolen_database_files_hold_no_plaintext(
    tmp_path: Path, store_settings: StoreSettings
) -> None:
    with make_vault(tmp_path / "home", store_settings, ManualClock(CLOCK_START)) as vault:
        written = _fill(vault)
        assert vault.store.event_count() > PEOPLE, "every record was written through the vault"
        # Access and write times are kept in clear on purpose (they are not personal data). The
        # test clock never moves, so each is this one string; blank it, or a 6-byte value such
        # as flight "ZH2031" matches two random ciphertext bytes followed by the year.
        stolen = _stolen_bytes(vault).replace(CLOCK_TEXT, b"\0" * len(CLOCK_TEXT))
        values = b""
        if store_settings.backend == "sqlite":
            values = _stored_values(vault).replace(CLOCK_TEXT, b"\0" * len(CLOCK_TEXT))
    needles = _needles(written, store_settings.backend)
    id_numbers = [n for n in needles if len(n) == 18 and n[:17].isdigit()]
    assert len(id_numbers) == PEOPLE and len(needles) > 5 * PEOPLE
    assert len(stolen) > 1_000_000
    if store_settings.backend == "postgres":
        assert _hits(needles, stolen) == []
        return
    # SQLite's raw pages interleave values with its own structure (big-endian integers, varints,
    # cell pointers), which spells a 6-byte value such as a flight number ("9C8005") by chance in
    # a few runs in a hundred. So: every byte of the files for values of 7 bytes and more, and
    # every stored value (each cell as SQLite returns it, no page structure) for 6 bytes and more.
    assert len(values) > 1_000_000
    assert _hits(_needles(written, "sqlite", min_length=7), stolen) == []
    assert _hits(needles, values) == []


def test_the_search_itself_finds_plaintext(tmp_path: Path) -> None:
    """The detector above must be able to fail: plant one value and it is found."""
    values = {"11010119900307651X", "锦江之星 Jinjiang Inn", "123"}
    haystack = b"\x00" * 100 + "锦江之星 Jinjiang Inn".encode() + b"\xff" * 100
    assert _hits(_needles(values, "sqlite"), haystack) == [
        "锦江之星 Jinjiang Inn".encode().decode("latin-1")
    ]


def test_the_stored_values_search_sees_a_planted_value(tmp_path: Path) -> None:
    """A plaintext value that got into any table is found among the stored values."""
    store = StoreSettings(backend="sqlite", path=tmp_path / "home" / "data" / "custodes.db")
    with make_vault(tmp_path / "home", store) as vault:
        with closing(sqlite3.connect(store.path)) as conn, conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('leak', '9C8005')")
        found = _hits(_needles({"9C8005"}, "sqlite"), _stored_values(vault))
    assert found == ["9C8005"]
