"""The ``custodes`` command: a thin shell over the library.

Every command takes ``--home`` (default ``$CUSTODES_HOME``, else ``./.custodes``) and ``--json``.
Errors print one line to stderr and exit with status 1; no traceback for anything a user caused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from custodes._cli_alerts import alerts_command
from custodes._cli_canary import canary_app
from custodes._cli_checkpoint import checkpoint_command
from custodes._cli_common import (
    As,
    AsJson,
    BreakGlass,
    CaseOpt,
    FieldsOpt,
    Home,
    Justification,
    Purpose,
    Subject,
    emit,
    err,
    open_vault,
    out,
)
from custodes._cli_demo import demo_command
from custodes._cli_detect import detect_command
from custodes._cli_doctor import doctor_command
from custodes._cli_import import import_command
from custodes._cli_ledger import ledger_app
from custodes._cli_portal import portal_code_command
from custodes._cli_serve import serve_command, token_app
from custodes._cli_trace import trace_leak_command
from custodes._cli_witness import witness_app
from custodes._home import init_home
from custodes.config import default_home
from custodes.errors import CustodesError, InputError
from custodes.model import Access, Accessor, Action, Case, Decision
from custodes.vault import Record, Vault

__all__ = ["app", "main"]

app = typer.Typer(
    name="custodes",
    help="A personal-records vault: every access has a reason and leaves a verifiable trace.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
accessor_app = typer.Typer(help="Register the people and applications that access records.")
case_app = typer.Typer(help="Cases: the open, approved reasons that explain investigative reads.")
policy_app = typer.Typer(help="Inspect the access policy.")
app.add_typer(accessor_app, name="accessor")
app.add_typer(case_app, name="case")
app.add_typer(policy_app, name="policy")
app.add_typer(ledger_app, name="ledger")
ledger_app.command("checkpoint")(checkpoint_command)
app.command("demo")(demo_command)
app.command("detect")(detect_command)
app.command("alerts")(alerts_command)
app.add_typer(canary_app, name="canary")
app.command("trace-leak")(trace_leak_command)
app.add_typer(witness_app, name="witness")
app.command("serve")(serve_command)
app.add_typer(token_app, name="token")
app.command("portal-code")(portal_code_command)
app.command("doctor")(doctor_command)
app.command("import")(import_command)


def _access(
    vault: Vault,
    accessor: str,
    purpose: str | None,
    case: str | None = None,
    break_glass: bool = False,
    justification: str | None = None,
) -> Access:
    return Access(
        principal=vault.principal(accessor),
        purpose=purpose,
        case=case,
        justification=justification,
        break_glass=break_glass,
    )


def _split_fields(fields: str | None) -> list[str] | None:
    if fields is None:
        return None
    names = [f.strip() for f in fields.split(",") if f.strip()]
    if not names:
        raise InputError("--fields names no field")
    return names


def _pairs(items: Sequence[str], option: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"{option} takes NAME=VALUE, got {item.split('=')[0]!r}")
        if name.strip() in values:
            raise InputError(f"{option} names field '{name.strip()}' twice")
        values[name.strip()] = value
    return values


def _records_table(records: Sequence[Record]) -> None:
    if not records:
        out.print("[dim]no records[/dim]")
        return
    for rec in records:
        table = Table(title=f"{rec.collection} · {rec.record_id}", show_header=False)
        for name, value in rec.values.items():
            table.add_row(name, value)
        out.print(table)


def _case_dict(case: Case) -> dict[str, Any]:
    return {
        "case": case.case_id,
        "org": case.org,
        "purpose": case.purpose,
        "subjects": len(case.subjects),
        "assigned": sorted(case.assigned),
        "opened_by": case.opened_by,
        "opened_at": case.opened_at.isoformat(),
        "expires_at": case.expires_at.isoformat() if case.expires_at else None,
        "approved_by": case.approved_by,
        "approver_role": case.approver_role,
        "approved_at": case.approved_at.isoformat() if case.approved_at else None,
        "closed_at": case.closed_at.isoformat() if case.closed_at else None,
    }


def _show_case(case: Case, as_json: bool) -> None:
    data = _case_dict(case)

    def render() -> None:
        table = Table(title=f"case {case.case_id}", show_header=False)
        for key, value in data.items():
            table.add_row(key, "—" if value is None else str(value))
        out.print(table)

    emit(data, as_json, render)


def _decision_dict(decision: Decision) -> dict[str, Any]:
    return {
        "allowed": decision.allowed,
        "reason": decision.reason,
        "missing": list(decision.missing),
        "fields": list(decision.fields),
        "break_glass": decision.break_glass,
    }


@app.command()
def init(
    home: Home = None,
    backend: Annotated[str, typer.Option(help="'sqlite' or 'postgres'.")] = "sqlite",
    url: Annotated[str | None, typer.Option(help="PostgreSQL URL (backend postgres).")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant name bound into every ciphertext.")] = (
        "default"
    ),
    as_json: AsJson = False,
) -> None:
    """Create a vault home: settings, schema, policy, keys (0600) apart from the database."""
    settings = init_home(home or default_home(), backend=backend, url=url, tenant=tenant)
    data = {
        "home": str(settings.home),
        "database": str(settings.store.path) if backend == "sqlite" else "postgres",
        "keys": str(settings.keys_dir),
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"[green]vault created[/green] in {settings.home}\n"
            f"  keys: {settings.keys_dir} (mode 0600; keep them apart from database backups)\n"
            "  edit schema.toml and policy.toml, then add accessors"
        ),
    )


@accessor_app.command("add")
def accessor_add(
    accessor_id: Annotated[str, typer.Argument(metavar="ID", help="Accessor id.")],
    org: Annotated[str, typer.Option(help="Organization.")],
    role: Annotated[str, typer.Option(help="Role, as named in the policy.")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Register an accessor with its organization and role."""
    with open_vault(home) as vault:
        vault.add_accessor(Accessor(accessor=accessor_id, org=org, role=role))
    emit(
        {"accessor": accessor_id, "org": org, "role": role},
        as_json,
        lambda: out.print(f"accessor [bold]{accessor_id}[/bold] ({role} at {org}) added"),
    )


