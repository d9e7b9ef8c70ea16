"""A witness: an independent verifier that cosigns a log's checkpoints only if they are consistent.

The witness keeps its own Ed25519 key and a state directory::

    <state>/witness.key    private key (mode 0600; refused if group or others can read it)
    <state>/witness.vkey   its public verifier key (C2SP vkey, signature type 0x04)
    <state>/state.json     its name and, per trusted log origin, the log's pinned vkey and the
                           last checkpoint it cosigned (replaced atomically, under a lock)

For a presented checkpoint it checks, in order: the note is signed by the log key pinned for its
origin; against the last checkpoint it cosigned for that origin, the size did not shrink
(rollback, truncation), an equal size has the same root (else a split view), and a larger size
comes with a consistency proof (RFC 9162) from the witness's *own* stored root; then, because a
custodes witness can read the log's entries, that every stored entry still hashes to the signed
root (:meth:`~custodes.ledger.Ledger.verify`). Only then does it cosign (C2SP tlog-cosignature)
and remember the new checkpoint. Any failure raises :class:`WitnessRefusal`, carrying both
checkpoints as evidence, and changes nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from custodes.errors import ConfigError, InputError, VerificationError
from custodes.ledger import merkle
from custodes.ledger._checkpoint import atomic_write, create_signing_key, read_signing_key
from custodes.ledger._log import LedgerTamperError
from custodes.ledger.note import (
    Checkpoint,
    WitnessSigner,
    decode_vkey,
    encode_vkey,
    open_note,
    verify_cosignature,
)

if TYPE_CHECKING:
    from custodes.ledger._log import Ledger

__all__ = ["Cosigned", "Witness", "WitnessRefusal", "cosignature_file", "publish_cosignature"]

STATE_FORMAT = "custodes-witness-state"
STATE_VERSION = 1


class WitnessRefusal(VerificationError):
    """The witness refused to cosign; ``witnessed`` (the note it cosigned before, if any) and
    ``presented`` (the note it was shown) are the evidence, ``first_bad_index`` the first
    entry found altered when the log's entries were audited."""

    def __init__(
        self,
        reason: str,
        *,
        witnessed: str | None,
        presented: str | None,
        first_bad_index: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.witnessed = witnessed
        self.presented = presented
        self.first_bad_index = first_bad_index

    def diagnostics(self) -> str:
        return f"witness refused to cosign: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        """Return the refusal as JSON-ready evidence."""
        return {
            "cosigned": False,
            "reason": self.reason,
            "witnessed": self.witnessed,
            "presented": self.presented,
            "first_bad_index": self.first_bad_index,
        }


@dataclass(frozen=True, slots=True)
class Cosigned:
    """A checkpoint the witness cosigned: the log's note, the witness's line and what it saw
    before (``previous``, ``None`` on first contact)."""

    checkpoint: Checkpoint
    note: str
    cosignature: str
    timestamp: int
    previous: str | None

    @property
    def cosigned_note(self) -> str:
        """The log's signed note with the witness's cosignature line appended."""
        return self.note + self.cosignature


class Witness:
    """A witness's key and state directory. Build one with :meth:`create` or :meth:`open`."""

    def __init__(self, *, directory: Path, signer: WitnessSigner) -> None:
        self._dir = directory
        self._signer = signer

    @classmethod
    def create(cls, directory: Path, name: str) -> Witness:
        """Make a new witness in ``directory``: key (0600), vkey file and empty state.

        Raises:
            InputError: ``name`` is not a valid key name.
            ConfigError: the directory already holds a witness or cannot be written.
        """
        WitnessSigner.generate(name)  # validates the name before anything is written
        if name in (".", ".."):
            raise InputError("witness name must not be '.' or '..'")
        if (directory / "state.json").exists():
            raise ConfigError(f"{directory} already holds a witness (state.json exists)")
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        raw = create_signing_key(directory / "witness.key", what="witness key")
        witness = cls(directory=directory, signer=WitnessSigner.from_private_bytes(name, raw))
        atomic_write(directory / "witness.vkey", witness.vkey + "\n")
        witness._save({"format": STATE_FORMAT, "version": STATE_VERSION, "name": name, "logs": {}})
        return witness

    @classmethod
    def open(cls, directory: Path) -> Witness:
        """Open an existing witness.

        Raises:
            ConfigError: no witness there, its key is readable by others, or its state is bad.
        """
        state = _load_state(directory)
        raw = read_signing_key(directory / "witness.key", what="witness key")
        return cls(directory=directory, signer=WitnessSigner.from_private_bytes(state["name"], raw))

    @property
    def name(self) -> str:
        """The witness's key name (on its cosignature lines)."""
        return self._signer.name

    @property
    def vkey(self) -> str:
        """The witness's public verifier key, for whoever checks its cosignatures."""
        return self._signer.vkey

    def trusted(self) -> dict[str, str]:
        """Return the pinned log keys: origin → vkey."""
        return {origin: log["vkey"] for origin, log in _load_state(self._dir)["logs"].items()}

    def witnessed(self, origin: str) -> str | None:
        """Return the last checkpoint note cosigned for ``origin``, or ``None``."""
        log = _load_state(self._dir)["logs"].get(origin)
        return None if log is None else log.get("checkpoint")

    def trust(self, log_vkey: str, *, replace: bool = False) -> str:
        """Pin a log's Ed25519 note key under its name (the log's origin); return the origin.

        Re-pinning the same key is a no-op. A different key for a pinned origin is refused
        unless ``replace`` (a key rotation): the last cosigned checkpoint is kept either way.

        Raises:
            InputError: the vkey is malformed, not an Ed25519 note key (0x01), or another key
                is pinned for that origin.
        """
        origin = _note_key_name(log_vkey.strip())
        with self._locked():
            state = _load_state(self._dir)
            log = state["logs"].setdefault(origin, {"vkey": None, "checkpoint": None})
            if log["vkey"] not in (None, log_vkey.strip()) and not replace:
                raise InputError(
                    f"the witness already trusts another key for {origin!r}; a new log key is "
                    "also what a rewritten log would show: use --replace only for a rotation"
                )
            log["vkey"] = log_vkey.strip()
            self._save(state)
        return origin

    def cosign(self, note: str, ledger: Ledger, now: datetime) -> Cosigned:
        """Check a log's signed checkpoint against what this witness saw before; cosign it.

        Raises:
            WitnessRefusal: unknown origin or bad signature, a smaller size, an equal size with
                another root, a failed consistency proof, or a stored entry that does not hash
                to the signed root. Nothing is changed.
            StoreError: the log's store could not be read.
        """
        with self._locked():
            state = _load_state(self._dir)
            checkpoint = _open_presented(note, state["logs"])
            log = state["logs"][checkpoint.origin]
            previous: str | None = log.get("checkpoint")
            _check_consistent(previous, note, checkpoint, ledger)
            _audit(previous, note, checkpoint, ledger)
            timestamp = int(now.timestamp())
            line = self._signer.cosign(checkpoint.body(), timestamp)
            verify_cosignature(line, checkpoint.body(), self.vkey)
            log.update(checkpoint=note, cosigned_at=now.isoformat(), cosignature=line)
            self._save(state)
        return Cosigned(checkpoint, note, line, timestamp, previous)

    # -- internals ---------------------------------------------------------------------------

    def _save(self, state: dict[str, Any]) -> None:
        text = json.dumps(state, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        atomic_write(self._dir / "state.json", text, mode=0o600)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize state changes between witness processes sharing this directory."""
        fd = os.open(self._dir / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _note_key_name(vkey: str) -> str:
    try:
        name, public = decode_vkey(vkey)
    except VerificationError as exc:
        raise InputError(f"not a log vkey: {exc.diagnostics()}") from exc
    if encode_vkey(name, public) != vkey:
        raise InputError("not a log vkey: it is a witness (0x04) key, not a note (0x01) key")
    return name


def _load_state(directory: Path) -> dict[str, Any]:
    path = directory / "state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no witness at {directory} (run 'custodes witness init')") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the witness state: {exc}") from exc
    if (
        not isinstance(state, dict)
        or state.get("format") != STATE_FORMAT
        or state.get("version") != STATE_VERSION
        or not isinstance(state.get("name"), str)
        or not isinstance(state.get("logs"), dict)
    ):
        raise ConfigError(f"{path}: not a {STATE_FORMAT} v{STATE_VERSION} file")
    return state


def _open_presented(note: str, logs: dict[str, Any]) -> Checkpoint:
    """Verify the note with the key pinned for its origin and parse its checkpoint."""
    origin = note.split("\n", 1)[0]
    log = logs.get(origin)
    if log is None or not log.get("vkey"):
        raise WitnessRefusal(
            f"no trusted log key for origin {origin[:100]!r} (pin one with 'witness trust')",
            witnessed=None,
            presented=note,
        )
    previous = log.get("checkpoint")
    try:
        text, _ = open_note(note, {origin: log["vkey"]})
        return Checkpoint.parse(text)
    except VerificationError as exc:
        raise WitnessRefusal(
            f"the checkpoint is not validly signed by the log key pinned for {origin!r}: "
            f"{exc.diagnostics()}",
            witnessed=previous,
            presented=note,
        ) from exc


def _check_consistent(previous: str | None, note: str, new: Checkpoint, ledger: Ledger) -> None:
    """Refuse unless ``new`` extends the checkpoint this witness cosigned before."""
    if previous is None:
        return
    # The witness's own state: trusted, so parsed without re-verifying the log's signature.
    old = Checkpoint.parse(previous[: previous.index("\n\n") + 1])

    def refuse(reason: str) -> WitnessRefusal:
        return WitnessRefusal(reason, witnessed=previous, presented=note)

    if new.size < old.size:
        raise refuse(
            f"rollback: the log presents size {new.size}, smaller than the {old.size} "
            "already cosigned (truncated or rewritten log)"
        )
    if new.size == old.size:
        if new.root != old.root:
            raise refuse(f"split view: two different roots for the same size {new.size}")
        return
    if old.size == 0:
        return
    try:
        proof = ledger.consistency_proof(old.size, new.size)
        merkle.verify_consistency(old.size, new.size, old.root, new.root, proof)
    except (VerificationError, InputError) as exc:
        raise refuse(
            f"the log of size {new.size} is not an extension of the cosigned size {old.size}: "
            f"{exc.diagnostics()}"
        ) from exc


def _audit(previous: str | None, note: str, new: Checkpoint, ledger: Ledger) -> None:
    """Refuse unless every stored entry still hashes to the signed root."""
    try:
        ledger.verify(expect_size=new.size, expect_root=new.root)
    except LedgerTamperError as exc:
        raise WitnessRefusal(
            f"the log's stored entries do not match the signed checkpoint: {exc.diagnostics()}",
            witnessed=previous,
            presented=note,
            first_bad_index=exc.index,
        ) from exc


def cosignature_file(ledger_dir: Path, witness_name: str) -> Path:
    """Where a witness's latest cosigned note for a vault goes: ``ledger/cosignatures/<name>``.

    The name is percent-encoded so that a name like ``example.com/w1`` stays one file.
    """
    return ledger_dir / "cosignatures" / quote(witness_name, safe="")


def publish_cosignature(ledger_dir: Path, witness_name: str, cosigned: Cosigned) -> Path:
    """Write the cosigned note (the log's note plus this witness's line) beside the log's
    checkpoint, replacing the witness's previous one atomically; return its path.

    Raises:
        OSError: the vault home's ledger directory cannot be written.
    """
    path = cosignature_file(ledger_dir, witness_name)
    path.parent.mkdir(exist_ok=True, mode=0o700)
    atomic_write(path, cosigned.cosigned_note)
    return path
