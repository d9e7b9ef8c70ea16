"""``custodes witness ...``: an independent verifier that cosigns consistent checkpoints."""

from __future__ import annotations

import typer

__all__ = ["witness_app"]

witness_app = typer.Typer(
    help="An independent witness: checks a log's checkpoints for consistency and cosigns them.",
    no_args_is_help=True,
)
