"""Server-rendered pages over the vault: the transparency portal (``/portal``) for data
subjects and the auditor dashboard (``/dashboard``); scripts and styles under ``/static``.

No build step and nothing fetched from elsewhere: Jinja2 templates and a few hand-written
ES modules served by the app itself. ``create_app`` includes the routers and mounts the static
files; the portal's proof bundles can also be built and checked from Python.
"""

from __future__ import annotations

from custodes.web._dashboard import dashboard_router
from custodes.web._pages import STATIC_PATH, static_files
from custodes.web._portal import PORTAL_COOKIE, issue_portal_code, portal_router
from custodes.web._proofs import (
    BUNDLE_FORMAT,
    WitnessedCheckpoint,
    check_bundle,
    key_fingerprint,
    proof_bundle,
    witnessed_checkpoint,
)

__all__ = [
    "BUNDLE_FORMAT",
    "PORTAL_COOKIE",
    "STATIC_PATH",
    "WitnessedCheckpoint",
    "check_bundle",
    "dashboard_router",
    "issue_portal_code",
    "key_fingerprint",
    "portal_router",
    "proof_bundle",
    "static_files",
    "witnessed_checkpoint",
]
