"""What the OpenAPI document says beyond the routes' own declarations: security and vocabulary.

Every route that needs credentials declares a 401 response (it can answer one), and no public
route does; the route-auth tests hold every route to that. So rather than each route repeating
its security in its decorator, the document is completed once: the security schemes go into its
components, and every operation that declares 401 says it needs one of them. Routes added later
(alerts, pages that join the document) are covered without anyone remembering to.

The schemes are not FastAPI security dependencies: those would cost every request a few more
dependency steps, and :func:`custodes.api.deps.authenticate` reads the headers itself.

The vocabulary is this vault's: the ``collection`` path parameter lists the schema's
collections and every request body's ``purpose`` lists the policy's purposes, so the document
describes the deployment it is served by (the code still checks both: an unknown collection is
404, an undeclared purpose a recorded 403).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI

from custodes.api._guard import SESSION_COOKIE

__all__ = ["SECURITY", "SECURITY_SCHEMES", "complete_document"]

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token ('custodes token create', 'cst_...') or an OIDC access "
        "token (a JWT) from the configured issuer.",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "The dashboard sign-in cookie; state-changing requests must be same-origin.",
    },
}
SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"session": []}]
_COMPONENTS = "#/components/schemas/"


def complete_document(app: FastAPI, *, collections: Sequence[str], purposes: Sequence[str]) -> None:
    """Make ``app.openapi()`` declare the security schemes, mark authenticated routes and name
    this vault's collections and purposes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()  # FastAPI caches it (and rebuilds it when routes change)
        schema.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                _complete_operation(schema, operation, collections, purposes)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _complete_operation(
    schema: dict[str, Any],
    operation: dict[str, Any],
    collections: Sequence[str],
    purposes: Sequence[str],
) -> None:
    if "401" in operation.get("responses", {}):
        operation["security"] = SECURITY
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "path" and parameter.get("name") == "collection":
            parameter["schema"]["enum"] = list(collections)
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = body.get("schema", {}).get("$ref", "")
    if ref.startswith(_COMPONENTS):
        model = schema["components"]["schemas"][ref.removeprefix(_COMPONENTS)]
        purpose = model.get("properties", {}).get("purpose")
        if purpose is not None and purpose.get("type") == "string":
            purpose["enum"] = list(purposes)
