"""Proof bundles: what a data subject's browser needs to check their ledger entries itself.

A bundle holds the log's verifier key, the configured witnesses' keys, one signed checkpoint
(the largest one that a configured witness cosigned, with the log's signature and every valid
cosignature merged into one C2SP note) and, per requested entry, the exact entry bytes as stored
and the RFC 9162 inclusion proof to that checkpoint. Entries newer than the checkpoint are
*pending*. Nothing in a bundle is trusted by its reader: ``static/verify.js`` checks the
signatures and proofs with Web Crypto, and :func:`check_bundle` does the same in Python.

The server picks which entries to include; a bundle proves that what it shows was logged,
not that nothing was left out (see docs/portal.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from custodes.errors import InputError, NotFound, SignatureError, VerificationError
from custodes.ledger import (
    Checkpoint,
    CheckpointLog,
    Ledger,
    WitnessedCheckpoint,
    merkle,
    witnessed_checkpoint,
)
from custodes.ledger._witnessed import valid_cosignatures
from custodes.ledger.note import decode_vkey, open_note
from custodes.store import Store

__all__ = [
    "BUNDLE_FORMAT",
    "MAX_SEQS",
    "WitnessedCheckpoint",
    "check_bundle",
    "key_fingerprint",
    "proof_bundle",
    "witnessed_checkpoint",
]

BUNDLE_FORMAT = "custodes-portal-proofs/1"
MAX_SEQS = 256  # entries per bundle: a page asks in batches
# How many of a subject's newest entries the portal lists and will prove.
MAX_SUBJECT_EVENTS = 10_000


def key_fingerprint(vkey: str) -> str:
    """Return a short fingerprint of a vkey's public key: the first 16 bytes of its SHA-256, in
    groups of four hex digits (what ``verify.js`` shows, for comparing with a published one).

    Raises:
        SignatureError: the vkey is malformed.
    """
    _, public = decode_vkey(vkey)
    digest = hashlib.sha256(public).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


# --- bundles ----------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _entry(store: Store, ledger: Ledger, seq: int, size: int | None) -> dict[str, Any]:
    """One entry of a bundle: its bytes and proof, pending, or the problem that prevents one."""
    rows = list(store.ledger_rows(seq, seq + 1))
    if not rows:
        return {"index": seq, "problem": "the ledger has no entry at this position"}
    item: dict[str, Any] = {"index": seq, "entry": _b64(rows[0][1])}
    if size is None or seq >= size:
        item["pending"] = True
        return item
    try:
        item["proof"] = [_b64(node) for node in ledger.inclusion_proof(seq, size)]
    except (InputError, VerificationError) as exc:
        # A truncated log or a missing stored node: the browser shows the entry as not verified.
        item["problem"] = exc.diagnostics()
    return item


def proof_bundle(
    *,
    store: Store,
    ledger: Ledger,
    checkpoints: CheckpointLog,
    witnesses: Sequence[str],
    ledger_dir: Path,
    subject: str,
    seqs: Sequence[int],
) -> dict[str, Any]:
    """Return the proof bundle (JSON-ready) for entries ``seqs`` about the subject whose ledger
    pseudonym is ``subject``.

    Raises:
        InputError: no seqs, more than ``MAX_SEQS``, or a negative one.
        NotFound: a seq is not among the subject's entries (whether it exists or not: the
            answer must not tell another subject's entries from absent ones).
        SignatureError: a configured witness vkey is malformed.
        StoreError: the store could not be read.
    """
    wanted = sorted(set(seqs))
    if not wanted or len(wanted) > MAX_SEQS or wanted[0] < 0:
        raise InputError(f"ask for 1 to {MAX_SEQS} entries by their non-negative positions")
    own = {seq for seq, _ in store.subject_events(subject, MAX_SUBJECT_EVENTS)}
    if not own.issuperset(wanted):
        raise NotFound("no such entry among yours")
    chosen = witnessed_checkpoint(
        checkpoints=checkpoints, witnesses=witnesses, ledger_dir=ledger_dir
    )
    size = None if chosen is None else chosen.checkpoint.size
    return {
        "format": BUNDLE_FORMAT,
        "subject": subject,
        "log": {"origin": checkpoints.origin, "vkey": checkpoints.vkey},
        "witnesses": list(witnesses),
        "checkpoint": None if chosen is None else {"note": chosen.note},
        "entries": [_entry(store, ledger, seq, size) for seq in wanted],
    }


# --- checking a bundle (the Python twin of verify.js) -----------------------------------------


def _checked_checkpoint(bundle: Mapping[str, Any]) -> tuple[Checkpoint, list[str]]:
    log = bundle["log"]
    note = bundle["checkpoint"]["note"]
    text, _ = open_note(note, {log["origin"]: log["vkey"]})
    checkpoint = Checkpoint.parse(text)
    if checkpoint.origin != log["origin"]:
        raise SignatureError("the checkpoint is for another log")
    lines = note[len(text) + 1 : -1].split("\n")
    cosigned = valid_cosignatures(text, lines, bundle["witnesses"])
    if bundle["witnesses"] and not cosigned:
        raise SignatureError("no configured witness cosigned the checkpoint")
    return checkpoint, sorted(cosigned)


def check_bundle(bundle: Mapping[str, Any]) -> dict[int, str]:
    """Check a bundle as the browser does; return each entry's state: ``verified``,
    ``unwitnessed`` (proved against a checkpoint no witness cosigned), ``pending`` or
    ``failed: <why>``.

    Raises:
        VerificationError: the checkpoint's log signature or a witness cosignature does not
            verify (then no entry can be checked).
        KeyError: the bundle lacks a part.
    """
    checkpoint: Checkpoint | None = None
    cosigned: list[str] = []
    if bundle["checkpoint"] is not None:
        checkpoint, cosigned = _checked_checkpoint(bundle)
    states: dict[int, str] = {}
    for item in bundle["entries"]:
        states[item["index"]] = _entry_state(bundle["subject"], item, checkpoint, cosigned)
    return states


def _entry_state(
    subject: str, item: Mapping[str, Any], checkpoint: Checkpoint | None, cosigned: list[str]
) -> str:
    index = item["index"]
    if "entry" not in item:
        return f"failed: {item.get('problem', 'no entry')}"
    entry = base64.b64decode(item["entry"], validate=True)
    if checkpoint is None or index >= checkpoint.size:
        return "pending"
    if "proof" not in item:
        return f"failed: {item.get('problem', 'no proof')}"
    proof = [base64.b64decode(node, validate=True) for node in item["proof"]]
    try:
        merkle.verify_inclusion(entry, index, checkpoint.size, proof, checkpoint.root)
    except VerificationError as exc:
        return f"failed: {exc.diagnostics()}"
    event = json.loads(entry)
    if event.get("subject") != subject or event.get("seq") != index:
        return "failed: the entry is about another subject or position"
    return "verified" if cosigned else "unwitnessed"
