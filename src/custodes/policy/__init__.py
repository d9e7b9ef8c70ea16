"""Purposes, grants, cases and decisions: who may see what, why, and under which case.

A policy file declares purposes and the grants that let a role act on collections and fields for
a purpose. Nothing is allowed unless a grant says so; every decision carries a reason naming the
grant used or the condition that was missing. Cases explain reads of the subjects they name and
may need a second person's approval (dual control) before they do.
"""

from __future__ import annotations

from custodes.policy._cases import add_subjects, approve_case, close_case, new_case_id, open_case
from custodes.policy._engine import Policy
from custodes.policy._model import GRANT_ACTIONS, Grant, Hours

__all__ = [
    "GRANT_ACTIONS",
    "Grant",
    "Hours",
    "Policy",
    "add_subjects",
    "approve_case",
    "close_case",
    "new_case_id",
    "open_case",
]
