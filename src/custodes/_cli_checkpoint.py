"""``custodes ledger checkpoint``: sign (or show) the ledger's current checkpoint."""

from __future__ import annotations

import base64

from custodes._cli_common import AsJson, Home, emit, open_vault, out
from custodes.clock import system_clock
from custodes.ledger import CheckpointLog

__all__ = ["checkpoint_command"]


def checkpoint_command(home: Home = None, as_json: AsJson = False) -> None:
    """Sign a checkpoint of the ledger's current size and root, and print it.

    If the ledger has not grown since the last checkpoint, that one is shown instead.
    """
    with open_vault(home) as vault:
        log = CheckpointLog.open(vault.settings)
        signed = log.sign(vault.ledger, system_clock())
    data = {
        "origin": signed.checkpoint.origin,
        "size": signed.checkpoint.size,
        "root": base64.b64encode(signed.checkpoint.root).decode("ascii"),
        "signed_at": signed.signed_at.isoformat(),
        "note": signed.note,
        "vkey": log.vkey,
    }

    def render() -> None:
        out.print(signed.note, end="", markup=False, highlight=False)

    emit(data, as_json, render)
