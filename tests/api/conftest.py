"""Fixtures for the HTTP API: a vault home on each backend, its app, and API tokens for staff.

Building a vault (and, for PostgreSQL, a database) is the expensive part, so the shared ``api``
fixture is module-scoped: tests in a module share one vault and must not depend on each other's
writes (each uses its own subjects). Tests that need other settings build their own with
:func:`build_api`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from custodes.api import create_app
from custodes.clock import ManualClock
from custodes.config import Settings, StoreSettings
from custodes.model import Accessor, CredentialKind
from custodes.sim import Person, generate_people
from custodes.vault import Vault
from tests.conftest import fresh_pg_database
from tests.helpers import START, access, make_vault

AUDITOR = Accessor("aud-1", "oversight-office", "auditor")
ANALYST = Accessor("ana-1", "police-1", "analyst")
CLERK = Accessor("clerk-1", "hotel-1", "clerk")
EXTRA_STAFF = (AUDITOR, ANALYST, CLERK)
# The staff the shared app issues API tokens to.
TOKEN_HOLDERS = (
    "reg-1",
    "inv-1",
    "inv-2",
    "sup-1",
    "dir-1",
    "duty-1",
    "dpo-1",
    "sup-9",
    "aud-1",
    "ana-1",
    "clerk-1",
)
PEOPLE = generate_people(40, seed=11)
# Generous limits for the shared app: tests that exercise the limits build their own.
DEFAULT_API_TOML = "[api]\nrate_per_second = 100000\nrate_burst = 100000\n"


@dataclass
class Api:
    """An app over a fresh vault, a client for it, and a token per staff member."""

    app: FastAPI
    client: TestClient
    vault: Vault
    clock: ManualClock
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, accessor: str) -> dict[str, str]:
        """The Authorization header of ``accessor``'s API token."""
        return {"Authorization": f"Bearer {self.tokens[accessor]}"}

    def post(self, path: str, accessor: str | None, body: Any) -> httpx2.Response:
        """POST JSON as ``accessor`` (``None``: without credentials)."""
        headers = self.headers(accessor) if accessor else {}
        return self.client.post(path, json=body, headers=headers)

    def get(self, path: str, accessor: str | None, **params: Any) -> httpx2.Response:
        """GET as ``accessor`` (``None``: without credentials)."""
        headers = self.headers(accessor) if accessor else {}
        return self.client.get(path, headers=headers, params=params)

    def events(self) -> list[Any]:
        """Every ledger event, oldest first."""
        return [event for _, event in self.vault.store.events()]


def identity(person: Person) -> dict[str, str]:
    """An identity record's values for a simulated person."""
    return {
        "name": person.name,
        "id_number": person.id_number,
        "birth_date": person.birth_date.isoformat(),
        "phone": person.phone,
    }


def store_settings_for(backend: str, home: Path, request: pytest.FixtureRequest) -> StoreSettings:
    """Store settings for a fresh store of ``backend`` (a new PostgreSQL database if needed)."""
    if backend == "sqlite":
        return StoreSettings(backend="sqlite", path=home / "data" / "custodes.db")
    return StoreSettings(backend="postgres", url=fresh_pg_database(request))


def build_api(
    home: Path,
    store: StoreSettings,
    *,
    api_toml: str = DEFAULT_API_TOML,
    people: tuple[Person, ...] | list[Person] = PEOPLE,
    holders: tuple[str, ...] = TOKEN_HOLDERS,
    prepare: Callable[[Vault], None] | None = None,
) -> Iterator[Api]:
    """Yield an :class:`Api` over a new vault in ``home`` (closed afterwards).

    ``prepare`` runs once the vault holds its staff and records, before the app reads the
    settings (it may edit ``custodes.toml``).
    """
    clock = ManualClock(START)
    vault = make_vault(home, store, clock)
    for accessor in EXTRA_STAFF:
        vault.add_accessor(accessor)
    reg = access(vault, "reg-1", "registration")
    if people:
        vault.put_many(reg, "identity", [(p.id_number, identity(p)) for p in people])
    with (home / "custodes.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n" + api_toml)
    if prepare is not None:
        prepare(vault)
    app = create_app(Settings.load(home), clock=clock, vault=vault)
    credentials = app.state.service.credentials
    tokens = {
        holder: credentials.issue(CredentialKind.API_TOKEN, holder, timedelta(days=30))
        for holder in holders
    }
    with TestClient(app) as client:
        yield Api(app=app, client=client, vault=vault, clock=clock, tokens=tokens)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The shared app of a test module, on each backend."""
    home = tmp_path_factory.mktemp("api") / "home"
    store = store_settings_for(str(request.param), home, request)
    yield from build_api(home, store)


@pytest.fixture(scope="module")
def sqlite_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A shared app on SQLite only, for behaviour that does not depend on the store."""
    home = tmp_path_factory.mktemp("api") / "home"
    yield from build_api(home, StoreSettings(backend="sqlite", path=home / "data" / "custodes.db"))
