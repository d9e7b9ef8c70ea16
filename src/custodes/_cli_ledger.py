"""``custodes ledger ...``: verify, prove, checkpoint and export the access ledger."""

from __future__ import annotations

import typer

__all__ = ["ledger_app"]

ledger_app = typer.Typer(
    help="The verifiable access ledger: verify it, prove entries, sign checkpoints, export it.",
    no_args_is_help=True,
)
