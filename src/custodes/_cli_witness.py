"""``custodes witness ...``: an independent verifier that cosigns consistent checkpoints.

A witness lives in its own state directory (``--state``), never in the vault home it watches.
``cosign`` opens the watched vault home read-only (its settings, its checkpoint file and its
store, without migrating it) and writes only ``<home>/ledger/cosignatures/<witness name>``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from custodes._cli_common import AsJson, emit, err, out
from custodes.clock import system_clock
from custodes.config import Settings
from custodes.errors import ConfigError, InputError
from custodes.ledger import Checkpoint, Ledger
from custodes.ledger.witness import Witness, WitnessRefusal, publish_cosignature
from custodes.store import open_store

__all__ = ["witness_app"]

witness_app = typer.Typer(
    help="An independent witness: checks a log's checkpoints for consistency and cosigns them.",
    no_args_is_help=True,
)

StateDir = Annotated[
    Path, typer.Option("--state", help="The witness's own state directory (key and state.json).")
]
LogHome = Annotated[Path, typer.Option("--log-home", help="The vault home whose log to witness.")]
CheckpointFile = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint", help="Signed checkpoint to check (default: <log-home>/ledger/checkpoint)."
    ),
]
_MAX_NOTE_BYTES = 64 * 1024


def _plain(text: str, **kwargs: Any) -> None:
    out.print(text, markup=False, highlight=False, **kwargs)


@witness_app.command("init")
def init(
    state: StateDir,
    name: Annotated[str, typer.Option("--name", help="The witness's key name.")],
    as_json: AsJson = False,
) -> None:
    """Create a witness: its own Ed25519 key (mode 0600), vkey file and state; print its vkey."""
    witness = Witness.create(state.resolve(), name)
    data = {"name": witness.name, "vkey": witness.vkey, "state": str(state.resolve())}
    emit(data, as_json, lambda: _plain(witness.vkey))


@witness_app.command("trust")
def trust(
    state: StateDir,
    log_vkey: Annotated[
        str, typer.Option("--log-vkey", help="The log's vkey, or a file holding it.")
    ],
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the key pinned for that origin (rotation).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Pin a log's public key (by its origin); its checkpoints must be signed by it."""
    vkey = _read_small(Path(log_vkey), "log vkey") if Path(log_vkey).is_file() else log_vkey
    origin = Witness.open(state.resolve()).trust(vkey.strip(), replace=replace)
    emit({"origin": origin, "vkey": vkey.strip()}, as_json, lambda: _plain(f"trusted {origin}"))


@witness_app.command("cosign")
def cosign(
    state: StateDir,
    log_home: LogHome,
    checkpoint: CheckpointFile = None,
    as_json: AsJson = False,
) -> None:
    """Verify the log's latest checkpoint against the last one cosigned, audit it, cosign it.

    On any inconsistency: exit status 1 and print both checkpoints (the evidence).
    """
    witness = Witness.open(state.resolve())
    settings = Settings.load(log_home)
    note = _read_small(checkpoint or settings.ledger_dir / "checkpoint", "checkpoint")
    try:
        with _log_ledger(settings) as ledger:
            cosigned = witness.cosign(note, ledger, system_clock())
    except WitnessRefusal as refusal:
        _show_refusal(refusal, as_json)
        raise typer.Exit(1) from refusal
    path = publish_cosignature(settings.ledger_dir, witness.name, cosigned)
    data = {
        "cosigned": True,
        "origin": cosigned.checkpoint.origin,
        "size": cosigned.checkpoint.size,
        "root": base64.b64encode(cosigned.checkpoint.root).decode("ascii"),
        "witness": witness.name,
        "timestamp": cosigned.timestamp,
        "cosignature": cosigned.cosignature,
        "note": cosigned.cosigned_note,
        "previous": cosigned.previous,
        "file": str(path),
    }
    emit(data, as_json, lambda: _plain(cosigned.cosigned_note, end=""))


@witness_app.command("show")
def show(state: StateDir, as_json: AsJson = False) -> None:
    """Show the witness's vkey, the logs it trusts and the last checkpoint it cosigned for each."""
    witness = Witness.open(state.resolve())
    logs: dict[str, Any] = {}
    for origin, vkey in witness.trusted().items():
        note = witness.witnessed(origin)
        body = Checkpoint.parse(note[: note.index("\n\n") + 1]) if note else None
        logs[origin] = {"vkey": vkey, "size": body.size if body else None, "checkpoint": note}
    data = {"name": witness.name, "vkey": witness.vkey, "logs": logs}

    def render() -> None:
        _plain(f"witness {witness.name}\n{witness.vkey}")
        for origin, log in logs.items():
            seen = "nothing cosigned yet" if log["size"] is None else f"size {log['size']}"
            _plain(f"  {origin}: {seen}")

    emit(data, as_json, render)


# -- helpers -----------------------------------------------------------------------------------


def _read_small(path: Path, what: str) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(_MAX_NOTE_BYTES + 1)
    except FileNotFoundError as exc:
        hint = " (sign one with 'custodes ledger checkpoint')" if what == "checkpoint" else ""
        raise InputError(f"no {what} at {path}{hint}") from exc
    if len(raw) > _MAX_NOTE_BYTES:
        raise InputError(f"{path}: the {what} is larger than {_MAX_NOTE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the {what} is not UTF-8 text") from exc


@contextmanager
def _log_ledger(settings: Settings) -> Iterator[Ledger]:
    """The watched vault's ledger, opened without creating or migrating anything."""
    if settings.store.backend == "sqlite" and not settings.store.path.is_file():
        raise ConfigError(f"no database at {settings.store.path}")
    store = open_store(settings.store)
    try:
        yield Ledger(store=store)
    finally:
        store.close()


def _show_refusal(refusal: WitnessRefusal, as_json: bool) -> None:
    def render() -> None:
        _plain("checkpoint this witness cosigned before:")
        _plain(refusal.witnessed or "(none: first contact)\n", end="")
        _plain("checkpoint presented now:")
        _plain(refusal.presented or "(none)\n", end="")

    emit(refusal.as_dict(), as_json, render)
    err.print(f"[red]error:[/red] {escape(refusal.diagnostics())}", highlight=False)
