"""Storage backends behind one contract: SQLite (embedded default) and PostgreSQL (production).

Backends hold only ciphertexts, keyed tokens, pseudonyms and metadata; never a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from custodes.config import StoreSettings
from custodes.errors import ConfigError
from custodes.store._codec import encode_events, encode_like, encode_records
from custodes.store._protocol import (
    EncodedEvents,
    EncodedRecords,
    EventCount,
    Store,
    StoreGuards,
    StoreTx,
)
from custodes.store._sqlite import SQLiteStore

if TYPE_CHECKING:
    from custodes.store._postgres import PostgresStore

__all__ = [
    "EncodedEvents",
    "EncodedRecords",
    "EventCount",
    "PostgresStore",
    "SQLiteStore",
    "Store",
    "StoreGuards",
    "StoreTx",
    "encode_events",
    "encode_like",
    "encode_records",
    "open_store",
]


def __getattr__(name: str) -> Any:
    # psycopg is imported on first use of the PostgreSQL backend, not by every command that
    # opens a SQLite vault (it takes about a quarter of a second).
    if name == "PostgresStore":
        from custodes.store._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(settings: StoreSettings) -> Store:
    """Open the store that ``settings`` describe; the caller then calls ``migrate()``.

    Raises:
        ConfigError: the backend is 'postgres' but no URL is set, or the backend is unknown.
        StoreError: the database cannot be opened or reached.
    """
    if settings.backend == "sqlite":
        return SQLiteStore(
            settings.path, durability=settings.durability, mmap_mib=settings.mmap_mib
        )
    if settings.backend == "postgres":
        if not settings.url:
            raise ConfigError("store.backend is 'postgres' but store.url is not set")
        from custodes.store._postgres import PostgresStore

        return PostgresStore(settings.url)
    raise ConfigError(f"store.backend must be 'sqlite' or 'postgres', not {settings.backend!r}")
