"""``custodes doctor``: check a deployment for unsafe settings before it holds real data.

The reported failures this guards against are settings, not code: a police database left in a
public cloud without a password or encryption, keys copied along with the data, logs anyone
could edit. Each check reads the vault home and its database and says ``ok``, ``warn`` (safe to
run, not how real data should be held) or ``fail`` (unsafe), with what to do. Nothing is
changed, created or decrypted; no finding quotes a secret or a personal value.

Checks, in the order they are reported:

- ``home.files``: settings, schema and policy writable by their owner only;
- ``keys.files``, ``keys.root``, ``keys.apart``: key files owner-only, the root key not a demo
  key, keys and database not on one volume;
- ``store.files``, ``store.schema``, ``store.guards``, ``store.role``, ``store.durability``,
  ``store.tls``, ``store.password``: the database's files, append-only triggers, the power of
  the role custodes connects as, durability of commits, and how PostgreSQL is reached;
- ``ledger.checkpoint``, ``ledger.witnesses``: the stored log still has the root the log
  signed, checkpoints are being signed, and an independent witness cosigns them;
- ``policy.grants``, ``policy.oversight``: grants that leave room for the reported abuses, and
  someone to review alerts;
- ``detect.stream``, ``forensics.canaries``: misuse is detected as it happens, canaries are
  planted;
- ``api.*``: OIDC keys over TLS, credential lifetimes, request limits.
"""

from __future__ import annotations

from collections.abc import Callable

from custodes.config import Settings
from custodes.doctor import _api, _files, _ledger, _policy, _store
from custodes.doctor._context import Context, Unavailable
from custodes.doctor._model import Finding, Report, Status
from custodes.errors import CustodesError

__all__ = ["CHECKS", "Finding", "Report", "Status", "run_doctor"]

Check = Callable[[Context], list[Finding]]

# (name of what the check looks at, the check): the name heads a finding when it cannot run.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("home.files", _files.home_files),
    ("keys.files", _files.key_files),
    ("keys.root", _files.demo_key),
    ("keys.apart", _files.keys_apart),
    ("store.files", _files.store_files),
    ("store.guards", _store.guards),
    ("store.durability", _store.durability),
    ("store.tls", _store.pg_connection),
    ("ledger.checkpoint", _ledger.checkpoints),
    ("ledger.witnesses", _ledger.witnesses),
    ("policy.grants", _policy.grants),
    ("policy.oversight", _policy.oversight),
    ("detect.stream", _policy.detection),
    ("api.settings", _api.api),
)


def run_doctor(settings: Settings) -> Report:
    """Run every check over the vault home ``settings`` describe and return the findings.

    A check that cannot run (its database or policy cannot be opened, a file cannot be read)
    becomes a ``fail`` finding saying why, once per cause; it never raises.
    """
    ctx = Context(settings=settings)
    findings: list[Finding] = []
    reported: set[str] = set()
    try:
        for name, check in CHECKS:
            findings.extend(_run(name, check, ctx, reported))
    finally:
        ctx.close()
    return Report(home=settings.home, findings=tuple(findings))


def _run(name: str, check: Check, ctx: Context, reported: set[str]) -> list[Finding]:
    try:
        return check(ctx)
    except Unavailable as exc:
        if exc.what in reported:
            return []
        reported.add(exc.what)
        return [Finding(name, Status.FAIL, f"cannot check {exc.what}: {exc.reason}")]
    except CustodesError as exc:
        return [Finding(name, Status.FAIL, "cannot check: " + " ".join(exc.diagnostics().split()))]
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        return [Finding(name, Status.FAIL, f"cannot check: cannot read{where}: {exc.strerror}")]
