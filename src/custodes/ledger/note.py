"""Signed notes, checkpoints and witness cosignatures with Ed25519.

Follows C2SP ``signed-note`` (Ed25519 signature type 0x01, vkeys), ``tlog-checkpoint`` (origin,
size and base64 root hash, one per line) and ``tlog-cosignature`` v1 (signature type 0x04: a
timestamped Ed25519 signature over ``"cosignature/v1\\ntime <T>\\n" + checkpoint body``).

A note is its text (ending in a newline), a blank line, then signature lines
``"— <key name> <base64(key ID || signature)>\\n"``. :func:`open_note` ignores lines from keys it
does not know, rejects the note if a known key's signature is bad, and requires at least one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from custodes.errors import InputError, SignatureError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "Checkpoint",
    "NoteSigner",
    "WitnessSigner",
    "decode_vkey",
    "encode_vkey",
    "key_id",
    "open_note",
    "verify_cosignature",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_MAX_SIGNATURES = 100
_MAX_TIMESTAMP = 2**63 - 1
_MAX_TREE_SIZE = 2**64 - 1
_SIG_PREFIX = "— "
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_KEY_ID_SIZE = 4
_TIMESTAMP_SIZE = 8
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


# --- names, key IDs and vkeys -----------------------------------------------------------------


def _name_problem(name: str) -> str | None:
    if not name:
        return "key name is empty"
    if "+" in name or any(ch.isspace() for ch in name):
        return f"key name {name!r} contains a space or '+'"
    if any(ord(ch) < 0x20 for ch in name):
        return f"key name {name!r} contains a control character"
    return None


def _key_id(name: str, alg: int, public_key: bytes) -> bytes:
    material = name.encode() + b"\n" + bytes([alg]) + public_key
    return hashlib.sha256(material).digest()[:_KEY_ID_SIZE]


def key_id(name: str, public_key: bytes) -> bytes:
    """Return the 4-byte signed-note key ID of an Ed25519 (type 0x01) note key."""
    return _key_id(name, ALG_ED25519, public_key)


def _encode_vkey(name: str, alg: int, public_key: bytes) -> str:
    problem = _name_problem(name)
    if problem:
        raise InputError(problem)
    if len(public_key) != _ED25519_KEY_SIZE:
        raise InputError(f"public key is {len(public_key)} bytes, expected {_ED25519_KEY_SIZE}")
    key = base64.b64encode(bytes([alg]) + public_key).decode()
    return f"{name}+{_key_id(name, alg, public_key).hex()}+{key}"


def encode_vkey(name: str, public_key: bytes) -> str:
    """Return the verifier key string ``name+keyid+base64(0x01 || public key)``.

    Raises InputError if the name is invalid or the key is not 32 bytes.
    """
    return _encode_vkey(name, ALG_ED25519, public_key)


def _b64decode(text: str, what: str) -> bytes:
    """Strict standard base64: rejects stray characters and non-canonical encodings."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode() != text:
        raise SignatureError(f"{what} is not canonical base64")
    return raw


@dataclass(frozen=True)
class _Verifier:
    name: str
    alg: int
    key_id: bytes
    public_key: Ed25519PublicKey


def _parse_vkey(vkey: str) -> _Verifier:
    parts = vkey.split("+", 2)
    if len(parts) != 3 or _name_problem(parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise SignatureError("vkey is not of the form name+<8 hex digits>+<base64 key>")
    name, hex_id, b64 = parts
    raw = _b64decode(b64, "vkey key material")
    if len(raw) != 1 + _ED25519_KEY_SIZE or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE_V1):
        raise SignatureError("vkey is not an Ed25519 (0x01) or cosignature (0x04) key")
    alg, public = raw[0], raw[1:]
    if _key_id(name, alg, public).hex() != hex_id:
        raise SignatureError(f"vkey for {name!r} has a key ID that does not match its key")
    return _Verifier(name, alg, bytes.fromhex(hex_id), Ed25519PublicKey.from_public_bytes(public))


def decode_vkey(vkey: str) -> tuple[str, bytes]:
    """Return ``(name, public key)`` from a vkey of signature type 0x01 or 0x04.

    Raises SignatureError if the vkey is malformed or its key ID does not match its key.
    """
    verifier = _parse_vkey(vkey)
    return verifier.name, verifier.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


# --- note text and signature lines ------------------------------------------------------------


def _text_problem(text: str) -> str | None:
    if not text.endswith("\n"):
        return "note text must end with a newline"
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        return "note text contains a control character other than newline"
    try:
        text.encode()
    except UnicodeEncodeError:
        return "note text is not valid UTF-8"
    return None


def _signature_line(name: str, payload: bytes) -> str:
    return f"{_SIG_PREFIX}{name} {base64.b64encode(payload).decode()}\n"


