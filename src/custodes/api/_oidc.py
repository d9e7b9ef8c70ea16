"""OIDC bearer tokens: JWTs from one configured issuer, checked against its published keys.

Only asymmetric signatures are accepted (RS256, ES256, EdDSA), and the algorithm must be the
one the issuer's key is for: a token that names ``none``, an HMAC algorithm (the classic attack
signs with the issuer's *public* key as the HMAC secret) or an algorithm of another key type is
refused before any signature check. ``iss``, ``aud``, ``exp`` and ``iat`` are required; times are
checked against the service's clock, with a small leeway for clock skew between servers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt

from custodes.clock import Clock, system_clock
from custodes.config import ApiSettings
from custodes.errors import AuthenticationError, ConfigError

__all__ = ["ALLOWED_ALGORITHMS", "OidcVerifier"]

ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
_LEEWAY_SECONDS = 30
_MAX_TOKEN_CHARS = 8192


class OidcVerifier:
    """Checks bearer JWTs of one issuer and returns the accessor id each one names.

    ``jwks`` is an ``https://`` URL (fetched and cached by PyJWT's ``PyJWKClient``) or the path
    of a JWKS file read once at start.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks: str,
        accessor_claim: str = "sub",
        clock: Clock = system_clock,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._claim = accessor_claim
        self._clock = clock
        self._client: jwt.PyJWKClient | None = None
        self._keys: list[jwt.PyJWK] = []
        if jwks.startswith("https://"):
            self._client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=300, timeout=5)
        elif "://" in jwks:
            raise ConfigError(f"api.oidc_jwks must be an https:// URL or a file path: {jwks!r}")
        else:
            self._keys = _read_jwks(Path(jwks))

    @classmethod
    def from_settings(cls, api: ApiSettings, *, clock: Clock = system_clock) -> OidcVerifier | None:
        """Return the verifier ``api`` configures, or ``None`` when OIDC is off.

        Raises:
            ConfigError: the JWKS file is missing or holds no usable key.
        """
        if not (api.oidc_issuer and api.oidc_audience and api.oidc_jwks):
            return None
        return cls(
            issuer=api.oidc_issuer,
            audience=api.oidc_audience,
            jwks=api.oidc_jwks,
            accessor_claim=api.oidc_accessor_claim,
            clock=clock,
        )

    def accessor_id(self, token: str) -> str:
        """Verify ``token`` and return the accessor id its claim names.

        Raises:
            AuthenticationError: malformed, badly signed, of another issuer or audience,
                expired, not yet valid, using a refused algorithm, or without the claim.
        """
        if len(token) > _MAX_TOKEN_CHARS:
            raise AuthenticationError("invalid OIDC token: too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("invalid OIDC token: malformed") from exc
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise AuthenticationError(
                f"invalid OIDC token: algorithm {str(alg)[:20]!r} is not accepted "
                f"({', '.join(sorted(ALLOWED_ALGORITHMS))})"
            )
        key = self._key(header.get("kid"), alg)
        claims = self._decode(token, key, alg)
        self._check_times(claims)
        accessor = claims.get(self._claim)
        if not isinstance(accessor, str) or not accessor:
            raise AuthenticationError(f"invalid OIDC token: no '{self._claim}' claim")
        return accessor

    def _key(self, kid: object, alg: str) -> jwt.PyJWK:
        if self._client is not None:
            if not isinstance(kid, str):
                raise AuthenticationError("invalid OIDC token: no key id ('kid')")
            try:
                key = self._client.get_signing_key(kid)
            except jwt.PyJWTError as exc:
                raise AuthenticationError(
                    "invalid OIDC token: no issuer key with its key id"
                ) from exc
        else:
            candidates = [k for k in self._keys if kid is None or k.key_id == kid]
            if len(candidates) != 1:
                raise AuthenticationError("invalid OIDC token: no issuer key with its key id")
            key = candidates[0]
        if key.algorithm_name != alg:
            # The key decides the algorithm; a token cannot pick another one for it.
            raise AuthenticationError("invalid OIDC token: algorithm does not match the key")
        return key

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "require": ["exp", "iat", "iss", "aud"],
                    # Times are checked against the service's clock below.
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"invalid OIDC token: {exc}") from exc
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock().timestamp()
        exp, iat = _seconds(claims.get("exp")), _seconds(claims.get("iat"))
        nbf = _seconds(claims.get("nbf", iat))
        if now >= exp + _LEEWAY_SECONDS:
            raise AuthenticationError("invalid OIDC token: expired")
        if max(iat, nbf) > now + _LEEWAY_SECONDS:
            raise AuthenticationError("invalid OIDC token: not valid yet")


def _seconds(value: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise AuthenticationError("invalid OIDC token: exp, iat and nbf must be numbers")
    return float(value)


def _read_jwks(path: Path) -> list[jwt.PyJWK]:
    try:
        keys = jwt.PyJWKSet.from_json(path.read_text(encoding="utf-8")).keys
    except OSError as exc:
        raise ConfigError(f"api.oidc_jwks: cannot read {path}: {exc.strerror}") from exc
    except (jwt.PyJWTError, json.JSONDecodeError, AttributeError) as exc:
        raise ConfigError(f"api.oidc_jwks: {path} is not a usable JWK set: {exc}") from exc
    usable = [k for k in keys if k.algorithm_name in ALLOWED_ALGORITHMS]
    if not usable:
        raise ConfigError(f"api.oidc_jwks: {path} holds no RS256, ES256 or EdDSA key")
    return usable
