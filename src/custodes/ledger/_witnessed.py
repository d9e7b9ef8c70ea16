"""Which checkpoint to show: the largest one the log signed that a configured witness cosigned.

Cosigned notes are read from ``<ledger_dir>/cosignatures/`` (where ``custodes witness cosign``
publishes them); every log signature and cosignature line is verified before it counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from custodes.errors import VerificationError
from custodes.ledger._checkpoint import CheckpointLog
from custodes.ledger.note import Checkpoint, decode_vkey, open_note, verify_cosignature

__all__ = ["WitnessedCheckpoint", "valid_cosignatures", "witnessed_checkpoint"]

_MAX_NOTE_BYTES = 64 * 1024  # a cosigned note is a few hundred bytes; refuse junk files


@dataclass(frozen=True, slots=True)
class WitnessedCheckpoint:
    """A checkpoint the log signed, as one note carrying the log's signature and the valid
    cosignatures of configured witnesses (``witnesses``: their names; empty if none cosigned)."""

    checkpoint: Checkpoint
    note: str
    witnesses: tuple[str, ...]


def _note_files(directory: Path) -> Iterable[str]:
    if not directory.is_dir():
        return
    for path in sorted(directory.iterdir()):
        # Dot files are atomic_write's temporaries: half-written notes.
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.stat().st_size <= _MAX_NOTE_BYTES:
            yield path.read_text(encoding="utf-8", errors="replace")


def _log_line(body: str, line: str, origin: str, log_vkey: str) -> bool:
    """Whether one signature line is a valid signature of the log key over ``body``."""
    try:
        open_note(f"{body}\n{line}\n", {origin: log_vkey})
    except VerificationError:
        return False
    return True


def valid_cosignatures(body: str, lines: Sequence[str], witnesses: Sequence[str]) -> dict[str, str]:
    """The valid cosignature line of each configured witness found among ``lines``."""
    valid: dict[str, str] = {}
    for vkey in witnesses:
        name, _ = decode_vkey(vkey)
        for line in lines:
            try:
                verify_cosignature(line, body, vkey)
            except VerificationError:
                continue
            valid.setdefault(name, line)
    return valid


def _collect(
    notes: Iterable[str], origin: str, log_vkey: str, witnesses: Sequence[str]
) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Per checkpoint body: the valid log signature lines and witness cosignature lines."""
    found: dict[str, tuple[list[str], dict[str, str]]] = {}
    for note in notes:
        try:
            body, _ = open_note(note, {origin: log_vkey})
            Checkpoint.parse(body)
        except VerificationError:
            continue  # not this log's, or not validly signed by it: not a checkpoint to show
        lines = note[len(body) + 1 : -1].split("\n")
        log_lines, cosigned = found.setdefault(body, ([], {}))
        log_lines.extend(
            line
            for line in lines
            if line not in log_lines and _log_line(body, line, origin, log_vkey)
        )
        for name, line in valid_cosignatures(body, lines, witnesses).items():
            cosigned.setdefault(name, line)
    return found


def witnessed_checkpoint(
    *, checkpoints: CheckpointLog, witnesses: Sequence[str], ledger_dir: Path
) -> WitnessedCheckpoint | None:
    """Return the largest checkpoint the log signed and a configured witness cosigned, from the
    cosigned notes in ``<ledger_dir>/cosignatures/``; if there is none, the log's latest
    checkpoint without cosignatures; ``None`` before the first checkpoint.

    Notes that are not validly signed by the log, and cosignature lines that do not verify
    under a configured witness key, are left out.

    Raises:
        SignatureError: a configured witness vkey is malformed.
        ConfigError: the checkpoint history cannot be read.
        OSError: the cosignatures directory cannot be read.
    """
    origin, log_vkey = checkpoints.origin, checkpoints.vkey
    found = _collect(_note_files(ledger_dir / "cosignatures"), origin, log_vkey, witnesses)
    best: WitnessedCheckpoint | None = None
    for body, (log_lines, cosigned) in found.items():
        if not log_lines or not cosigned:
            continue
        checkpoint = Checkpoint.parse(body)
        if best is None or checkpoint.size > best.checkpoint.size:
            signatures = [log_lines[0], *(cosigned[name] for name in sorted(cosigned))]
            note = body + "\n" + "".join(line + "\n" for line in signatures)
            best = WitnessedCheckpoint(checkpoint, note, tuple(sorted(cosigned)))
    if best is not None:
        return best
    latest = checkpoints.latest()
    return None if latest is None else WitnessedCheckpoint(latest.checkpoint, latest.note, ())
