"""Checks of what lies on disk: who may change the settings, read the keys or copy the data."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from custodes.crypto import LocalKeyFile
from custodes.doctor._context import Context
from custodes.doctor._model import Finding, Status
from custodes.errors import ConfigError

__all__ = ["demo_key", "home_files", "key_files", "keys_apart", "store_files"]

_GROUP_OTHER_WRITE = 0o022
_GROUP_OTHER_ANY = 0o077
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return None


def _loose(paths: Iterable[Path], mask: int) -> list[str]:
    """``path (mode 0664)`` for each existing path whose mode has any bit of ``mask``."""
    found = []
    for path in paths:
        mode = _mode(path)
        if mode is not None and mode & mask:
            found.append(f"{path} (mode {mode:04o})")
    return found


def home_files(ctx: Context) -> list[Finding]:
    """Whoever may write the settings, schema or policy may grant themselves any access."""
    settings = ctx.settings
    files = [settings.home, settings.home / "custodes.toml"]
    files += [settings.schema_path, settings.policy_path]
    loose = _loose(files, _GROUP_OTHER_WRITE)
    if loose:
        return [
            Finding(
                "home.files",
                Status.FAIL,
                "writable by group or others: " + "; ".join(loose) + ". Whoever can change "
                "the policy or settings can grant any access or point the vault at other keys.",
                "chmod go-w on each of them (custodes init makes them 0700 and 0600).",
            )
        ]
    return [Finding("home.files", Status.OK, "settings, schema and policy: owner-writable only")]


def key_files(ctx: Context) -> list[Finding]:
    """Key files must be owner-only; a key directory others can write lets them swap keys."""
    settings = ctx.settings
    keys = [settings.root_key_path, settings.log_signing_key_path]
    absent = [str(path) for path in keys if _mode(path) is None]
    if absent:
        return [
            Finding(
                "keys.files",
                Status.FAIL,
                "missing key file(s): " + "; ".join(absent),
                "restore them from the key backup; the vault cannot be opened without them.",
            )
        ]
    name = settings.keystore_path.name
    stores = [settings.keystore_path.with_name(name + s) for s in ("", *_SQLITE_SIDE_FILES)]
    readable = _loose([*keys, *stores], _GROUP_OTHER_ANY)
    writable_dir = _loose([settings.keys_dir], _GROUP_OTHER_WRITE)
    if readable or writable_dir:
        return [
            Finding(
                "keys.files",
                Status.FAIL,
                "key material open to group or others: " + "; ".join(readable + writable_dir),
                f"chmod 600 the key files and chmod 700 {settings.keys_dir}.",
            )
        ]
    open_dir = _loose([settings.keys_dir], _GROUP_OTHER_ANY)
    if open_dir:
        return [
            Finding(
                "keys.files",
                Status.WARN,
                f"the key directory lists its files to others: {open_dir[0]}",
                f"chmod 700 {settings.keys_dir}.",
            )
        ]
    return [Finding("keys.files", Status.OK, "key files and the key store: owner-only")]


def demo_key(ctx: Context) -> list[Finding]:
    """A root key made by ``custodes demo`` is derived from a seed: it protects nothing."""
    try:
        key = LocalKeyFile.open(ctx.settings.root_key_path)
    except ConfigError as exc:
        return [Finding("keys.root", Status.FAIL, exc.diagnostics())]
    if key.is_demo_key():
        return [
            Finding(
                "keys.root",
                Status.FAIL,
                "the root key was made by custodes demo: it is derived from a seed, so anyone "
                "who knows or guesses the seed can derive every key of this vault.",
                "never put real personal data in this vault; create a new one with "
                "'custodes init'.",
            )
        ]
    return [Finding("keys.root", Status.OK, "the root key is random (not a demo key)")]


def keys_apart(ctx: Context) -> list[Finding]:
    """A copy of one volume must not hold both the ciphertexts and the keys that open them."""
    settings = ctx.settings
    if settings.store.backend != "sqlite":
        return [Finding("keys.apart", Status.OK, "the database is on the PostgreSQL server")]
    keys = settings.keys_dir.resolve()
    data = settings.store.path.resolve()
    if keys == data.parent or keys in data.parents or data.parent in keys.parents:
        return [
            Finding(
                "keys.apart",
                Status.FAIL,
                f"the key directory {keys} and the database {data} are nested in each other.",
                "move keys.dir out of the database's directory.",
            )
        ]
    if _same_device(keys, data.parent):
        return [
            Finding(
                "keys.apart",
                Status.WARN,
                "the keys and the database are on one file system: a copy or snapshot of it "
                "(a backup, a stolen disk image) holds both the ciphertexts and their keys.",
                "put keys.dir on another volume or host, and back up the keys separately "
                "from the database.",
            )
        ]
    return [Finding("keys.apart", Status.OK, "the keys and the database are on different volumes")]


def _same_device(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b).st_dev
    except OSError:
        return False


def store_files(ctx: Context) -> list[Finding]:
    """The SQLite files hold every ciphertext and the whole ledger: owner-only."""
    settings = ctx.settings
    if settings.store.backend != "sqlite":
        return []
    path = settings.store.path
    if not path.is_file():
        return [
            Finding(
                "store.files",
                Status.FAIL,
                f"there is no database file at {path}",
                "check store.path, or restore the database from its backup.",
            )
        ]
    files = [path, *(path.with_name(path.name + s) for s in _SQLITE_SIDE_FILES)]
    loose = _loose(files, _GROUP_OTHER_ANY) + _loose([path.parent], _GROUP_OTHER_WRITE)
    if loose:
        return [
            Finding(
                "store.files",
                Status.FAIL,
                "the database is open to group or others: " + "; ".join(loose),
                f"chmod 600 the database files and chmod 700 {path.parent}.",
            )
        ]
    return [Finding("store.files", Status.OK, "the database files: owner-only")]
