"""Root keys: a local key file and the per-tenant keys derived from it with HKDF-SHA256."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from custodes.errors import ConfigError, InputError

__all__ = [
    "KeyProvider",
    "LocalKeyFile",
    "RootKeys",
    "demo_root_secret",
    "length_prefixed",
    "prefixed_text",
    "text_part",
    "utf8",
]

KEY_BYTES = 32
KEY_FILE_FORMAT = "custodes-root-key"
KEY_FILE_VERSION = 1
_U32 = struct.Struct(">I").pack  # packs 0 .. 2**32 - 1, raises struct.error beyond
_MAX_KEY_FILE_BYTES = 64 * 1024
# custodes demo derives its root secret from the seed (reproducible runs). A vault holding real
# data must never have such a key: anyone who knows or guesses the seed can derive every key.
_DEMO_LABEL = "custodes demo root key"
DEMO_SEEDS_CHECKED = 1 << 16  # seeds a key is compared against even if its file lost the mark


def demo_root_secret(seed: int) -> bytes:
    """Return the root secret ``custodes demo --seed SEED`` uses (demo vaults only)."""
    return hashlib.sha256(f"{_DEMO_LABEL} {seed}".encode()).digest()


def length_prefixed(*parts: bytes) -> bytes:
    """Encode parts unambiguously: a 4-byte big-endian length before each one.

    Raises:
        InputError: a part is longer than 2**32 - 1 bytes.
    """
    try:
        return b"".join([_U32(len(part)) + part for part in parts])
    except struct.error:
        raise InputError("a value bound into a key or ciphertext is longer than 4 GiB") from None


def prefixed_text(value: str, what: str) -> bytes:
    """Return ``length_prefixed(utf8(value, what))`` (one text part, on hot paths).

    Raises:
        InputError: as :func:`utf8` and :func:`length_prefixed`.
    """
    part = text_part(value)
    return length_prefixed(utf8(value, what)) if part is None else part


def text_part(value: object) -> bytes | None:
    """Return ``length_prefixed(utf8(value, ...))``, or ``None`` where that would raise: the
    caller then builds its error message (only then)."""
    if type(value) is not str:
        return None
    try:
        raw = value.encode("utf-8")
        return _U32(len(raw)) + raw
    except (UnicodeEncodeError, struct.error):
        return None


def utf8(value: str, what: str) -> bytes:
    """Return ``value`` as UTF-8, naming ``what`` (never the value) if it cannot be encoded.

    Raises:
        InputError: ``value`` is not a str or holds lone surrogates.
    """
    if not isinstance(value, str):
        raise InputError(f"{what} must be a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid Unicode text (lone surrogate)") from exc


@dataclass(frozen=True)
class RootKeys:
    """The four 32-byte keys of one tenant; ``repr`` shows only the key id.

    Raises:
        ConfigError: a key is not 32 bytes, or two keys are equal.
    """

    key_id: str
    kek: bytes = field(repr=False)
    index_key: bytes = field(repr=False)
    pseudonym_key: bytes = field(repr=False)
    audit_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        keys = {
            "kek": self.kek,
            "index_key": self.index_key,
            "pseudonym_key": self.pseudonym_key,
            "audit_key": self.audit_key,
        }
        for name, key in keys.items():
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ConfigError(f"root key {name} must be {KEY_BYTES} bytes")
        # Keys are separated by purpose; equal keys would mean a broken provider.
        if len(set(keys.values())) != len(keys):
            raise ConfigError("root keys must all differ (kek, index, pseudonym, audit)")


@runtime_checkable
class KeyProvider(Protocol):
    """Something that yields the root keys of a tenant (a key file, an HSM, ...)."""

    def root_keys(self, tenant: str) -> RootKeys:
        """Return the root keys of ``tenant``."""
        ...


class LocalKeyFile:
    """A root secret kept in a local JSON file readable only by its owner (mode 0600)."""

    def __init__(self, path: Path, key_id: str, secret: bytes, *, demo: bool = False) -> None:
        if len(secret) != KEY_BYTES:
            raise ConfigError(f"{path}: the root secret must be {KEY_BYTES} bytes")
        self.path = path
        self.key_id = key_id
        self._secret = secret
        self._demo = demo

    def __repr__(self) -> str:
        return f"LocalKeyFile(path={str(self.path)!r}, key_id={self.key_id!r})"

    @classmethod
    def create(cls, path: Path, *, demo_seed: int | None = None) -> LocalKeyFile:
        """Write a new key file with a fresh random secret, owner-only from the first byte.

        ``demo_seed`` (``custodes demo`` only: reproducible runs) derives the secret from the
        seed instead and marks the file as a demo key (``custodes doctor`` refuses it); a vault
        holding real data must never be created with it.

        Raises:
            ConfigError: the file already exists or cannot be written.
        """
        key_id = secrets.token_hex(8)
        demo = demo_seed is not None
        secret = (
            demo_root_secret(demo_seed) if demo_seed is not None else secrets.token_bytes(KEY_BYTES)
        )
        body: dict[str, Any] = {
            "format": KEY_FILE_FORMAT,
            "version": KEY_FILE_VERSION,
            "key_id": key_id,
            "secret": base64.b64encode(secret).decode("ascii"),
        }
        if demo:
            body["demo"] = True
        _make_private_dirs(path.parent)
        _write_new_private_file(path, (json.dumps(body, indent=2) + "\n").encode("ascii"))
        return cls(path, key_id, secret, demo=demo)

    @classmethod
    def open(cls, path: Path) -> LocalKeyFile:
        """Read a key file, refusing one that others can read.

        Raises:
            ConfigError: the file is missing, unreadable, open to group/others, or malformed.
        """
        raw = _read_private_file(path)
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a custodes root key file (invalid JSON)") from exc
        key_id, secret = _parse_key_file(path, body)
        return cls(path, key_id, secret, demo=body.get("demo") is True)

    def is_demo_key(self) -> bool:
        """Return whether this is a ``custodes demo`` key: marked so in its file, or equal to
        the key of any seed below ``DEMO_SEEDS_CHECKED`` (a copy whose mark was removed)."""
        if self._demo:
            return True
        found = False
        for seed in range(DEMO_SEEDS_CHECKED):
            found |= hmac.compare_digest(self._secret, demo_root_secret(seed))
        return found

    def root_keys(self, tenant: str) -> RootKeys:
        """Derive the tenant's KEK, index, pseudonym and audit keys with HKDF-SHA256.

        Raises:
            InputError: ``tenant`` is empty or not valid text.
        """
        name = utf8(tenant, "tenant")
        if not name:
            raise InputError("tenant must not be empty")
        return RootKeys(
            key_id=self.key_id,
            kek=self._derive(b"kek", name),
            index_key=self._derive(b"index", name),
            pseudonym_key=self._derive(b"pseudonym", name),
            audit_key=self._derive(b"audit", name),
        )

    def _derive(self, label: bytes, tenant: bytes) -> bytes:
        # Labels hold no "/", so "custodes/v1/<label>/<tenant>" parses one way only.
        info = b"custodes/v1/" + label + b"/" + tenant
        hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info)
        return hkdf.derive(self._secret)


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents with mode 0700 (existing ones untouched)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    try:
        for d in reversed(missing):
            d.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot create key directory: {exc.strerror}") from exc


def _write_new_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 (never wider, not even briefly) and write ``data``."""
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path}: a key file already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create key file: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        # A half-written key file must not be mistaken for a key later.
        path.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write key file: {exc.strerror}") from exc


