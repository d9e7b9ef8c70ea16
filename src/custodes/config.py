"""Settings: one object, read from ``custodes.toml`` in the vault home and ``CUSTODES_*`` env.

Every setting is declared once below with its help text (``SETTINGS_HELP``); the docs page
``docs/configuration.md`` lists them all and a test fails if one is undocumented.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from custodes.errors import ConfigError

__all__ = [
    "SETTINGS_HELP",
    "ApiSettings",
    "Settings",
    "StoreSettings",
    "default_home",
    "default_origin",
]

Backend = Literal["sqlite", "postgres"]
Durability = Literal["normal", "full"]
# Characters a C2SP signed-note key name (and so a checkpoint origin here) cannot hold.
_NOT_IN_ORIGIN = re.compile(r"[\s+\x00-\x1f\x7f]")

SETTINGS_HELP: dict[str, str] = {
    "tenant": "Name of the organization's tenant; bound into every ciphertext and token.",
    "store.backend": "Storage backend: 'sqlite' (embedded default) or 'postgres' (production).",
    "store.path": "SQLite database file, relative to the home (backend 'sqlite').",
    "store.url": "PostgreSQL connection URL (backend 'postgres'); env CUSTODES_STORE_URL.",
    "store.durability": "'normal': commits survive a process crash (SQLite WAL, synchronous="
    "NORMAL); 'full': each commit is fsynced and survives power loss.",
    "store.mmap_mib": "SQLite: read the database through a memory map of up to this many MiB "
    "(bulk lookups such as trace-leak read far fewer pages through system calls); 0 turns it off.",
    "keys.dir": "Directory of the key files, relative to the home; must not hold the database.",
    "schema.path": "Schema file (collections and fields), relative to the home.",
    "policy.path": "Policy file (purposes and grants), relative to the home.",
    "limits.find_cap": "Most records one find may return; larger results are refused.",
    "limits.max_value_bytes": "Largest field value accepted, in UTF-8 bytes.",
    "limits.key_cache": "How many unwrapped subject data keys are kept in memory (LRU).",
    "ledger.origin": "The log's name on its signed checkpoints (C2SP origin line, also the "
    "signing key's name); default 'custodes.local/<tenant>'.",
    "ledger.checkpoint_every": "Sign a checkpoint once the ledger has grown by this many entries.",
    "ledger.checkpoint_seconds": "Sign a checkpoint once this many seconds have passed since the "
    "last one, if the ledger grew.",
    "ledger.witnesses": "Witness verifier keys (C2SP vkeys) whose cosignatures of this log's "
    "checkpoints the portal shows and the browser checks; cosigned notes are read from "
    "<home>/ledger/cosignatures/.",
    "api.max_body_bytes": "Largest HTTP request body accepted, in bytes; larger requests get 413.",
    "api.rate_per_second": "Requests per second each API token (or portal session) may make "
    "on average; more get 429 with Retry-After.",
    "api.rate_burst": "How many requests above the average rate one token may make at once.",
    "api.token_days": "How long an API token issued by 'custodes token create' stays valid.",
    "api.session_minutes": "How long a portal or dashboard sign-in stays valid.",
    "api.portal_code_minutes": "How long a one-time portal code stays valid.",
    "api.oidc_issuer": "OIDC issuer whose bearer JWTs the API accepts (empty: OIDC off).",
    "api.oidc_audience": "The audience ('aud') OIDC bearer JWTs must carry.",
    "api.oidc_jwks": "The issuer's signing keys: a JWKS URL (https://...) or a JWKS file path.",
    "api.oidc_accessor_claim": "The JWT claim naming the accessor id (default 'sub').",
    "api.oidc_subject_claim": "The ID-token claim holding a data subject's ID number, for "
    "portal sign-in through OIDC (default 'custodes_subject').",
    "forensics.fingerprint_min_rows": "Fingerprint every find that returns at least this many "
    "records (keyed spellings, recorded on the ledger like an export's mark).",
    "detect.stream": "Score new ledger events for misuse as they are committed (a background "
    "thread; alerts go to <home>/detect/alerts.jsonl). Off by default.",
}


def default_home() -> Path:
    """Return ``$CUSTODES_HOME`` or ``./.custodes``."""
    return Path(os.environ.get("CUSTODES_HOME") or ".custodes")


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """Where and how records and events are stored."""

    backend: Backend = "sqlite"
    path: Path = Path("data/custodes.db")
    url: str | None = None
    durability: Durability = "normal"
    mmap_mib: int = 1024


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The HTTP service: limits, credential lifetimes and the optional OIDC issuer."""

    max_body_bytes: int = 1_048_576
    rate_per_second: int = 50
    rate_burst: int = 100
    token_days: int = 90
    session_minutes: int = 30
    portal_code_minutes: int = 15
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks: str | None = None
    oidc_accessor_claim: str = "sub"
    oidc_subject_claim: str = "custodes_subject"


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings of one vault home; paths are absolute once loaded."""

    home: Path
    tenant: str = "default"
    store: StoreSettings = field(default_factory=StoreSettings)
    keys_dir: Path = Path("keys")
    schema_path: Path = Path("schema.toml")
    policy_path: Path = Path("policy.toml")
    find_cap: int = 100
    max_value_bytes: int = 4096
    key_cache: int = 100_000
    ledger_origin: str = "custodes.local/default"
    checkpoint_every: int = 1000
    checkpoint_seconds: int = 60
    detect_stream: bool = False
    fingerprint_min_rows: int = 20
    witnesses: tuple[str, ...] = ()
    api: ApiSettings = field(default_factory=lambda: ApiSettings())

    @property
    def root_key_path(self) -> Path:
        """The local root key file (KEK, index and pseudonym keys derive from it)."""
        return self.keys_dir / "root.key"

    @property
    def keystore_path(self) -> Path:
        """The subject data-key store (wrapped keys), kept apart from the database."""
        return self.keys_dir / "subject-keys.db"

    @property
    def log_signing_key_path(self) -> Path:
        """The log's Ed25519 checkpoint signing key (private, mode 0600)."""
        return self.keys_dir / "log-signing.key"

    @property
    def log_vkey_path(self) -> Path:
        """The log's public verifier key (C2SP vkey), to hand to witnesses."""
        return self.keys_dir / "log.vkey"

    @property
    def ledger_dir(self) -> Path:
        """Signed checkpoints and witness cosignatures (files, not the database)."""
        return self.home / "ledger"

    @classmethod
    def load(cls, home: Path) -> Settings:
        """Read ``home/custodes.toml`` and the environment.

        Raises:
            ConfigError: the file is missing, is not valid TOML, or a value is invalid.
        """
        home = home.resolve()
        path = home / "custodes.toml"
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(
                f"no vault at {home}: {path.name} is missing (run 'custodes init' first)"
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        return cls.from_mapping(home, raw, env=os.environ)

    @classmethod
    def from_mapping(cls, home: Path, raw: dict[str, Any], env: Mapping[str, str]) -> Settings:
        """Build settings from parsed TOML plus ``CUSTODES_*`` environment overrides."""
        known = {key.split(".")[0] for key in SETTINGS_HELP}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"custodes.toml: unknown setting(s): {', '.join(unknown)}")
        store_raw = _table(raw, "store")
        backend = env.get("CUSTODES_STORE_BACKEND") or store_raw.get("backend", "sqlite")
        if backend not in ("sqlite", "postgres"):
            raise ConfigError(f"store.backend must be 'sqlite' or 'postgres', not {backend!r}")
        durability = store_raw.get("durability", "normal")
        if durability not in ("normal", "full"):
            raise ConfigError(f"store.durability must be 'normal' or 'full', not {durability!r}")
        url = env.get("CUSTODES_STORE_URL") or store_raw.get("url")
        if backend == "postgres" and not url:
            raise ConfigError("store.backend is 'postgres' but store.url is not set")
        store = StoreSettings(
            backend="postgres" if backend == "postgres" else "sqlite",
            path=_under(home, store_raw.get("path", "data/custodes.db")),
            url=url,
            durability=durability,
            mmap_mib=_non_negative(store_raw.get("mmap_mib", 1024), "store.mmap_mib"),
        )
        keys_dir = _under(home, _table(raw, "keys").get("dir", "keys"))
        if backend == "sqlite" and store.path.parent.resolve() == keys_dir.resolve():
            raise ConfigError("keys.dir must not be the directory that holds the database")
        limits = _table(raw, "limits")
        ledger = _table(raw, "ledger")
        detect = _table(raw, "detect")
        forensics = _table(raw, "forensics")
        api = _api(_table(raw, "api"))
        tenant = _text(raw.get("tenant", "default"), "tenant")
        return cls(
            home=home,
            tenant=tenant,
            store=store,
            keys_dir=keys_dir,
            schema_path=_under(home, _table(raw, "schema").get("path", "schema.toml")),
            policy_path=_under(home, _table(raw, "policy").get("path", "policy.toml")),
            find_cap=_positive(limits.get("find_cap", 100), "limits.find_cap"),
            max_value_bytes=_positive(
                limits.get("max_value_bytes", 4096), "limits.max_value_bytes"
            ),
            key_cache=_positive(limits.get("key_cache", 100_000), "limits.key_cache"),
            ledger_origin=_origin(ledger.get("origin", default_origin(tenant))),
            checkpoint_every=_positive(
                ledger.get("checkpoint_every", 1000), "ledger.checkpoint_every"
            ),
            checkpoint_seconds=_positive(
                ledger.get("checkpoint_seconds", 60), "ledger.checkpoint_seconds"
            ),
            detect_stream=_flag(detect.get("stream", False), "detect.stream"),
            fingerprint_min_rows=_positive(
                forensics.get("fingerprint_min_rows", 20), "forensics.fingerprint_min_rows"
            ),
            witnesses=_vkeys(ledger.get("witnesses", []), "ledger.witnesses"),
            api=api,
        )


