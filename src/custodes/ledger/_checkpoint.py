"""Signed checkpoints of the access ledger, kept as files in the vault home (not the database).

Layout, under ``<home>/ledger/``:

* ``checkpoint`` — the latest signed note (C2SP tlog-checkpoint), replaced atomically; this is
  what witnesses read;
* ``checkpoints.jsonl`` — every checkpoint ever signed, oldest first, one JSON object a line
  (``size``, ``root`` in base64, ``signed_at``, ``note``), appended under an exclusive
  ``flock`` so two processes never interleave or sign out of order.

The signing key is ``<keys>/log-signing.key`` (mode 0600, refused if others can read it) and its
public half ``<keys>/log.vkey``; both are made by ``custodes init`` and never enter the database.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hmac
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from custodes.errors import ConfigError, InputError, VerificationError
from custodes.ledger import merkle
from custodes.ledger._log import LedgerTamperError
from custodes.ledger.note import Checkpoint, NoteSigner, open_note

if TYPE_CHECKING:
    from custodes.config import Settings
    from custodes.ledger._log import Ledger

__all__ = [
    "CheckpointLog",
    "SignedCheckpoint",
    "atomic_write",
    "create_signing_key",
    "read_signing_key",
]

KEY_FILE_FORMAT = "custodes-ed25519-key"
KEY_FILE_VERSION = 1
_MAX_KEY_FILE_BYTES = 4096
_TAIL_CHUNK = 4096


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """One checkpoint the log signed: the parsed body and the whole signed note."""

    checkpoint: Checkpoint
    note: str
    signed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """Return the history line (JSON-ready): size, base64 root, signed_at, note."""
        return {
            "size": self.checkpoint.size,
            "root": base64.b64encode(self.checkpoint.root).decode(),
            "signed_at": self.signed_at.isoformat(),
            "note": self.note,
        }


# --- key files --------------------------------------------------------------------------------


def create_signing_key(path: Path, *, what: str) -> bytes:
    """Write a new Ed25519 key file (mode 0600 from the first byte); return the raw private key.

    Raises:
        ConfigError: the file exists already or cannot be written.
    """
    raw = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    body = {
        "format": KEY_FILE_FORMAT,
        "version": KEY_FILE_VERSION,
        "use": what,
        "private_key": base64.b64encode(raw).decode("ascii"),
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError as exc:
        raise ConfigError(f"{path}: a key file already exists; refusing to overwrite it") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create the {what}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(json.dumps(body, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the {what}: {exc.strerror}") from exc
    return raw


def read_signing_key(path: Path, *, what: str) -> bytes:
    """Read an Ed25519 key file, refusing one that group or others can access.

    Raises:
        ConfigError: the file is missing, not private, not a regular file, or malformed.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no {what} (run 'custodes init' first)") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot open the {what}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_KEY_FILE_BYTES:
            raise ConfigError(f"{path}: the {what} is not a small regular file")
        if mode & 0o077:
            raise ConfigError(
                f"{path}: the {what} is accessible by group or others (mode {mode:04o}); "
                f"run chmod 600 {path}"
            )
        data = os.read(fd, _MAX_KEY_FILE_BYTES + 1)
    finally:
        os.close(fd)
    return _parse_key_file(path, data, what)