def _read_private_file(path: Path) -> bytes:
    """Read ``path`` after checking, on the open descriptor, that only its owner has access."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no root key file (run 'custodes init' first)") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open key file: {exc.strerror}") from exc
    try:
        _check_private(path, os.fstat(fd))
        return os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read key file: {exc.strerror}") from exc
    finally:
        os.close(fd)


def _check_private(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path}: a key file must be a regular file")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        access = "readable" if mode & 0o044 else "accessible"
        raise ConfigError(
            f"{path}: key file is {access} by others (mode {mode:04o}); run chmod 600 {path}"
        )
    if info.st_size > _MAX_KEY_FILE_BYTES:
        raise ConfigError(f"{path}: not a custodes root key file (too large)")


def _parse_key_file(path: Path, body: Any) -> tuple[str, bytes]:
    """Check the key file fields; return (key_id, secret). Messages never show the secret."""
    if not isinstance(body, dict) or body.get("format") != KEY_FILE_FORMAT:
        raise ConfigError(f"{path}: not a custodes root key file (format is not {KEY_FILE_FORMAT})")
    if body.get("version") != KEY_FILE_VERSION:
        raise ConfigError(f"{path}: unsupported key file version (expected {KEY_FILE_VERSION})")
    key_id = body.get("key_id")
    if not isinstance(key_id, str) or not _is_hex(key_id, 16):
        raise ConfigError(f"{path}: key_id must be 16 lowercase hex characters")
    encoded = body.get("secret")
    if not isinstance(encoded, str):
        raise ConfigError(f"{path}: secret must be a base64 string")
    try:
        secret = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{path}: secret is not valid base64") from exc
    if len(secret) != KEY_BYTES:
        raise ConfigError(f"{path}: secret must decode to {KEY_BYTES} bytes, not {len(secret)}")
    return key_id, secret


def _is_hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in "0123456789abcdef" for c in text)
