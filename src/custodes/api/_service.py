"""What one running service holds: settings, the vault, credentials and the checkpoint log."""

from __future__ import annotations

from dataclasses import dataclass, field

from custodes.api._credentials import Credentials
from custodes.api._guard import Guard
from custodes.api._metrics import Metrics
from custodes.clock import Clock
from custodes.config import Settings
from custodes.ledger import CheckpointLog
from custodes.vault import Vault

__all__ = ["Service"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """The collaborators every route and page uses; built once by ``create_app``.

    ``guard`` (authentication, caches, rate limits) and ``metrics`` (its own Prometheus
    registry) are derived from the others when the service is built.

    Raises:
        ConfigError: the OIDC settings name a JWKS file that cannot be used.
    """

    settings: Settings
    vault: Vault
    credentials: Credentials
    checkpoints: CheckpointLog
    clock: Clock
    guard: Guard = field(init=False)
    metrics: Metrics = field(init=False)

    def __post_init__(self) -> None:
        guard = Guard(
            settings=self.settings,
            vault=self.vault,
            credentials=self.credentials,
            clock=self.clock,
        )
        object.__setattr__(self, "guard", guard)  # frozen: set once, here
        object.__setattr__(self, "metrics", Metrics())

    def close(self) -> None:
        """Release the vault (and its store and key store)."""
        self.vault.close()
