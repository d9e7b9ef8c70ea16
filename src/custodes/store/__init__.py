"""Storage backends behind one contract: SQLite (embedded default) and PostgreSQL (production).

Backends hold only ciphertexts, keyed tokens, pseudonyms and metadata; never a key.
"""

from __future__ import annotations

from custodes.config import StoreSettings
from custodes.errors import ConfigError
from custodes.store._postgres import PostgresStore
from custodes.store._protocol import Store, StoreTx
from custodes.store._sqlite import SQLiteStore

__all__ = ["PostgresStore", "SQLiteStore", "Store", "StoreTx", "open_store"]


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
        return PostgresStore(settings.url)
    raise ConfigError(f"store.backend must be 'sqlite' or 'postgres', not {settings.backend!r}")
