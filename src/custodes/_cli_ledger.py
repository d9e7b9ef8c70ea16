"""``custodes ledger ...``: verify, prove, checkpoint and export the access ledger."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custodes._cli_common import AsJson, Home, emit, open_vault, out
from custodes.errors import InputError, VerificationError
from custodes.ledger import CheckpointLog, LedgerTamperError, merkle
from custodes.ledger.export import export_ledger
from custodes.vault import Vault

__all__ = ["ledger_app"]

ledger_app = typer.Typer(
    help="The verifiable access ledger: verify it, prove entries, sign checkpoints, export it.",
    no_args_is_help=True,
)

# Numbers are taken as text and parsed here so that a bad one is a one-line error like every
# other user error, not a usage screen.
Index = Annotated[str, typer.Argument(metavar="INDEX", help="0-based index of the entry.")]
SizeOpt = Annotated[
    str | None, typer.Option("--size", help="Tree size to prove against (default: current).")
]
_DIGITS = re.compile(r"[0-9]+")


def _number(text: str, name: str) -> int:
    if not _DIGITS.fullmatch(text.strip()):
        raise InputError(f"{name} must be a whole number of 0 or more, got {text!r}")
    return int(text.strip())


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _plain(text: str) -> None:
    out.print(text, markup=False, highlight=False)


@ledger_app.command("verify")
def verify(home: Home = None, as_json: AsJson = False) -> None:
    """Recompute the whole ledger from its stored entries; on failure name the first bad index."""
    with open_vault(home) as vault:
        latest = CheckpointLog.open(vault.settings).latest()
        checkpoint = latest.checkpoint if latest is not None else None
        ledger = vault.ledger
        # Taken before verifying: every entry below it is then among those verify rehashed.
        size = ledger.size()
        data: dict[str, Any] = {
            "ok": False,
            "size": size,
            "root": None,
            "checkpoint_size": checkpoint.size if checkpoint else None,
            "first_bad_index": None,
            "error": None,
        }
        try:
            ledger.verify(
                expect_size=checkpoint.size if checkpoint else None,
                expect_root=checkpoint.root if checkpoint else None,
            )
        except LedgerTamperError as exc:
            if as_json:
                emit({**data, "first_bad_index": exc.index, "error": exc.diagnostics()}, True)
            raise
        root = ledger.root(size)
    data.update(ok=True, root=_b64(root))

    def render() -> None:
        out.print(f"[green]ledger ok[/green]: {size} entries recomputed")
        _plain(f"  root (base64): {_b64(root)}")
        _plain(f"  root (hex):    {root.hex()}")
        if checkpoint is None:
            _plain("  checkpoint: none signed yet (only internal consistency was checked)")
        else:
            _plain(f"  checkpoint: size {checkpoint.size} matches the signed root")

    emit(data, as_json, render)


def _entry(vault: Vault, index: int) -> bytes:
    # The stored entry bytes themselves: exactly what was hashed into the log.
    for seq, entry, _ in vault.store.ledger_rows(index, index + 1):
        if seq == index:
            return entry
    raise LedgerTamperError(
        f"entry {index}: the stored entry is missing (run 'custodes ledger verify')", index
    )


@ledger_app.command("prove", context_settings={"ignore_unknown_options": True})
def prove(
    index: Index,
    size: SizeOpt = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Print an entry with its inclusion proof (leaf to root), checked before it is printed."""
    i = _number(index, "INDEX")
    with open_vault(home) as vault:
        ledger = vault.ledger
        n = ledger.size() if size is None else _number(size, "--size")
        if i >= n:
            raise InputError(f"INDEX {i} is not in a tree of size {n} (indexes are 0..size-1)")
        root = ledger.root(n)
        proof = ledger.inclusion_proof(i, n)
        entry = _entry(vault, i)
    try:
        merkle.verify_inclusion(entry, i, n, proof, root)
    except VerificationError as exc:
        raise VerificationError(
            f"entry {i}: its inclusion proof does not verify against the root of size {n}, "
            f"the log was altered ({exc.diagnostics()}; run 'custodes ledger verify')"
        ) from exc
    hashes = [_b64(p) for p in proof]
    data = {
        "index": i,
        "size": n,
        "entry": entry.decode("utf-8"),
        "leaf_hash": _b64(merkle.leaf_hash(entry)),
        "proof": hashes,
        "root": _b64(root),
    }

    def render() -> None:
        out.print(f"[green]entry {i} is included[/green] in the tree of size {n} (proof checked)")
        _plain(f"  entry:     {data['entry']}")
        _plain(f"  leaf hash: {data['leaf_hash']}")
        _plain(f"  root:      {data['root']}  (hex {root.hex()})")
        _plain(f"  proof ({len(proof)} hashes, leaf to root):")
        for digest in hashes:
            _plain(f"    {digest}")

    emit(data, as_json, render)


@ledger_app.command("consistency", context_settings={"ignore_unknown_options": True})
def consistency(
    old: Annotated[str, typer.Argument(metavar="OLD", help="The earlier tree size.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="The later tree size.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Print the proof that the tree of OLD entries is a prefix of that of NEW, checked."""
    m, n = _number(old, "OLD"), _number(new, "NEW")
    if not 0 < m <= n:
        raise InputError(f"consistency needs 0 < OLD <= NEW, got {m} and {n}")
    with open_vault(home) as vault:
        ledger = vault.ledger
        proof = ledger.consistency_proof(m, n)
        old_root, new_root = ledger.root(m), ledger.root(n)
    try:
        merkle.verify_consistency(m, n, old_root, new_root, proof)
    except VerificationError as exc:
        raise VerificationError(
            f"the consistency proof {m} -> {n} does not verify, the log was altered "
            f"({exc.diagnostics()}; run 'custodes ledger verify')"
        ) from exc
    hashes = [_b64(p) for p in proof]
    data = {
        "old_size": m,
        "new_size": n,
        "old_root": _b64(old_root),
        "new_root": _b64(new_root),
        "proof": hashes,
    }

    def render() -> None:
        out.print(f"[green]the tree of {m} is a prefix of the tree of {n}[/green] (proof checked)")
        _plain(f"  old root: {data['old_root']}")
        _plain(f"  new root: {data['new_root']}")
        _plain(f"  proof ({len(proof)} hashes):")
        for digest in hashes:
            _plain(f"    {digest}")

    emit(data, as_json, render)


@ledger_app.command("export")
def export(
    output: Annotated[Path, typer.Option("--out", help="Directory to write the files into.")],
    force: Annotated[bool, typer.Option("--force", help="Replace existing export files.")] = (
        False
    ),
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Write the access log as interchange JSON lines (events, accessors, cases, subjects)."""
    with open_vault(home) as vault:
        summary = export_ledger(vault, output, force=force)
    data = {
        "directory": str(summary.directory),
        "size": summary.size,
        "root": _b64(summary.root),
        "events": summary.events,
        "accessors": summary.accessors,
        "cases": summary.cases,
        "subjects": summary.subjects,
    }

    def render() -> None:
        out.print(
            f"exported {summary.events} events, {summary.accessors} accessors, "
            f"{summary.cases} cases and {summary.subjects} subjects to "
            f"{escape(str(summary.directory))}"
        )
        _plain(f"  ledger size {summary.size}, root {data['root']}")

    emit(data, as_json, render)
