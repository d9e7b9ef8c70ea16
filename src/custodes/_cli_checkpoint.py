"""``custodes ledger checkpoint``: sign (or show) the ledger's current checkpoint.

INTERFACE STUB — being implemented (issue 3).
"""

from __future__ import annotations

from custodes._cli_common import AsJson, Home

__all__ = ["checkpoint_command"]


def checkpoint_command(home: Home = None, as_json: AsJson = False) -> None:
    """Sign a checkpoint of the ledger's current size and root, and print it."""
    raise NotImplementedError
