"""Creating a vault home: settings, editable schema and policy, keys apart from the data."""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from custodes.config import Settings, default_origin
from custodes.crypto import LocalKeyFile, SubjectKeyStore
from custodes.errors import ConfigError
from custodes.ledger._checkpoint import atomic_write, create_signing_key
from custodes.ledger.note import NoteSigner
from custodes.store import open_store

__all__ = ["init_home"]

_TEMPLATE = """\
# custodes vault settings. Every setting is described in docs/configuration.md.
tenant = "{tenant}"

[store]
backend = "{backend}"
{location}
durability = "normal"

[keys]
# Key files live here, never beside the database. Back this up separately, and keep
# subject-keys.db backups short-lived: a kept copy defeats erasure (shred).
dir = "keys"

[schema]
path = "schema.toml"

[policy]
path = "policy.toml"

[limits]
find_cap = 100
max_value_bytes = 4096
key_cache = 100000

[ledger]
# The name on every signed checkpoint (and of the log's signing key, keys/log-signing.key).
# Witnesses pin the key by this name: do not change it once checkpoints were published.
origin = {origin}
checkpoint_every = 1000
checkpoint_seconds = 60
"""


def init_home(
    home: Path,
    *,
    backend: str = "sqlite",
    url: str | None = None,
    tenant: str = "default",
    demo_seed: int | None = None,
) -> Settings:
    """Create a new vault home and return its settings.

    ``demo_seed`` derives the root key from the seed so that ``custodes demo`` runs are
    reproducible (same pseudonyms, same exports); never use it for a vault holding real data.

    Raises:
        ConfigError: the home already holds a vault, or the store cannot be created.
    """
    home = home.resolve()
    if (home / "custodes.toml").exists():
        raise ConfigError(f"{home} already holds a vault (custodes.toml exists)")
    if backend not in ("sqlite", "postgres"):
        raise ConfigError(f"backend must be 'sqlite' or 'postgres', not {backend!r}")
    if backend == "postgres" and not url:
        raise ConfigError("backend 'postgres' needs --url")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    location = 'path = "data/custodes.db"' if backend == "sqlite" else f'url = "{url}"'
    origin = json.dumps(default_origin(tenant), ensure_ascii=False)
    text = _TEMPLATE.format(tenant=tenant, backend=backend, location=location, origin=origin)
    defaults = resources.files("custodes") / "defaults"
    _write_new(home / "schema.toml", (defaults / "schema.toml").read_text(encoding="utf-8"))
    _write_new(home / "policy.toml", (defaults / "policy.toml").read_text(encoding="utf-8"))
    _write_new(home / "custodes.toml", text)
    settings = Settings.load(home)
    LocalKeyFile.create(settings.root_key_path, demo_seed=demo_seed)
    SubjectKeyStore(settings.keystore_path).close()
    _create_log_key(settings)
    store = open_store(settings.store)
    try:
        store.migrate()
    finally:
        store.close()
    return settings


def _create_log_key(settings: Settings) -> None:
    """The checkpoint signing key beside the other keys, and its public vkey for witnesses."""
    raw = create_signing_key(settings.log_signing_key_path, what="log signing key")
    signer = NoteSigner.from_private_bytes(settings.ledger_origin, raw)
    atomic_write(settings.log_vkey_path, signer.vkey + "\n")
    settings.ledger_dir.mkdir(mode=0o700, exist_ok=True)


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
