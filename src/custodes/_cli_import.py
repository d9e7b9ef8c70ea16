"""``custodes import COLLECTION FILE``: a bulk load of JSON lines, on every core.

The whole file is read and every record validated first, so bad input anywhere writes nothing;
then ``custodes.bulk.load`` writes it in batches (one ``put_many`` each, one event per record).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from custodes._cli_common import (
    As,
    AsJson,
    CaseOpt,
    Home,
    Purpose,
    emit,
    open_vault,
    out,
    progress_bars,
)
from custodes.bulk import Batch, BulkLoadError, load
from custodes.errors import CustodesError, InputError
from custodes.model import Access
from custodes.vault import Vault

__all__ = ["import_command"]

ImportFile = Annotated[
    Path,
    typer.Argument(
        metavar="FILE",
        help='JSON lines, one record each: {"subject": ID_NUMBER, "fields": {NAME: VALUE, ...}}.',
    ),
]
BatchOpt = Annotated[
    int, typer.Option("--batch", min=1, max=100_000, help="Records per transaction.")
]
WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", min=1, max=32, help="Worker processes (default: one per core)."),
]


def import_command(
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    source: ImportFile,
    accessor: As,
    purpose: Purpose = None,
    case: CaseOpt = None,
    batch: BatchOpt = 5_000,
    workers: WorkersOpt = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Import records from a JSON-lines file (all validated first; one event per record)."""
    with open_vault(home) as vault:
        numbers, items = read_items(vault, collection, source)
        access = Access(vault.principal(accessor), purpose, case)
        settings = vault.settings
    batches: list[Batch] = [
        (collection, items[start : start + batch]) for start in range(0, len(items), batch)
    ]
    started = time.perf_counter()
    with progress_bars(9, hidden=as_json) as bars:
        task = bars.add_task("importing", total=len(items))
        try:
            report = load(
                settings,
                access,
                batches,
                workers=workers,
                on_batch=lambda _, ids: bars.advance(task, len(ids)),
            )
        except BulkLoadError as exc:
            raise CustodesError(_failure(exc, batch, numbers)) from exc
    seconds = time.perf_counter() - started
    result = {
        "collection": collection,
        "records": report.records,
        "batches": report.batches,
        "workers": report.workers,
        "seconds": round(seconds, 2),
    }
    emit(
        result,
        as_json,
        lambda: out.print(
            f"imported {report.records:,} records into {collection} in {report.batches:,} "
            f"transaction{'s' if report.batches > 1 else ''} ({report.workers} "
            f"process{'es' if report.workers > 1 else ''}, {seconds:.1f} s); "
            "each record's write is in the ledger"
        ),
    )


def read_items(
    vault: Vault, collection: str, source: Path
) -> tuple[list[int], list[tuple[str, dict[str, Any]]]]:
    """Parse and validate every line of ``source``; return each record's line number and the
    records (blank lines are skipped). The first bad line is named by number.

    Raises:
        InputError: unreadable file, a line that is not a record object, an unknown collection,
            or a record the schema refuses (the message names the line, never its values).
    """
    coll = vault.schema.collection(collection)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {source}: {exc}") from exc
    numbers, items = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        subject, fields = _record(line, number)
        try:
            vault.schema.normalize_subject(subject)
            coll.validate(fields, max_value_bytes=vault.settings.max_value_bytes)
        except InputError as exc:
            raise InputError(f"{source}, line {number}: {exc.diagnostics()}") from exc
        numbers.append(number)
        items.append((subject, fields))
    if not items:
        raise InputError(f"{source} holds no records")
    return numbers, items


def _record(line: str, number: int) -> tuple[str, dict[str, Any]]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"line {number}: not JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(data, dict) or set(data) != {"subject", "fields"}:
        raise InputError(f'line {number}: expected an object with "subject" and "fields" only')
    subject, fields = data["subject"], data["fields"]
    if not isinstance(subject, str) or not isinstance(fields, dict):
        raise InputError(f'line {number}: "subject" must be text and "fields" an object')
    return subject, fields


def _failure(exc: BulkLoadError, batch: int, numbers: list[int]) -> str:
    """Say which lines' records are in the vault after a failed load (batches are whole)."""
    spans = [_span(numbers, position, batch) for position in exc.committed]
    done = f"the records of lines {', '.join(spans)} were imported" if spans else "nothing was"
    if not spans:
        done += " imported"
    return (
        f"import stopped: the records of lines {_span(numbers, exc.failed, batch)} were refused "
        f"and not written: {exc.reason}; {done}"
    )


def _span(numbers: list[int], position: int, batch: int) -> str:
    part = numbers[position * batch : (position + 1) * batch]
    return f"{part[0]}-{part[-1]}"