_API_DEFAULTS = ApiSettings()


def _api(raw: dict[str, Any]) -> ApiSettings:
    def count(name: str) -> int:
        return _positive(raw.get(name, getattr(_API_DEFAULTS, name)), f"api.{name}")

    def optional(name: str) -> str | None:
        return _text(raw[name], f"api.{name}") if name in raw else None

    issuer, audience, jwks = (optional(n) for n in ("oidc_issuer", "oidc_audience", "oidc_jwks"))
    if issuer and not (audience and jwks):
        raise ConfigError("api.oidc_issuer is set: api.oidc_audience and api.oidc_jwks must be too")
    return ApiSettings(
        max_body_bytes=count("max_body_bytes"),
        rate_per_second=count("rate_per_second"),
        rate_burst=count("rate_burst"),
        token_days=count("token_days"),
        session_minutes=count("session_minutes"),
        portal_code_minutes=count("portal_code_minutes"),
        oidc_issuer=issuer,
        oidc_audience=audience,
        oidc_jwks=jwks,
        oidc_accessor_claim=_text(raw.get("oidc_accessor_claim", "sub"), "api.oidc_accessor_claim"),
        oidc_subject_claim=_text(
            raw.get("oidc_subject_claim", "custodes_subject"), "api.oidc_subject_claim"
        ),
    )