def _parse_signature_line(line: str) -> tuple[str, bytes]:
    """Split ``— name base64`` (no newline) into the name and the decoded bytes."""
    if not line.startswith(_SIG_PREFIX):
        raise SignatureError("malformed note: a signature line does not start with '— '")
    name, sep, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    problem = _name_problem(name)
    if not sep or problem:
        raise SignatureError(f"malformed note: bad signature line ({problem or 'no signature'})")
    raw = _b64decode(b64, f"signature from {name!r}")
    if len(raw) <= _KEY_ID_SIZE:
        raise SignatureError(f"signature from {name!r} is too short")
    return name, raw


def _split_note(note: str) -> tuple[str, list[str]]:
    problem = _text_problem(note)
    if problem:
        raise SignatureError(f"malformed note: {problem.removeprefix('note text ')}")
    cut = note.rfind("\n\n")
    if cut < 0:
        raise SignatureError("malformed note: no blank line before the signatures")
    # Split on "\n" only: str.splitlines() would also split on U+2028, NEL and friends.
    lines = note[cut + 2 : -1].split("\n")
    if lines == [""]:
        raise SignatureError("malformed note: no signature lines")
    if len(lines) > _MAX_SIGNATURES:
        raise SignatureError(f"note has {len(lines)} signatures, more than {_MAX_SIGNATURES}")
    return note[: cut + 1], lines


def _cosigned_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{body}".encode()


def _check_ed25519(verifier: _Verifier, signature: bytes, message: bytes) -> None:
    try:
        verifier.public_key.verify(signature, message)
    except InvalidSignature as exc:
        raise SignatureError(f"signature from {verifier.name!r} does not verify") from exc


