"""Checks of the HTTP service's settings: where bearer tokens' keys come from, how long
credentials live, how large a request may be."""

from __future__ import annotations

from urllib.parse import urlsplit

from custodes.doctor._context import Context
from custodes.doctor._model import Finding, Status

__all__ = ["api"]

_MAX_TOKEN_DAYS = 365
_MAX_SESSION_MINUTES = 12 * 60
_MAX_BODY_BYTES = 64 * 1024 * 1024


def api(ctx: Context) -> list[Finding]:
    """OIDC keys fetched over TLS; credentials that expire; bounded request bodies."""
    findings = _oidc(ctx)
    settings = ctx.settings.api
    long_lived = []
    if settings.token_days > _MAX_TOKEN_DAYS:
        long_lived.append(f"api.token_days = {settings.token_days}")
    if settings.session_minutes > _MAX_SESSION_MINUTES:
        long_lived.append(f"api.session_minutes = {settings.session_minutes}")
    if long_lived:
        findings.append(
            Finding(
                "api.lifetimes",
                Status.WARN,
                "credentials live long: " + ", ".join(long_lived) + ". A token copied once "
                "keeps working until it expires or is revoked.",
                f"keep API tokens under {_MAX_TOKEN_DAYS} days and sign-ins under 12 hours.",
            )
        )
    if settings.max_body_bytes > _MAX_BODY_BYTES:
        findings.append(
            Finding(
                "api.limits",
                Status.WARN,
                f"api.max_body_bytes = {settings.max_body_bytes}: one request may make the "
                "server read that much.",
                "keep it at the default (1 MiB) unless a client needs more.",
            )
        )
    return findings or [Finding("api.settings", Status.OK, "credential lifetimes and limits")]


def _oidc(ctx: Context) -> list[Finding]:
    settings = ctx.settings.api
    if settings.oidc_issuer is None:
        return []
    jwks = settings.oidc_jwks or ""
    scheme = urlsplit(jwks).scheme.lower()
    if scheme and scheme != "https":
        return [
            Finding(
                "api.oidc",
                Status.FAIL,
                f"the OIDC issuer's signing keys are fetched over {scheme}://: anyone on the "
                "path can substitute keys and sign tokens for any accessor.",
                "use the issuer's https:// JWKS URL (or a JWKS file you keep up to date).",
            )
        ]
    if urlsplit(settings.oidc_issuer).scheme.lower() != "https":
        return [
            Finding(
                "api.oidc",
                Status.WARN,
                "the OIDC issuer is not an https:// URL; OIDC requires issuers to use TLS.",
                "check api.oidc_issuer against the issuer's discovery document.",
            )
        ]
    return [Finding("api.oidc", Status.OK, "OIDC keys come from an https:// JWKS or a file")]