def _vkeys(value: object, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{name} must be a list of verifier keys (strings)")
    return tuple(value)


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"custodes.toml: [{name}] must be a table")
    allowed = {key.split(".", 1)[1] for key in SETTINGS_HELP if key.startswith(name + ".")}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"custodes.toml: unknown setting(s) in [{name}]: {', '.join(unknown)}")
    return value


def _under(home: Path, value: object) -> Path:
    path = Path(_text(value, "path"))
    return path if path.is_absolute() else home / path


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{name} must be a non-empty string")
    return value


def default_origin(tenant: str) -> str:
    """Return the default checkpoint origin of a tenant, ``custodes.local/<tenant>``.

    Characters a signed-note key name cannot hold (space, '+', control) become '-'.
    """
    return "custodes.local/" + _NOT_IN_ORIGIN.sub("-", tenant)


def _origin(value: object) -> str:
    # The origin is also the signing key's name on every signature line (C2SP signed-note),
    # so it must be a valid key name: no space, no '+', no control character.
    if not isinstance(value, str) or not value or _NOT_IN_ORIGIN.search(value):
        raise ConfigError(
            "ledger.origin must be a non-empty string without spaces, newlines, control "
            f"characters or '+', not {value!r}"
        )
    return value


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    return value


def _non_negative(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{name} must be a whole number, 0 or more, not {value!r}")
    return value


def _positive(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    return value
