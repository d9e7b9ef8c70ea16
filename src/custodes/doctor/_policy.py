"""Checks of the policy and of the watchers: limits on reads, dual control, who reviews alerts.

They say where the policy leaves room for the reported abuses (a duty officer reading any
number of strangers a day, a bulk export nobody approved); they never change it.
"""

from __future__ import annotations

from custodes.doctor._context import Context
from custodes.doctor._model import Finding, Status
from custodes.model import Action
from custodes.policy import Grant, Policy
from custodes.schema import DataClass

__all__ = ["detection", "grants", "oversight"]

_READS = frozenset({Action.GET, Action.FIND})


def _label(grant: Grant) -> str:
    return f"grant {grant.index + 1} ({grant.role} / {grant.purpose})"


def _classes(policy: Policy, grant: Grant) -> list[str]:
    """The data classes other than ``other`` among the fields ``grant`` covers."""
    found: set[str] = set()
    for name, fields in grant.fields.items():
        collection = policy.schema.collections[name]
        found.update(str(collection.fields[f].data_class) for f in fields)
    found.discard(str(DataClass.OTHER))
    return sorted(found)


def grants(ctx: Context) -> list[Finding]:
    """Grants that let one accessor read personal fields of any number of people, export
    without an approved case, or erase without a second person's approval."""
    policy = ctx.policy()
    findings = []
    for grant in policy.grants:
        problem = _grant_problem(policy, grant)
        if problem is not None:
            findings.append(Finding("policy.grants", Status.WARN, *problem))
    glass = [_label(g) for g in policy.grants if g.break_glass]
    summary = f"{len(policy.grants)} grants; deny by default"
    if glass:
        summary += f"; break-glass (always flagged) in {', '.join(glass)}"
    return findings or [Finding("policy.grants", Status.OK, summary)]


def _grant_problem(policy: Policy, grant: Grant) -> tuple[str, str] | None:
    classes = _classes(policy, grant)
    if grant.actions & _READS and classes and not grant.requires_case:
        if not grant.max_subjects_per_day:
            return (
                f"{_label(grant)} lets one accessor read {', '.join(classes)} fields of any "
                "number of people a day without a case: the way a seller pulls strangers' "
                "records.",
                "set max_subjects_per_day, or requires_case = true.",
            )
    if Action.EXPORT in grant.actions and not (grant.requires_case and grant.requires_approval):
        return (
            f"{_label(grant)} exports whole collections without a case approved by a second "
            "person.",
            'set requires_case = true and requires_approval = "<role>".',
        )
    if Action.SHRED in grant.actions and not grant.requires_approval:
        return (
            f"{_label(grant)} erases subjects without a second person's approval.",
            'set requires_case = true and requires_approval = "<role>".',
        )
    return None


def oversight(ctx: Context) -> list[Finding]:
    """Alerts and the dashboard need someone in an oversight role to look at them."""
    roles = ctx.policy().oversight_roles
    if not roles:
        return [
            Finding(
                "policy.oversight",
                Status.WARN,
                "the policy names no oversight role: nobody may review alerts or the ledger "
                "in the dashboard.",
                'add oversight_roles = ["auditor"] to the policy.',
            )
        ]
    auditors = [a for a in ctx.store().accessors() if a.active and a.role in roles]
    if not auditors:
        wanted = sorted(roles)[0]
        return [
            Finding(
                "policy.oversight",
                Status.WARN,
                f"no active accessor holds an oversight role ({', '.join(sorted(roles))}): "
                "misuse alerts go unreviewed.",
                f"custodes accessor add ID --org ORG --role {wanted} (someone outside the "
                "organizations whose staff read records).",
            )
        ]
    return [Finding("policy.oversight", Status.OK, f"{len(auditors)} active oversight accessor(s)")]


def detection(ctx: Context) -> list[Finding]:
    """Misuse is caught as it happens only with streaming detection; canaries catch the rest."""
    from custodes.forensics._registry import planted_canaries  # loads only for this check

    findings = []
    if not ctx.settings.detect_stream:
        findings.append(
            Finding(
                "detect.stream",
                Status.WARN,
                "streaming detection is off: misuse alerts are raised only when someone runs "
                "'custodes detect' over an export of the log.",
                "set detect.stream = true in custodes.toml for the process that serves reads "
                "(custodes serve).",
            )
        )
    else:
        findings.append(Finding("detect.stream", Status.OK, "streaming detection is on"))
    canaries = planted_canaries(ctx.settings.home)
    if not canaries:
        findings.append(
            Finding(
                "forensics.canaries",
                Status.WARN,
                "no canary subjects are planted: a lookup nobody should make, or a leaked "
                "dump, cannot be recognized by canaries.",
                "custodes canary plant (with --org or --accessor for each scope, so that a "
                "touch or a leak names its source).",
            )
        )
    else:
        findings.append(
            Finding("forensics.canaries", Status.OK, f"{len(canaries)} canary subjects planted")
        )
    return findings
