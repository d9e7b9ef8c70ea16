"""What the checks share: the settings, and the store, schema and policy opened once, lazily.

Nothing here creates or migrates anything: a database that does not exist yet is reported, not
made (opening a SQLite store would create the file).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any

from custodes.config import Settings
from custodes.errors import ConfigError, StoreError
from custodes.policy import Policy
from custodes.schema import Schema
from custodes.store import Store, StoreGuards, open_store

__all__ = ["Context", "Unavailable"]


class Unavailable(Exception):
    """What a check needs could not be opened; ``reason`` says why (reported once)."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


@dataclass
class Context:
    """The vault home under examination; close it when done."""

    settings: Settings
    _store: Store | None = None
    _store_error: str | None = None
    _policy: Policy | None = None
    _policy_error: str | None = None
    _raw: dict[str, Any] | None = field(default=None)
    _guards: StoreGuards | None = None

    def raw_settings(self) -> dict[str, Any]:
        """``custodes.toml`` as written (without environment overrides)."""
        if self._raw is None:
            path = self.settings.home / "custodes.toml"
            self._raw = tomllib.loads(path.read_text(encoding="utf-8"))
        return self._raw

    def store(self) -> Store:
        """The vault's store, opened without migrating.

        Raises:
            Unavailable: the database is missing or cannot be opened.
        """
        if self._store is not None:
            return self._store
        if self._store_error is None:
            self._store_error = self._open_store()
        if self._store is None:
            raise Unavailable("the database", self._store_error or "cannot be opened")
        return self._store

    def _open_store(self) -> str | None:
        config = self.settings.store
        if config.backend == "sqlite" and not config.path.is_file():
            return f"there is no database file at {config.path}"
        try:
            self._store = open_store(config)
        except (ConfigError, StoreError) as exc:
            return " ".join(exc.diagnostics().split())  # drivers' messages span lines
        return None

    def guards(self) -> StoreGuards:
        """What the database reports of its append-only guards (read once).

        Raises:
            Unavailable: the database cannot be opened.
            StoreError: its catalog cannot be read.
        """
        if self._guards is None:
            self._guards = self.store().guards()
        return self._guards

    def policy(self) -> Policy:
        """The vault's schema and policy, parsed.

        Raises:
            Unavailable: either file is missing or invalid.
        """
        if self._policy is not None:
            return self._policy
        if self._policy_error is None:
            try:
                schema = Schema.load(self.settings.schema_path)
                self._policy = Policy.load(self.settings.policy_path, schema=schema)
                return self._policy
            except ConfigError as exc:
                self._policy_error = " ".join(exc.diagnostics().split())
        raise Unavailable("the schema and policy", self._policy_error)

    def close(self) -> None:
        """Release the store if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None
