"""Signed checkpoints of the access ledger, kept as files in the vault home (not the database).

INTERFACE STUB — being implemented (issue 3). Other modules may code against these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from custodes.ledger.note import Checkpoint

if TYPE_CHECKING:
    from custodes.config import Settings
    from custodes.ledger._log import Ledger

__all__ = ["CheckpointLog", "SignedCheckpoint"]


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """One checkpoint the log signed: the parsed body and the whole signed note."""

    checkpoint: Checkpoint
    note: str
    signed_at: datetime


class CheckpointLog:
    """The log's signing key and its history of signed checkpoints (oldest first)."""

    @classmethod
    def open(cls, settings: Settings) -> CheckpointLog:
        """Open the checkpoint history and signing key of the vault home ``settings``."""
        raise NotImplementedError

    @property
    def vkey(self) -> str:
        """The log's public verifier key (C2SP vkey)."""
        raise NotImplementedError

    def latest(self) -> SignedCheckpoint | None:
        """The newest signed checkpoint, or ``None`` before the first one."""
        raise NotImplementedError

    def history(self) -> list[SignedCheckpoint]:
        """Every signed checkpoint, oldest first, each signature verified with the log's key."""
        raise NotImplementedError

    def sign(self, ledger: Ledger, now: datetime) -> SignedCheckpoint:
        """Sign the ledger's current size and root and append it to the history."""
        raise NotImplementedError

    def maybe_sign(self, ledger: Ledger, now: datetime) -> SignedCheckpoint | None:
        """Sign when N entries or T seconds (settings) have passed since the last checkpoint."""
        raise NotImplementedError
