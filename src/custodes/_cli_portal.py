"""``custodes portal-code SUBJECT_ID``: a one-time code that signs a data subject in to the portal.

The custodian hands the code to the person (at a counter, by post): it is shown once, only its
digest is stored, it works once, and it expires after ``api.portal_code_minutes``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from custodes._cli_common import AsJson, Home, emit, open_vault, out
from custodes.clock import system_clock

__all__ = ["portal_code_command"]


def portal_code_command(
    subject: Annotated[str, typer.Argument(metavar="SUBJECT_ID", help="The subject's ID number.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Print a one-time code with which the subject signs in to the transparency portal."""
    with open_vault(home) as vault:
        minutes = vault.settings.api.portal_code_minutes
        from custodes.web import issue_portal_code  # the web pages load only when needed

        code, expires = issue_portal_code(vault, subject, minutes=minutes, clock=system_clock)
    data = {"code": code, "expires_at": expires.isoformat(), "minutes": minutes, "url": "/portal"}

    def render() -> None:
        out.print(f"[bold]{code}[/bold]", highlight=False)
        out.print(
            f"one-time portal sign-in code, valid for {minutes} minutes: enter it at /portal/login",
            highlight=False,
        )

    emit(data, as_json, render)