def _parse_key_file(path: Path, data: bytes, what: str) -> bytes:
    """Messages never show the key."""
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: the {what} is not valid JSON") from exc
    if not isinstance(body, dict) or body.get("format") != KEY_FILE_FORMAT:
        raise ConfigError(f"{path}: not a {KEY_FILE_FORMAT} file")
    if body.get("version") != KEY_FILE_VERSION:
        raise ConfigError(f"{path}: unsupported key file version (expected {KEY_FILE_VERSION})")
    try:
        raw = base64.b64decode(str(body.get("private_key")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{path}: private_key is not valid base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"{path}: private_key must be 32 bytes, not {len(raw)}")
    return raw


def atomic_write(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``text`` atomically: a temporary file, fsync, then rename.

    Raises:
        OSError: the directory cannot be written.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- the checkpoint log -----------------------------------------------------------------------


class CheckpointLog:
    """The log's signing key and its history of signed checkpoints (oldest first).

    Build one with :meth:`open` (from a vault home's settings) or the keyword-only constructor.
    """

    def __init__(self, *, signer: NoteSigner, directory: Path, every: int, seconds: int) -> None:
        if every <= 0 or seconds <= 0:
            raise InputError("checkpoint_every and checkpoint_seconds must be positive")
        self._signer = signer
        self._dir = directory
        self._every = every
        self._seconds = seconds
        # What this process last knew of the history: (size, signed_at), so that deciding
        # whether a checkpoint is due costs no I/O. None until first read.
        self._known: tuple[int, datetime | None] | None = None
        self._first_growth: datetime | None = None

    @classmethod
    def open(cls, settings: Settings) -> CheckpointLog:
        """Open the checkpoint history and signing key of the vault home ``settings``.

        Raises:
            ConfigError: the signing key is missing, readable by others or malformed, or
                ``keys/log.vkey`` names another key (the origin was changed after init).
        """
        raw = read_signing_key(settings.log_signing_key_path, what="log signing key")
        signer = NoteSigner.from_private_bytes(settings.ledger_origin, raw)
        published = _read_text(settings.log_vkey_path)
        if published is not None and published.strip() != signer.vkey:
            raise ConfigError(
                f"{settings.log_vkey_path} does not match the signing key under origin "
                f"{settings.ledger_origin!r} (was ledger.origin changed after init?)"
            )
        return cls(
            signer=signer,
            directory=settings.ledger_dir,
            every=settings.checkpoint_every,
            seconds=settings.checkpoint_seconds,
        )

    @property
    def vkey(self) -> str:
        """The log's public verifier key (C2SP vkey)."""
        return self._signer.vkey

    @property
    def origin(self) -> str:
        """The origin line of every checkpoint this log signs."""
        return self._signer.name

    @property
    def checkpoint_path(self) -> Path:
        """The file holding the latest signed note (what witnesses read)."""
        return self._dir / "checkpoint"

    @property
    def history_path(self) -> Path:
        """The append-only history, one JSON object a line."""
        return self._dir / "checkpoints.jsonl"

    def latest(self) -> SignedCheckpoint | None:
        """The newest signed checkpoint, or ``None`` before the first one.

        Raises:
            VerificationError: the last history line is malformed or its signature is bad.
        """
        try:
            with self.history_path.open("rb") as handle:
                line = _last_line(handle)
        except FileNotFoundError:
            return None
        return None if line is None else self._parse_line(line, "the last line")

    def history(self) -> list[SignedCheckpoint]:
        """Every signed checkpoint, oldest first, each signature verified with the log's key.

        Raises:
            VerificationError: a line is malformed, its signature does not verify, its fields
                disagree with its note, or sizes go backwards.
        """
        try:
            data = self.history_path.read_bytes()
        except FileNotFoundError:
            return []
        found: list[SignedCheckpoint] = []
        for number, line in enumerate(_complete_lines(data), start=1):
            item = self._parse_line(line, f"line {number}")
            if found and item.checkpoint.size < found[-1].checkpoint.size:
                raise VerificationError(
                    f"{self.history_path}: line {number}: size {item.checkpoint.size} is smaller "
                    f"than the previous checkpoint's {found[-1].checkpoint.size}"
                )
            found.append(item)
        return found

    def sign(self, ledger: Ledger, now: datetime) -> SignedCheckpoint:
        """Sign the ledger's current size and root and append it to the history.

        If the ledger has not grown since the last checkpoint, that checkpoint is returned.

        Raises:
            LedgerTamperError: the ledger is smaller than the last checkpoint, or has its size
                with another root (the log would contradict its own signed history).
            ConsistencyError: the ledger does not extend the last checkpoint.
            VerificationError: the history's last line does not verify.
            StoreError: the ledger could not be read.
            OSError: the history could not be written.
        """
        with self._locked() as handle:
            return self._sign_locked(handle, ledger, now)

    def maybe_sign(
        self, ledger: Ledger, now: datetime, *, size: int | None = None
    ) -> SignedCheckpoint | None:
        """Sign when N entries or T seconds (settings) have passed since the last checkpoint.

        ``size`` is the ledger's size if the caller knows it (it has just appended): then a
        call that finds nothing due reads neither the store nor the history. Another process
        may have signed meanwhile; the history is re-read under the lock before signing.

        Raises as :meth:`sign`.
        """
        current = ledger.size() if size is None else size
        if not self.due(now, size=current):
            return None
        with self._locked() as handle:
            self._remember(self._tail(handle))
            if not self._due(current, now):
                return None
            return self._sign_locked(handle, ledger, now)

    def due(self, now: datetime, *, size: int) -> bool:
        """Whether a checkpoint is due for a log of ``size`` entries at ``now`` (N entries or T
        seconds since the last one this process knows of; the history is read once).

        Raises:
            VerificationError: the last history line is malformed or its signature is bad.
        """
        if self._known is None:
            self._remember(self.latest())
        return self._due(size, now)

    # -- internals ---------------------------------------------------------------------------

    def _due(self, size: int, now: datetime) -> bool:
        last_size, last_at = self._known or (0, None)
        grown = size - last_size
        if grown <= 0:
            return False
        if grown >= self._every:
            return True
        if last_at is None:
            # No checkpoint yet: time runs from when this process first saw the log grow.
            self._first_growth = self._first_growth or now
            last_at = self._first_growth
        return (now - last_at).total_seconds() >= self._seconds

    def _remember(self, latest: SignedCheckpoint | None) -> None:
        self._known = (0, None) if latest is None else (latest.checkpoint.size, latest.signed_at)

    def _sign_locked(self, handle: IO[bytes], ledger: Ledger, now: datetime) -> SignedCheckpoint:
        last = self._tail(handle)
        size = ledger.size()
        new_root = ledger.root(size)
        if last is not None:
            self._check_extends(ledger, last.checkpoint, size, new_root)
            if size == last.checkpoint.size:
                self._remember(last)
                return last
        checkpoint = Checkpoint(origin=self.origin, size=size, root=new_root)
        signed = SignedCheckpoint(checkpoint, self._signer.sign(checkpoint.body()), now)
        line = json.dumps(signed.as_dict(), ensure_ascii=False, sort_keys=True) + "\n"
        handle.write(line.encode("utf-8"))
        handle.flush()
        os.fsync(handle.fileno())
        atomic_write(self.checkpoint_path, signed.note)
        self._remember(signed)
        return signed

    @staticmethod
    def _check_extends(ledger: Ledger, last: Checkpoint, size: int, new_root: bytes) -> None:
        if size < last.size:
            raise LedgerTamperError(
                f"entry {size}: the ledger has {size} entries but a checkpoint of {last.size} "
                "was signed; refusing to sign a smaller log",
                size,
            )
        if size == last.size:
            if not hmac.compare_digest(new_root, last.root):
                raise LedgerTamperError(
                    f"the ledger's root at size {size} differs from the signed checkpoint's; "
                    "refusing to sign a rewritten log",
                    None,
                )
            return
        if last.size > 0:
            proof = ledger.consistency_proof(last.size, size)
            merkle.verify_consistency(last.size, size, last.root, new_root, proof)

    @contextmanager
    def _locked(self) -> Iterator[IO[bytes]]:
        """Open the history for appending under an exclusive lock (blocks other signers)."""
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self.history_path.open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                _drop_torn_tail(handle)
                yield handle
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _tail(self, handle: IO[bytes]) -> SignedCheckpoint | None:
        line = _last_line(handle)
        handle.seek(0, os.SEEK_END)
        return None if line is None else self._parse_line(line, "the last line")

    def _parse_line(self, line: bytes, where: str) -> SignedCheckpoint:
        problem = f"{self.history_path}: {where}"
        try:
            item = json.loads(line.decode("utf-8"))
            note, signed_at = str(item["note"]), datetime.fromisoformat(item["signed_at"])
            size, root = item["size"], base64.b64decode(item["root"], validate=True)
            if type(size) is not int or signed_at.tzinfo is None:
                raise TypeError("size must be an integer and signed_at carry an offset")
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise VerificationError(f"{problem} is not a checkpoint record") from exc
        try:
            text, _ = open_note(note, {self.origin: self.vkey})
            checkpoint = Checkpoint.parse(text)
        except VerificationError as exc:
            raise VerificationError(f"{problem}: {exc.diagnostics()}") from exc
        if (
            checkpoint.origin != self.origin
            or checkpoint.size != size
            or not hmac.compare_digest(checkpoint.root, root)
        ):
            raise VerificationError(f"{problem}: its size or root differs from its signed note")
        return SignedCheckpoint(checkpoint, note, signed_at)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc


def _complete_lines(data: bytes) -> list[bytes]:
    """Lines ending in a newline; a torn last line (a crash mid-append) was never signed."""
    return data.split(b"\n")[:-1]


def _last_line(handle: IO[bytes]) -> bytes | None:
    """The last complete line of a file, read backwards from its end."""
    end = handle.seek(0, os.SEEK_END)
    buf = b""
    pos = end
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        handle.seek(pos)
        buf = handle.read(step) + buf
        lines = _complete_lines(buf)
        if len(lines) >= 2 or (pos == 0 and lines):
            return lines[-1]
    return None


def _drop_torn_tail(handle: IO[bytes]) -> None:
    """Cut a partial last line (left by a crash) so the next record starts on its own line."""
    end = pos = handle.seek(0, os.SEEK_END)
    keep = 0
    while pos > 0:
        step = min(_TAIL_CHUNK, pos)
        pos -= step
        handle.seek(pos)
        cut = handle.read(step).rfind(b"\n")
        if cut >= 0:
            keep = pos + cut + 1
            break
    if keep != end:
        handle.truncate(keep)
    handle.seek(0, os.SEEK_END)
