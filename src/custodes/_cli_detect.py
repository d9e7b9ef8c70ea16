"""``custodes detect``: misuse detection over interchange files (DESIGN.md §6).

INTERFACE STUB — being implemented (issue 5).
"""

from __future__ import annotations

from custodes._cli_common import AsJson

__all__ = ["detect_command"]


def detect_command(as_json: AsJson = False) -> None:
    """Detect misuse in an access log given as interchange files."""
    raise NotImplementedError
