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
    registry) are derived from the others when the service is built; ``inline_calls`` says
    whether short vault calls run on the event loop (an embedded store; see
    ``custodes.api._calls``).

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
    inline_calls: bool = field(init=False)

    def __post_init__(self) -> None:
        inline = self.settings.store.backend == "sqlite"
        guard = Guard(
            settings=self.settings,
            vault=self.vault,
            credentials=self.credentials,
            clock=self.clock,
            inline_lookups=inline,
        )
        object.__setattr__(self, "guard", guard)  # frozen: set once, here
        object.__setattr__(self, "metrics", Metrics())
        object.__setattr__(self, "inline_calls", inline)

    def close(self) -> None:
        """Release the vault (and its store and key store)."""
        self.vault.close()
