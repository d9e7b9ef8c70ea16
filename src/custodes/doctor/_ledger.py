"""Checks of the ledger: the stored log still matches what the log signed, and witnesses watch.

These are the quick checks (O(log n) stored hashes); ``custodes ledger verify`` recomputes the
whole tree from the entries and is what to run when one of them fails.
"""

from __future__ import annotations

import base64

from custodes.doctor._context import Context
from custodes.doctor._model import Finding, Status
from custodes.errors import ConfigError, SignatureError, VerificationError
from custodes.ledger import CheckpointLog, Ledger, SignedCheckpoint, witnessed_checkpoint

__all__ = ["checkpoints", "witnesses"]

_VERIFY = "run 'custodes ledger verify' to find the first altered entry."


def _latest(ctx: Context) -> tuple[CheckpointLog, SignedCheckpoint | None]:
    log = CheckpointLog.open(ctx.settings)
    return log, log.latest()


def checkpoints(ctx: Context) -> list[Finding]:
    """The newest signed checkpoint verifies and the stored log still has its root."""
    try:
        _, latest = _latest(ctx)
    except (ConfigError, VerificationError) as exc:
        return [Finding("ledger.checkpoint", Status.FAIL, exc.diagnostics(), _VERIFY)]
    ledger = Ledger(store=ctx.store())
    size = ledger.size()
    if latest is None:
        if size == 0:
            return [Finding("ledger.checkpoint", Status.OK, "the log is empty")]
        return [
            Finding(
                "ledger.checkpoint",
                Status.WARN,
                f"the log has {size} entries but no signed checkpoint.",
                "run 'custodes ledger checkpoint'; if signing fails, the error says why.",
            )
        ]
    signed = latest.checkpoint
    if signed.size > size:
        return [
            Finding(
                "ledger.checkpoint",
                Status.FAIL,
                f"the log has {size} entries but its checkpoint signed {signed.size}: entries "
                "were removed from the database.",
                _VERIFY,
            )
        ]
    try:
        matches = ledger.root(signed.size) == signed.root
    except VerificationError as exc:
        return [Finding("ledger.checkpoint", Status.FAIL, exc.diagnostics(), _VERIFY)]
    if not matches:
        return [
            Finding(
                "ledger.checkpoint",
                Status.FAIL,
                f"the stored log's root at size {signed.size} is not the one the log signed "
                f"(signed {base64.b64encode(signed.root).decode()}): its history was rewritten.",
                _VERIFY,
            )
        ]
    return [_coverage(ctx, size, latest)]


def _coverage(ctx: Context, size: int, latest: SignedCheckpoint) -> Finding:
    behind = size - latest.checkpoint.size
    if behind > 2 * ctx.settings.checkpoint_every:
        return Finding(
            "ledger.checkpoint",
            Status.WARN,
            f"the newest checkpoint ({latest.checkpoint.size} entries, signed "
            f"{latest.signed_at:%Y-%m-%d %H:%M} UTC) is {behind} entries behind the log: "
            "checkpoints are not being signed.",
            "run 'custodes ledger checkpoint' and read the error it reports.",
        )
    return Finding(
        "ledger.checkpoint",
        Status.OK,
        f"the stored log matches the checkpoint signed at {latest.checkpoint.size} entries "
        f"({latest.signed_at:%Y-%m-%d %H:%M} UTC); {behind} newer entries",
    )


def witnesses(ctx: Context) -> list[Finding]:
    """Only an independent witness catches a log that shows different people different
    histories (a split view) or rewrites itself consistently."""
    settings = ctx.settings
    if not settings.witnesses:
        return [
            Finding(
                "ledger.witnesses",
                Status.WARN,
                "no witness is configured: a log that rewrites its history, or shows "
                "different histories to different people, is caught by nobody outside it.",
                "run 'custodes witness' on another machine under other control, publish its "
                "cosignatures, and add its key to ledger.witnesses.",
            )
        ]
    try:
        log, latest = _latest(ctx)
        best = witnessed_checkpoint(
            checkpoints=log, witnesses=settings.witnesses, ledger_dir=settings.ledger_dir
        )
    except (ConfigError, SignatureError, VerificationError) as exc:
        return [Finding("ledger.witnesses", Status.FAIL, exc.diagnostics())]
    if latest is None:
        return [Finding("ledger.witnesses", Status.OK, "witnesses configured; no checkpoint yet")]
    if best is None or not best.witnesses:
        return [
            Finding(
                "ledger.witnesses",
                Status.WARN,
                "no configured witness has cosigned any checkpoint of this log.",
                f"have the witness cosign the latest checkpoint; cosignatures go to "
                f"{settings.ledger_dir / 'cosignatures'}.",
            )
        ]
    return [_witness_lag(ctx, latest, best.checkpoint.size, best.witnesses)]


def _witness_lag(
    ctx: Context, latest: SignedCheckpoint, cosigned: int, names: tuple[str, ...]
) -> Finding:
    behind = latest.checkpoint.size - cosigned
    if behind > 10 * ctx.settings.checkpoint_every:
        return Finding(
            "ledger.witnesses",
            Status.WARN,
            f"the newest cosigned checkpoint ({cosigned} entries) is {behind} entries behind "
            "the newest signed one: the witness has stopped cosigning.",
            "find out why the witness stopped (it refuses and prints both checkpoints when "
            "the log is inconsistent).",
        )
    return Finding(
        "ledger.witnesses",
        Status.OK,
        f"cosigned at {cosigned} entries by {', '.join(names)}",
    )