@accessor_app.command("list")
def accessor_list(home: Home = None, as_json: AsJson = False) -> None:
    """List registered accessors."""
    with open_vault(home) as vault:
        rows = vault.store.accessors()
    data = [
        {"accessor": a.accessor, "org": a.org, "role": a.role, "active": a.active} for a in rows
    ]

    def render() -> None:
        table = Table("accessor", "org", "role", "active")
        for row in data:
            table.add_row(*(str(v) for v in row.values()))
        out.print(table)

    emit(data, as_json, render)


@app.command()
def put(
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    subject: Subject,
    accessor: As,
    field: Annotated[list[str], typer.Option("--field", help="NAME=VALUE (repeatable).")],
    purpose: Purpose = None,
    case: CaseOpt = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Store a record about a subject."""
    values = _pairs(field, "--field")
    with open_vault(home) as vault:
        record_id = vault.put(_access(vault, accessor, purpose, case), collection, subject, values)
    emit({"record_id": record_id}, as_json, lambda: out.print(f"stored record {record_id}"))


@app.command()
def get(
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    subject: Subject,
    accessor: As,
    purpose: Purpose = None,
    case: CaseOpt = None,
    fields: FieldsOpt = None,
    break_glass: BreakGlass = False,
    justification: Justification = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Read a subject's records (with a purpose; recorded before anything is shown)."""
    with open_vault(home) as vault:
        access = _access(vault, accessor, purpose, case, break_glass, justification)
        records = vault.get(access, collection, subject, _split_fields(fields))
    emit([r.as_dict() for r in records], as_json, lambda: _records_table(records))


@app.command()
def find(
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    field: Annotated[str, typer.Option("--field", help="NAME=VALUE: exact match, indexed field.")],
    accessor: As,
    purpose: Purpose = None,
    case: CaseOpt = None,
    fields: FieldsOpt = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Find records by the exact value of an indexed field (no wildcards, no prefixes).

    Large answers (forensics.fingerprint_min_rows) carry the reader's fingerprint, like exports.
    """
    ((name, value),) = _pairs([field], "--field").items()
    with open_vault(home) as vault:
        access = _access(vault, accessor, purpose, case)
        records = vault.find(access, collection, name, value, _split_fields(fields))
        if len(records) >= vault.settings.fingerprint_min_rows:
            from custodes.forensics import fingerprint_read  # loads only for bulk reads

            records = fingerprint_read(vault, access, collection, records)
    emit([r.as_dict() for r in records], as_json, lambda: _records_table(records))


@app.command()
def export(
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    accessor: As,
    output: Annotated[Path, typer.Option("--out", help="Write JSON lines here (new file).")],
    purpose: Purpose = None,
    case: CaseOpt = None,
    fields: FieldsOpt = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Export a collection to a JSON-lines file (a bulk, audited, fingerprinted action)."""
    from custodes.forensics import export_fingerprinted  # forensics loads only for exports

    if output.exists():
        raise InputError(f"{output} exists; exports never overwrite a file")
    with open_vault(home) as vault:
        access = _access(vault, accessor, purpose, case)
        done = export_fingerprinted(vault, access, collection, _split_fields(fields))
    with output.open("x", encoding="utf-8") as handle:
        for row in done.rows:
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    # The canary count stays off the screen: the recipient must not learn how many rows are
    # synthetic. The registry and the ledger hold it.
    emit(
        {"records": len(done.records), "file": str(output), "export_id": done.export_id},
        as_json,
        lambda: out.print(
            f"exported {len(done.records)} records to {output} (export {done.export_id}, "
            "fingerprinted)"
        ),
    )


@app.command()
def shred(
    subject: Subject,
    accessor: As,
    purpose: Purpose = None,
    case: CaseOpt = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Erase a subject: delete their records and destroy their data key (irreversible)."""
    with open_vault(home) as vault:
        deleted = vault.shred(_access(vault, accessor, purpose, case), subject)
    emit(
        {"records_deleted": deleted, "key_destroyed": True},
        as_json,
        lambda: out.print(f"shredded: {deleted} records deleted, data key destroyed"),
    )


@case_app.command("open")
def case_open(
    accessor: As,
    purpose: Annotated[str, typer.Option("--purpose", help="The case's purpose.")],
    subject: Annotated[list[str], typer.Option("--subject", help="ID number (repeatable).")],
    assign: Annotated[
        list[str] | None, typer.Option("--assign", help="Assignee (default: you).")
    ] = None,
    days: Annotated[int | None, typer.Option(help="Expire after this many days.")] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Open a case naming its subjects; it needs approval where policy says so."""
    if days is not None and days <= 0:
        raise InputError("--days must be a positive number of days")
    with open_vault(home) as vault:
        access = _access(vault, accessor, purpose)
        ttl = timedelta(days=days) if days else None
        case = vault.open_case(access, subject, assigned=assign or (), ttl=ttl)
    _show_case(case, as_json)


@case_app.command("approve")
def case_approve(
    case_id: Annotated[str, typer.Argument(metavar="CASE")],
    accessor: As,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Approve a case (by a different person holding the approving role)."""
    with open_vault(home) as vault:
        case = vault.approve_case(_access(vault, accessor, None), case_id)
    _show_case(case, as_json)


@case_app.command("close")
def case_close(
    case_id: Annotated[str, typer.Argument(metavar="CASE")],
    accessor: As,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Close a case; reads under it are refused from now on."""
    with open_vault(home) as vault:
        case = vault.close_case(_access(vault, accessor, None), case_id)
    _show_case(case, as_json)


@case_app.command("show")
def case_show(
    case_id: Annotated[str, typer.Argument(metavar="CASE")],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Show a case's state."""
    with open_vault(home) as vault:
        case = vault.case(case_id)
    _show_case(case, as_json)


@policy_app.command("explain")
def policy_explain(
    action: Annotated[str, typer.Argument(help="put|get|find|export|shred")],
    collection: Annotated[str | None, typer.Argument(help="Collection name.")] = None,
    accessor: As = "",
    purpose: Purpose = None,
    case: CaseOpt = None,
    subject: Annotated[str | None, typer.Option("--subject", help="ID number.")] = None,
    fields: FieldsOpt = None,
    break_glass: BreakGlass = False,
    justification: Justification = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Explain whether an access would be allowed now, and why (nothing is read)."""
    try:
        act = Action(action)
    except ValueError:
        raise InputError(f"unknown action '{action}' (put, get, find, export, shred)") from None
    if not accessor:
        raise InputError("--as is required")
    with open_vault(home) as vault:
        access = _access(vault, accessor, purpose, case, break_glass, justification)
        decision = vault.explain(access, act, collection, subject, _split_fields(fields))
    data = _decision_dict(decision)

    def render() -> None:
        verdict = "[green]allowed[/green]" if decision.allowed else "[red]denied[/red]"
        out.print(f"{verdict}: {decision.reason}")
        if decision.missing:
            out.print(f"missing: {', '.join(decision.missing)}")

    emit(data, as_json, render)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status (0 ok, 1 error, 2 usage)."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="custodes")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except CustodesError as exc:
        err.print(f"[red]error:[/red] {escape(exc.diagnostics())}", highlight=False)
        return 1
    except OSError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
