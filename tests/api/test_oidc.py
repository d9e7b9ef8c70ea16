"""OIDC bearer JWTs: a valid token of the configured issuer works; every classic forgery and
every wrong claim is 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from custodes.api._oidc import OidcVerifier
from custodes.errors import ConfigError
from custodes.model import Accessor
from tests.api.conftest import PEOPLE, Api, build_api, store_settings_for
from tests.helpers import START

ISSUER = "https://idp.example.org/realms/police"
AUDIENCE = "custodes-api"
NOW = int(START.timestamp())

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
ROGUE_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEYS: dict[str, tuple[Any, str]] = {
    "rsa-1": (RSA_KEY, "RS256"),
    "ec-1": (EC_KEY, "ES256"),
    "ed-1": (ED_KEY, "EdDSA"),
}


def _jwk(kid: str, key: Any, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    public = json.loads(algorithm.to_jwk(key.public_key()))
    return {**public, "kid": kid, "use": "sig", "alg": alg}


def claims(**overrides: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "duty-1", "iat": NOW, "exp": NOW + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def token(kid: str = "rsa-1", key: Any = None, alg: str | None = None, **overrides: Any) -> str:
    own_key, own_alg = KEYS[kid]
    return jwt.encode(
        claims(**overrides), key or own_key, algorithm=alg or own_alg, headers={"kid": kid}
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], body: dict[str, Any], signature: bytes = b"") -> str:
    """A JWT assembled by hand, as an attacker would."""
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(body).encode())
    return head + "." + _b64(signature)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def oidc_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    base = tmp_path_factory.mktemp("oidc")
    jwks = base / "jwks.json"
    jwks.write_text(json.dumps({"keys": [_jwk(k, key, alg) for k, (key, alg) in KEYS.items()]}))
    toml = (
        "[api]\nrate_per_second = 100000\nrate_burst = 100000\n"
        f'oidc_issuer = "{ISSUER}"\noidc_audience = "{AUDIENCE}"\noidc_jwks = "{jwks}"\n'
    )
    home = base / "home"
    store = store_settings_for(str(request.param), home, request)
    for built in build_api(home, store, api_toml=toml):
        built.vault.add_accessor(Accessor("gone-1", "police-1", "duty_officer", active=False))
        yield built


def _read(api: Api, bearer: str) -> Any:
    body = {"subject": PEOPLE[0].id_number, "purpose": "identity_check"}
    return api.client.post(
        "/v1/records/identity/get", json=body, headers={"Authorization": f"Bearer {bearer}"}
    )


@pytest.mark.parametrize("kid", sorted(KEYS))
def test_a_valid_token_of_each_algorithm_works(oidc_api: Api, kid: str) -> None:
    response = _read(oidc_api, token(kid))
    assert response.status_code == 200, response.text
    assert oidc_api.events()[-1].accessor == "duty-1"


def _rsa_public_pem() -> bytes:
    return RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _hs256_with_the_public_key() -> str:
    """The algorithm-confusion attack: HMAC keyed with the issuer's public key."""
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims()).encode())
    mac = hmac.new(_rsa_public_pem(), head.encode(), hashlib.sha256).digest()
    return head + "." + _b64(mac)


def _tampered() -> str:
    head, _, signature = token().split(".")
    return head + "." + _b64(json.dumps(claims(sub="dir-1")).encode()) + "." + signature


FORGERIES = {
    "wrong issuer": lambda: token(iss="https://evil.example.org/"),
    "wrong audience": lambda: token(aud="another-api"),
    "expired": lambda: token(iat=NOW - 3600, exp=NOW - 600),
    "issued in the future": lambda: token(iat=NOW + 3600, exp=NOW + 7200),
    "not valid yet": lambda: token(nbf=NOW + 3600),
    "no exp": lambda: token(exp=None),
    "no iat": lambda: token(iat=None),
    "no aud": lambda: token(aud=None),
    "no iss": lambda: token(iss=None),
    "alg none": lambda: unsigned({"alg": "none", "typ": "JWT"}, claims()),
    "alg none with a kid": lambda: unsigned({"alg": "none", "kid": "rsa-1"}, claims()),
    "HS256 keyed with the public key": _hs256_with_the_public_key,
    "signed by another key": lambda: token(key=ROGUE_RSA),
    "another key's algorithm": lambda: token("ec-1", key=RSA_KEY, alg="RS256"),
    "unknown key id": lambda: jwt.encode(
        claims(), RSA_KEY, algorithm="RS256", headers={"kid": "nope"}
    ),
    "payload changed after signing": _tampered,
    "unknown accessor": lambda: token(sub="nobody-9"),
    "deactivated accessor": lambda: token(sub="gone-1"),
    "no accessor claim": lambda: token(sub=None),
    "not a JWT": lambda: "not.a.jwt",
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_or_wrong_tokens_are_401(oidc_api: Api, name: str) -> None:
    before = oidc_api.vault.ledger.size()
    response = _read(oidc_api, FORGERIES[name]())
    assert response.status_code == 401, (name, response.text)
    assert response.json()["error"]["code"] == "unauthenticated"
    assert oidc_api.vault.ledger.size() == before


def test_without_oidc_settings_a_jwt_is_not_a_credential(sqlite_api: Api) -> None:
    response = _read(sqlite_api, token())
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "unrecognized bearer token"


def test_the_jwks_must_be_https_or_a_usable_file(tmp_path: Path) -> None:
    for jwks in ("http://idp.example.org/jwks", str(tmp_path / "missing.json")):
        with pytest.raises(ConfigError):
            OidcVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks)
    symmetric = tmp_path / "hs.json"
    symmetric.write_text(json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}))
    with pytest.raises(ConfigError, match="no RS256, ES256 or EdDSA key"):
        OidcVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=str(symmetric))
