"""``custodes canary``: plant canary subjects and list them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from custodes._cli_common import AsJson, Home, emit, open_vault, out
from custodes.errors import InputError
from custodes.model import Access
from custodes.vault import Vault

__all__ = ["canary_app"]

canary_app = typer.Typer(
    help="Canary subjects: synthetic people no legitimate work touches; any access alerts."
)


@canary_app.command("plant")
def plant(
    accessor: Annotated[
        str | None,
        typer.Option(
            "--as", help="The registrar who writes them (default: the first active registrar)."
        ),
    ] = None,
    count: Annotated[int, typer.Option("--count", help="How many canaries.")] = 10,
    org: Annotated[
        str | None, typer.Option("--org", help="Scope: the organization they are planted for.")
    ] = None,
    scope_accessor: Annotated[
        str | None, typer.Option("--accessor", help="Scope: the accessor they are planted for.")
    ] = None,
    reveal: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write their (synthetic) identity records here as JSON lines, to seed them "
            "into the scope's own systems (new file, mode 0600).",
        ),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Write synthetic people through the vault and register them as canaries."""
    from custodes.forensics import plant_canaries  # forensics loads only for its commands

    if reveal is not None and reveal.exists():
        raise InputError(f"{reveal} exists; canary records are never written over a file")
    with open_vault(home) as vault:
        access = Access(vault.principal(accessor or _registrar(vault)), "registration")
        result = plant_canaries(vault, access, count=count, org=org, accessor=scope_accessor)
    if reveal is not None:
        _write_new(reveal, [json.dumps(i, ensure_ascii=False) for i in result.identities])
    data = {
        "planted": len(result.canaries),
        "records": result.records,
        "scope": {"org": result.canaries[0].org, "accessor": scope_accessor},
        "pseudonyms": [c.pseudonym for c in result.canaries],
        "identities_file": str(reveal) if reveal else None,
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"planted {len(result.canaries)} canaries ({result.records} records); any access "
            "to one raises a canary_touch alert"
            + (
                f"\n  their identity records: {reveal} (keep it as safe as the keys)"
                if reveal
                else ""
            )
        ),
    )


@canary_app.command("list")
def list_canaries(home: Home = None, as_json: AsJson = False) -> None:
    """List the planted canaries (pseudonyms and scopes; never ID numbers)."""
    from custodes.forensics import planted_canaries

    with open_vault(home) as vault:
        canaries = planted_canaries(vault)
    data = [c.as_dict() for c in canaries]

    def render() -> None:
        if not data:
            out.print("[dim]no canaries[/dim] (plant some with 'custodes canary plant')")
            return
        table = Table("pseudonym", "org", "accessor", "planted", "collections")
        for c in canaries:
            table.add_row(
                c.pseudonym,
                c.org or "—",
                c.accessor or "—",
                c.planted_at.isoformat(timespec="seconds"),
                ", ".join(c.collections),
            )
        out.print(table)

    emit(data, as_json, render)


def _registrar(vault: Vault) -> str:
    for found in vault.store.accessors():
        if found.active and found.role == "registrar":
            return found.accessor
    raise InputError("no active registrar to write canaries; name one with --as")


def _write_new(path: Path, lines: list[str]) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