def _verify_cosignature(verifier: _Verifier, body: str, payload: bytes) -> int:
    """Check a 0x04 payload (timestamp || signature) over ``body``; return the timestamp."""
    if len(payload) != _TIMESTAMP_SIZE + _ED25519_SIG_SIZE:
        raise SignatureError(f"cosignature from {verifier.name!r} has the wrong length")
    timestamp = int.from_bytes(payload[:_TIMESTAMP_SIZE], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise SignatureError(f"cosignature from {verifier.name!r} has a timestamp over 2^63-1")
    _check_ed25519(verifier, payload[_TIMESTAMP_SIZE:], _cosigned_message(body, timestamp))
    return timestamp


def _verify(verifier: _Verifier, text: str, payload: bytes) -> None:
    """Check one signature payload (key ID stripped) by a known key over the note text."""
    if verifier.alg == ALG_COSIGNATURE_V1:
        _verify_cosignature(verifier, text, payload)
    else:
        _check_ed25519(verifier, payload, text.encode())


def _known_verifiers(verifiers: Mapping[str, str]) -> dict[str, _Verifier]:
    known: dict[str, _Verifier] = {}
    for name, vkey in verifiers.items():
        verifier = _parse_vkey(vkey)
        if verifier.name != name:
            raise SignatureError(f"verifier {name!r} was given a vkey named {verifier.name!r}")
        known[name] = verifier
    return known


def open_note(note: str, verifiers: Mapping[str, str]) -> tuple[str, list[str]]:
    """Verify a signed note; return its text and the names of the keys that signed it.

    ``verifiers`` maps key names to vkeys (type 0x01 note keys or 0x04 witness keys). Lines from
    unknown keys (name or key ID not matching) are ignored.

    Raises SignatureError if the note or a vkey is malformed, a known key's signature does not
    verify, or no known key signed the note.
    """
    text, lines = _split_note(note)
    known = _known_verifiers(verifiers)
    signed: list[str] = []
    for line in lines:
        name, raw = _parse_signature_line(line)
        verifier = known.get(name)
        if verifier is None or raw[:_KEY_ID_SIZE] != verifier.key_id:
            continue
        _verify(verifier, text, raw[_KEY_ID_SIZE:])
        if name not in signed:
            signed.append(name)
    if not signed:
        raise SignatureError("note is not signed by any known key")
    return text, signed


def verify_cosignature(line: str, checkpoint_body: str, vkey: str) -> int:
    """Verify one cosignature line over a checkpoint body; return its timestamp.

    Raises SignatureError if the line or vkey is malformed, the vkey is not a cosignature key,
    the line is from another key, or the signature does not verify.
    """
    verifier = _parse_vkey(vkey)
    if verifier.alg != ALG_COSIGNATURE_V1:
        raise SignatureError(f"vkey for {verifier.name!r} is not a cosignature (0x04) key")
    problem = _text_problem(checkpoint_body)
    if problem:
        raise SignatureError(f"checkpoint body: {problem.removeprefix('note text ')}")
    name, raw = _parse_signature_line(line.removesuffix("\n"))
    if name != verifier.name or raw[:_KEY_ID_SIZE] != verifier.key_id:
        raise SignatureError(f"cosignature line is not from witness {verifier.name!r}")
    return _verify_cosignature(verifier, checkpoint_body, raw[_KEY_ID_SIZE:])


# --- signers ----------------------------------------------------------------------------------


class _Signer:
    """An Ed25519 key with a name; subclasses fix the signature type."""

    _alg: ClassVar[int]

    def __init__(self, *, name: str, private_key: Ed25519PrivateKey) -> None:
        problem = _name_problem(name)
        if problem:
            raise InputError(problem)
        self._name = name
        self._private_key = private_key
        self._public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = _key_id(name, self._alg, self._public)

    @classmethod
    def generate(cls, name: str) -> Self:
        """Return a signer with a fresh random key.

        Raises InputError if the name is invalid.
        """
        return cls(name=name, private_key=Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, raw: bytes) -> Self:
        """Return a signer from a 32-byte raw Ed25519 private key.

        Raises InputError if the key is not 32 bytes or the name is invalid.
        """
        try:
            key = Ed25519PrivateKey.from_private_bytes(raw)
        except ValueError as exc:
            raise InputError(f"private key for {name!r} is not a 32-byte Ed25519 key") from exc
        return cls(name=name, private_key=key)

    @property
    def name(self) -> str:
        """The key name that appears on signature lines."""
        return self._name

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID."""
        return self._key_id

    @property
    def vkey(self) -> str:
        """The verifier key string to publish."""
        return _encode_vkey(self._name, self._alg, self._public)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self._name!r}, key_id={self._key_id.hex()})"


class NoteSigner(_Signer):
    """Signs notes (such as checkpoints) with an Ed25519 key, signature type 0x01."""

    _alg = ALG_ED25519

    def sign(self, text: str) -> str:
        """Return the signed note: ``text``, a blank line and this key's signature line.

        Raises InputError if the text does not end with a newline, has control characters, or
        has a line that looks like a signature line.
        """
        problem = _text_problem(text)
        if problem:
            raise InputError(problem)
        if any(line.startswith(_SIG_PREFIX) for line in text.split("\n")):
            raise InputError("note text has a line starting with '— ' (looks like a signature)")
        signature = self._private_key.sign(text.encode())
        return f"{text}\n{_signature_line(self._name, self._key_id + signature)}"


class WitnessSigner(_Signer):
    """Cosigns checkpoints as a witness (C2SP tlog-cosignature v1, signature type 0x04)."""

    _alg = ALG_COSIGNATURE_V1

    def cosign(self, checkpoint_body: str, timestamp: int) -> str:
        """Return a cosignature line (ending in a newline) over a checkpoint body at a time.

        Raises InputError if the body is not a valid checkpoint or the timestamp is not in
        ``0 .. 2^63-1``.
        """
        if not 0 <= timestamp <= _MAX_TIMESTAMP:
            raise InputError(f"cosignature timestamp {timestamp} is not in 0 .. 2^63-1")
        try:
            Checkpoint.parse(checkpoint_body)
        except SignatureError as exc:
            raise InputError(f"refusing to cosign: {exc}") from exc
        message = _cosigned_message(checkpoint_body, timestamp)
        signature = self._private_key.sign(message)
        payload = self._key_id + timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature
        return _signature_line(self._name, payload)


# --- checkpoints ------------------------------------------------------------------------------


def _checkpoint_problem(origin: str, size: int, root: bytes) -> str | None:
    if not origin or any(ord(ch) < 0x20 for ch in origin):
        return "checkpoint origin is empty or contains a control character"
    if _text_problem(origin + "\n"):
        return "checkpoint origin is not valid UTF-8"
    if not 0 <= size <= _MAX_TREE_SIZE:
        return f"checkpoint size {size} is not in 0 .. 2^64-1"
    if len(root) != hashlib.sha256().digest_size:
        return f"checkpoint root hash is {len(root)} bytes, expected 32"
    return None


@dataclass(frozen=True)
class Checkpoint:
    """A log's signed statement of its size and root hash (C2SP tlog-checkpoint, no extensions).

    Raises InputError on construction if the origin is empty, the size negative or the root
    hash not 32 bytes.
    """

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        problem = _checkpoint_problem(self.origin, self.size, self.root)
        if problem:
            raise InputError(problem)

    def body(self) -> str:
        """Return the note text: origin, size and base64 root, each on its own line."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint body (exactly three lines, each ending in a newline).

        Raises SignatureError if the text is not a well-formed checkpoint body.
        """
        problem = _text_problem(text)
        if problem:
            raise SignatureError(f"checkpoint {problem.removeprefix('note ')}")
        lines = text.split("\n")
        if len(lines) != 4 or lines[3] != "":
            raise SignatureError("checkpoint must be exactly three newline-terminated lines")
        origin, size_text, root_text = lines[:3]
        # Length bound first: int() of a huge digit string is slow or refused.
        if len(size_text) > 20 or not _DECIMAL.fullmatch(size_text):
            raise SignatureError("checkpoint size is not a decimal number without leading zeros")
        root = _b64decode(root_text, "checkpoint root hash")
        size = int(size_text)
        problem = _checkpoint_problem(origin, size, root)
        if problem:
            raise SignatureError(problem)
        return cls(origin=origin, size=size, root=root)
