"""Test helpers shared by the vault, CLI and benchmark tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from custodes._home import init_home
from custodes.clock import ManualClock
from custodes.config import StoreSettings
from custodes.model import Access, Accessor
from custodes.vault import Vault

START = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a working hour

STAFF = [
    Accessor("reg-1", "hotel-1", "registrar"),
    Accessor("inv-1", "police-1", "investigator"),
    Accessor("inv-2", "police-1", "investigator"),
    Accessor("sup-1", "police-1", "supervisor"),
    Accessor("dir-1", "police-1", "director"),
    Accessor("duty-1", "police-1", "duty_officer"),
    Accessor("dpo-1", "police-1", "custodian"),
    Accessor("sup-9", "police-9", "supervisor"),
]


def make_vault(home: Path, store: StoreSettings, clock: ManualClock | None = None) -> Vault:
    """A fresh vault in ``home`` on the backend of ``store``, with STAFF registered."""
    settings = init_home(home, backend=store.backend, url=store.url)
    vault = Vault.open(settings, clock=clock or ManualClock(START))
    for accessor in STAFF:
        vault.add_accessor(accessor)
    return vault


def access(vault: Vault, accessor: str, purpose: str | None, case: str | None = None) -> Access:
    """An Access for a registered accessor."""
    return Access(vault.principal(accessor), purpose, case)
