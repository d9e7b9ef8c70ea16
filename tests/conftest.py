"""Shared fixtures: every store-backed test runs against SQLite and PostgreSQL.

PostgreSQL is reached at ``CUSTODES_TEST_PG_URL`` (default: the local server, trust auth). Each
test gets its own fresh database, dropped afterwards. Under ``CI=true`` an unreachable server
fails the run; elsewhere the PostgreSQL half of the suite is skipped with instructions.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest

from custodes.config import StoreSettings

PG_ADMIN_URL = os.environ.get(
    "CUSTODES_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _pg_problem() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{PG_ADMIN_URL}: {exc}".strip()
    return None


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The admin URL of a reachable server, or fail (CI) / skip (elsewhere)."""
    problem = _pg_problem()
    if problem is not None:
        hint = "start the server or set CUSTODES_TEST_PG_URL"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the database server is unreachable ({problem}); {hint}")
        pytest.skip(f"database server unreachable ({problem}); {hint} to run these tests")
    return PG_ADMIN_URL


def _with_db(url: str, dbname: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + dbname


def fresh_pg_database(request: pytest.FixtureRequest) -> str:
    """Create a fresh, empty database for the requesting test; return its URL. It is dropped
    when the test ends. (Tests that need a second database, e.g. a second vault home, call
    this directly.)"""
    admin = request.getfixturevalue("pg_admin_url")
    name = "custodes_t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    return _with_db(admin, name)


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database for one test; its URL (dropped afterwards)."""
    return fresh_pg_database(request)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The name of the storage backend under test."""
    return str(request.param)


@pytest.fixture
def store_settings(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreSettings:
    """Store settings for a fresh, empty store of the backend under test."""
    if backend == "sqlite":
        return StoreSettings(backend="sqlite", path=tmp_path / "data" / "custodes.db")
    url = request.getfixturevalue("pg_database")
    return StoreSettings(backend="postgres", url=url)
