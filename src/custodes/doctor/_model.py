"""What ``custodes doctor`` reports: findings, each a check's verdict with what to do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = ["Finding", "Report", "Status"]


class Status(StrEnum):
    """How a check came out, from good to bad (the order is the severity)."""

    OK = "ok"
    WARN = "warn"  # safe to run, not how real data should be held
    FAIL = "fail"  # unsafe: fix before the vault holds real data

    @property
    def rank(self) -> int:
        """0 for ok, 1 for warn, 2 for fail."""
        return (Status.OK, Status.WARN, Status.FAIL).index(self)


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's verdict. ``message`` and ``fix`` never quote a secret or a personal value."""

    check: str
    status: Status
    message: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the finding as a JSON-ready object."""
        return {
            "check": self.check,
            "status": str(self.status),
            "message": self.message,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """Every finding of one run over the vault home ``home``, in check order."""

    home: Path
    findings: tuple[Finding, ...]

    @property
    def worst(self) -> Status:
        """The most severe status among the findings (``ok`` if there are none)."""
        return max((f.status for f in self.findings), key=lambda s: s.rank, default=Status.OK)

    def count(self, status: Status) -> int:
        """How many findings have ``status``."""
        return sum(1 for f in self.findings if f.status is status)

    def as_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready object (what ``--json`` prints)."""
        return {
            "home": str(self.home),
            "worst": str(self.worst),
            "counts": {str(s): self.count(s) for s in Status},
            "findings": [f.as_dict() for f in self.findings],
        }
