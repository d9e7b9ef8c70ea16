"""Blind indexes: keyed HMAC-SHA256 lookup tokens, subject references and pseudonyms.

An unkeyed hash of an ID number is no protection (the space of plausible ID numbers is small
enough to enumerate), so every token here is keyed with a key kept outside the database.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable, Sequence

from custodes.crypto._keys import KEY_BYTES, length_prefixed, text_part, utf8
from custodes.errors import ConfigError, InputError

__all__ = ["BlindIndex"]

_PSEUDONYM_BYTES = 16
_HEADS_MAX = 1024  # (collection, field) pairs whose HMAC input head is kept
_U32 = struct.Struct(">I").pack  # as in ``length_prefixed``


class BlindIndex:
    """Derives subject references, field tokens and pseudonyms for one tenant.

    Inputs must already be normalized; this class does not normalize.

    Raises:
        ConfigError: a key is not 32 bytes, or the two keys are equal.
    """

    def __init__(self, *, tenant: str, index_key: bytes, pseudonym_key: bytes) -> None:
        for name, key in (("index_key", index_key), ("pseudonym_key", pseudonym_key)):
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise ConfigError(f"blind index {name} must be {KEY_BYTES} bytes")
        # Published pseudonyms must reveal nothing about database keys: separate keys.
        if hmac.compare_digest(index_key, pseudonym_key):
            raise ConfigError("blind index index_key and pseudonym_key must differ")
        self.tenant = tenant
        self._tenant = utf8(tenant, "tenant")
        self._index_key = index_key
        self._pseudonym_key = pseudonym_key
        # The constant leading parts of each HMAC input, encoded once (hot read path): the
        # input stays length_prefixed(label, tenant, ...), byte for byte.
        self._subject_head = length_prefixed(b"subject", self._tenant)
        self._field_head = length_prefixed(b"field", self._tenant)
        self._pseudonym_head = length_prefixed(b"pseudonym", self._tenant)
        self._field_heads: dict[tuple[str, str], bytes] = {}

    def __repr__(self) -> str:
        return f"BlindIndex(tenant={self.tenant!r})"

    def subject_ref(self, id_number: str) -> bytes:
        """Return the 32-byte database key of the subject with this ID number.

        Raises:
            InputError: ``id_number`` is not valid text.
        """
        message = self._subject_head + length_prefixed(utf8(id_number, "id_number"))
        return _mac(self._index_key, message)

    def token(self, collection: str, field: str, value: str) -> bytes:
        """Return the 32-byte lookup token of a field value.

        Raises:
            InputError: an argument is not valid text.
        """
        names = (collection, field)
        head = self._field_heads.get(names) if type(collection) is type(field) is str else None
        if head is None:
            head = self._field_head + length_prefixed(
                utf8(collection, "collection"), utf8(field, "field")
            )
            if len(self._field_heads) < _HEADS_MAX:
                self._field_heads[names] = head
        # The bytes of length_prefixed(collection, field, value), the first two encoded once.
        part = text_part(value)
        if part is None:  # raises, naming the field (never the value)
            part = length_prefixed(utf8(value, f"value of field {field!r}"))
        return _mac(self._index_key, head + part)

    def tokens(self, collection: str, field: str, values: Iterable[str]) -> list[bytes]:
        """Return the lookup tokens of many values of one field: ``token`` of each, computed
        with the constant part of the HMAC input absorbed once (bulk matching).

        Raises:
            InputError: an argument is not valid text.
        """
        head = self._field_head + length_prefixed(
            utf8(collection, "collection"), utf8(field, "field")
        )
        base = hmac.new(self._index_key, head, hashlib.sha256)
        values = list(values)
        try:
            parts = [value.encode("utf-8") for value in values]
        except (AttributeError, UnicodeEncodeError):
            parts = [utf8(value, f"value of field {field!r}") for value in values]  # raises
        return _bulk_macs(base, parts)

    def pseudonyms_of_refs(self, subject_refs: Sequence[bytes]) -> list[str]:
        """Return ``pseudonym_of_ref`` of many subject refs (bulk matching).

        Raises:
            InputError: a ref is not non-empty bytes.
        """
        for ref in subject_refs:
            if not isinstance(ref, bytes) or not ref:
                raise InputError("subject_ref must be non-empty bytes")
        base = hmac.new(self._pseudonym_key, self._pseudonym_head, hashlib.sha256)
        return [mac[:_PSEUDONYM_BYTES].hex() for mac in _bulk_macs(base, subject_refs)]

    def pseudonym(self, id_number: str) -> str:
        """Return the subject's public pseudonym: 32 lowercase hex characters.

        Equal to ``pseudonym_of_ref(subject_ref(id_number))``.

        Raises:
            InputError: ``id_number`` is not valid text.
        """
        return self.pseudonym_of_ref(self.subject_ref(id_number))

    def pseudonym_of_ref(self, subject_ref: bytes) -> str:
        """Return the public pseudonym of the subject with this database key.

        The vault often holds only subject references (e.g. records found by a token), so the
        pseudonym is a keyed function of the reference, under the separate pseudonym key.

        Raises:
            InputError: ``subject_ref`` is not non-empty bytes.
        """
        if not isinstance(subject_ref, bytes) or not subject_ref:
            raise InputError("subject_ref must be non-empty bytes")
        message = self._pseudonym_head + length_prefixed(subject_ref)
        return _mac(self._pseudonym_key, message)[:_PSEUDONYM_BYTES].hex()


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.digest(key, message, "sha256")


def _bulk_macs(base: hmac.HMAC, parts: Sequence[bytes]) -> list[bytes]:
    """HMAC of ``base``'s absorbed input followed by ``length_prefixed(part)``, for each part.

    The same bytes as ``length_prefixed`` would give, inlined: this loop runs once per value of a
    leaked file (hundreds of thousands), where a helper call per value costs more than the MAC.
    """
    out: list[bytes] = []
    append, copy, pack = out.append, base.copy, _U32
    try:
        for part in parts:
            mac = copy()
            mac.update(pack(len(part)) + part)
            append(mac.digest())
    except struct.error:
        raise InputError("a value bound into a key or ciphertext is longer than 4 GiB") from None
    return out
