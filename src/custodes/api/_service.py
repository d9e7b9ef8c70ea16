"""What one running service holds: settings, the vault, credentials and the checkpoint log."""

from __future__ import annotations

from dataclasses import dataclass

from custodes.api._credentials import Credentials
from custodes.clock import Clock
from custodes.config import Settings
from custodes.ledger import CheckpointLog
from custodes.vault import Vault

__all__ = ["Service"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """The collaborators every route and page uses; built once by ``create_app``."""

    settings: Settings
    vault: Vault
    credentials: Credentials
    checkpoints: CheckpointLog
    clock: Clock

    def close(self) -> None:
        """Release the vault (and its store and key store)."""
        self.vault.close()
