"""Server-rendered pages: one Jinja2 environment, the static files, and safe page responses.

Every page is rendered here so that every page gets the same headers: no caching (pages show
personal access history), a Content-Security-Policy that allows only this origin's scripts and
styles (no inline script, no CDN, nothing framed), and no referrer leaving the site.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.staticfiles import StaticFiles

__all__ = ["PAGE_HEADERS", "STATIC_PATH", "page", "static_files", "templates"]

STATIC_PATH = "/static"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@cache
def templates() -> Environment:
    """Return the template environment (autoescaping every ``.html`` template)."""
    env = Environment(
        loader=PackageLoader("custodes.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = STATIC_PATH
    return env


def page(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render template ``name`` with ``context`` into a response carrying ``PAGE_HEADERS``."""
    html = templates().get_template(name).render(request=request, **context)
    return HTMLResponse(html, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def static_files() -> StaticFiles:
    """The app's static files (scripts, styles), served under ``STATIC_PATH``."""
    return StaticFiles(packages=[("custodes.web", "static")])
