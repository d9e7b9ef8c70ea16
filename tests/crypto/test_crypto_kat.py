"""Known answers: key derivation and blind-index tokens can never change silently.

Each value is computed twice: independently here (stdlib hmac/hashlib and cryptography's HKDF,
straight from the documented construction) and pinned as hex, in case both sides drift.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from custodes.crypto import BlindIndex, LocalKeyFile

SECRET = bytes(range(32))
TENANT = "acme"
KEK_HEX = "7f2cb0492b8c2dcb61776d49f54621d6ac6ceee099911fc1572a6b22cbd11c38"
INDEX_KEY_HEX = "bc3dc851a260a919a4c84641f7f7ab87caa35fe6e854ec358b2bbfed5555d950"
TOKEN_HEX = "bee5f142a3d58dd5a22d2f150bf97c6a9507cbd4775a98ff02e25a967f51bdbc"
SUBJECT_REF_HEX = "a5856837903d56411ed47f90af4af60eb3aea70530d8b041087d1c08335df129"
PSEUDONYM = "c9aa4db22d7bd21405af3a8b3e7a3841"


def _key_file(tmp_path: Path) -> LocalKeyFile:
    path = tmp_path / "root.key"
    body = {
        "format": "custodes-root-key",
        "version": 1,
        "key_id": "00112233aabbccdd",
        "secret": base64.b64encode(SECRET).decode(),
    }
    path.write_text(json.dumps(body))
    path.chmod(0o600)
    return LocalKeyFile.open(path)


def _hkdf(label: bytes) -> bytes:
    info = b"custodes/v1/" + label + b"/" + TENANT.encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(SECRET)


def _lp(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def test_hkdf_derivation_known_answer(tmp_path: Path) -> None:
    keys = _key_file(tmp_path).root_keys(TENANT)
    assert keys.kek == _hkdf(b"kek")
    assert keys.index_key == _hkdf(b"index")
    assert keys.pseudonym_key == _hkdf(b"pseudonym")
    assert keys.audit_key == _hkdf(b"audit")
    assert keys.kek.hex() == KEK_HEX
    assert keys.index_key.hex() == INDEX_KEY_HEX
    assert keys.key_id == "00112233aabbccdd"


def test_blind_index_known_answer(tmp_path: Path) -> None:
    keys = _key_file(tmp_path).root_keys(TENANT)
    blind = BlindIndex(tenant=TENANT, index_key=keys.index_key, pseudonym_key=keys.pseudonym_key)
    token = blind.token("people", "phone", "+8613800138000")
    message = _lp(b"field", b"acme", b"people", b"phone", b"+8613800138000")
    assert token == hmac.new(_hkdf(b"index"), message, hashlib.sha256).digest()
    assert token.hex() == TOKEN_HEX
    ref = blind.subject_ref("11010519491231002X")
    message = _lp(b"subject", b"acme", b"11010519491231002X")
    assert ref == hmac.new(_hkdf(b"index"), message, hashlib.sha256).digest()
    assert ref.hex() == SUBJECT_REF_HEX
    pseudonym = blind.pseudonym("11010519491231002X")
    message = _lp(b"pseudonym", b"acme", ref)
    assert pseudonym == hmac.new(_hkdf(b"pseudonym"), message, hashlib.sha256).digest()[:16].hex()
    assert pseudonym == PSEUDONYM
