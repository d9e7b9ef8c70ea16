"""``custodes alerts``: the misuse alerts streaming detection raised in a vault."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from custodes._cli_common import AsJson, Home, emit, out
from custodes.config import Settings, default_home

__all__ = ["alerts_command"]


def alerts_command(home: Home = None, as_json: AsJson = False) -> None:
    """List the misuse alerts of a vault, newest first (written when detect.stream is on)."""
    from custodes.detect import read_alerts  # detectors load only for this command

    settings = Settings.load(home or default_home())  # refuses a directory that is no vault
    alerts = sorted(read_alerts(settings.home), key=_raised, reverse=True)

    def render() -> None:
        if not alerts:
            out.print("[dim]no alerts[/dim] (streaming detection writes them: detect.stream)")
            return
        table = Table()
        for name in ("raised", "accessor", "kind", "score", "events", "explanation"):
            table.add_column(name, overflow="fold")  # ids are long words: fold, never cut
        for alert in alerts:
            table.add_row(
                escape(str(alert.get("raised_at", ""))),
                escape(str(alert.get("accessor", ""))),
                escape(str(alert.get("kind", ""))),
                f"{_score(alert):.2f}",
                str(len(alert.get("evidence") or ())),
                escape(str(alert.get("explanation", ""))),
            )
        out.print(table)

    emit(alerts, as_json, render)


def _raised(alert: dict[str, Any]) -> str:
    # ISO 8601 in UTC from one writer: string order is time order.
    return str(alert.get("raised_at", ""))


def _score(alert: dict[str, Any]) -> float:
    score = alert.get("score")
    return float(score) if isinstance(score, int | float) else 0.0
