"""Checks of the database: its append-only guards, who could remove them, how it is reached."""

from __future__ import annotations

import ipaddress
from typing import Any

from custodes.doctor._context import Context
from custodes.doctor._model import Finding, Status
from custodes.store._codec import SCHEMA_VERSION

__all__ = ["durability", "guards", "pg_connection"]

_VERIFIED_TLS = ("verify-ca", "verify-full")
_ENCRYPTED = ("require", *_VERIFIED_TLS)


def guards(ctx: Context) -> list[Finding]:
    """The triggers that refuse UPDATE, DELETE and TRUNCATE on events and the ledger."""
    found = ctx.guards()
    findings = []
    if found.schema_version != SCHEMA_VERSION:
        findings.append(
            Finding(
                "store.schema",
                Status.FAIL,
                f"the database has schema version {found.schema_version}, this custodes "
                f"uses {SCHEMA_VERSION}",
                "open the vault once with this version of custodes (it upgrades in place), or "
                "check store.path / store.url.",
            )
        )
    if found.missing:
        findings.append(
            Finding(
                "store.guards",
                Status.FAIL,
                "append-only guards missing, disabled or altered: "
                + ", ".join(found.missing)
                + ". Someone changed the database schema; events and ledger entries can then be "
                "edited or deleted in place.",
                "run 'custodes ledger verify' to find what was changed, and find out who "
                "altered the schema before restoring the triggers.",
            )
        )
    else:
        findings.append(
            Finding("store.guards", Status.OK, "events and ledger entries: append-only triggers")
        )
    if found.privileged is not None:
        findings.append(
            Finding(
                "store.role",
                Status.WARN,
                f"the vault connects as a database role that {found.privileged}: whoever "
                "holds its credentials can drop the append-only guards.",
                "let an owner role create the schema, and connect custodes as a role that "
                "may only read and write rows (no DDL, no TRIGGER, not a superuser).",
            )
        )
    return findings


def durability(ctx: Context) -> list[Finding]:
    """A read returns data once its event is committed; the commit must outlive a power cut."""
    volatile = ctx.guards().volatile
    if volatile is None:
        return [Finding("store.durability", Status.OK, "every commit is flushed to disk")]
    fix = (
        'set store.durability = "full" in custodes.toml'
        if ctx.settings.store.backend == "sqlite"
        else "turn fsync and synchronous_commit on for the vault's database"
    )
    return [
        Finding(
            "store.durability",
            Status.WARN,
            f"{volatile}: commits survive a crash of the process, not a power loss, so the "
            "last accesses before a power cut could be missing from the ledger although their "
            "data was returned.",
            fix + " (each commit then waits for the disk).",
        )
    ]


def pg_connection(ctx: Context) -> list[Finding]:
    """ID numbers' ciphertexts, tokens and the ledger cross this connection: encrypt it."""
    settings = ctx.settings
    if settings.store.backend != "postgres" or not settings.store.url:
        return []
    from psycopg.conninfo import conninfo_to_dict  # psycopg loads only for PostgreSQL

    info: dict[str, Any] = conninfo_to_dict(settings.store.url)
    findings = [_tls(info)]
    written = ctx.raw_settings().get("store", {}).get("url")
    if isinstance(written, str) and conninfo_to_dict(written).get("password"):
        findings.append(
            Finding(
                "store.password",
                Status.WARN,
                "custodes.toml holds the database password in store.url.",
                "remove it from the file: use a ~/.pgpass file, or pass the URL in "
                "CUSTODES_STORE_URL from a secret store.",
            )
        )
    return findings


def _tls(info: dict[str, Any]) -> Finding:
    hosts = [h for h in str(info.get("host") or "").split(",") if h]
    remote = [h for h in hosts if not _local(h)]
    mode = str(info.get("sslmode") or "prefer")
    if not remote:
        return Finding("store.tls", Status.OK, "PostgreSQL is reached on this machine only")
    if mode not in _ENCRYPTED:
        return Finding(
            "store.tls",
            Status.FAIL,
            f"PostgreSQL at {', '.join(remote)} is reached with sslmode={mode}: the connection "
            "may be unencrypted, and anyone on the path can read or change what crosses it.",
            "add sslmode=verify-full (and sslrootcert) to store.url.",
        )
    if mode not in _VERIFIED_TLS:
        return Finding(
            "store.tls",
            Status.WARN,
            "the connection to PostgreSQL is encrypted but the server's certificate is not "
            "checked (sslmode=require): a machine in the path can pose as the server.",
            "use sslmode=verify-full with the server's CA in sslrootcert.",
        )
    return Finding("store.tls", Status.OK, f"PostgreSQL over TLS with sslmode={mode}")


def _local(host: str) -> bool:
    if host.startswith("/") or host == "localhost":
        return True  # a Unix socket directory, or this machine
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
