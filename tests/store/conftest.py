"""Fixtures for the store tests: an open, migrated store and a raw connection to its database."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

import psycopg
import pytest

from custodes.config import StoreSettings
from custodes.store import Store, open_store

RawSQL = Callable[[str], list[Any]]


@pytest.fixture
def store(store_settings: StoreSettings) -> Iterator[Store]:
    """A fresh, migrated store of the backend under test."""
    opened = open_store(store_settings)
    opened.migrate()
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def raw_sql(store_settings: StoreSettings) -> RawSQL:
    """Run one statement on the database through the driver itself, bypassing custodes."""

    def run(sql: str) -> list[Any]:
        if store_settings.backend == "sqlite":
            conn = sqlite3.connect(store_settings.path, isolation_level=None)
            with closing(conn):
                return conn.execute(sql).fetchall()
        assert store_settings.url is not None
        with psycopg.connect(store_settings.url, autocommit=True) as pg:
            cur = pg.execute(sql)
            return cur.fetchall() if cur.description else []

    return run
