"""Envelope encryption: per-subject data keys wrapped under the tenant KEK, AES-256-GCM fields.

Field ciphertext: ``0x01 || 12-byte random nonce || AES-256-GCM(ciphertext || tag)``, with
associated data binding tenant, collection, record id, field and subject reference, so a
ciphertext moved to another row, field or subject fails to open.
"""

from __future__ import annotations

import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from custodes.crypto._keys import KEY_BYTES, RootKeys, length_prefixed, prefixed_text, utf8
from custodes.crypto._keystore import SubjectKeyStore
from custodes.errors import ConfigError, IntegrityError, NotFound

__all__ = ["Envelope", "SubjectKey"]

VERSION = b"\x01"
NONCE_BYTES = 12
TAG_BYTES = 16
_MIN_LEN = len(VERSION) + NONCE_BYTES + TAG_BYTES
_FIELD_AD = b"custodes/field/v1"
_DEK_AD = b"custodes/dek/v1"
_AUDIT_AD = b"custodes/audit/v1"
# Bound on each cache of encoded names (collections, fields): names come from the schema, but a
# caller of this class may pass anything, so the caches must not grow without limit.
_NAME_CACHE = 256


class SubjectKey:
    """One subject's unwrapped data key, ready to use; the key bytes are not exposed."""

    __slots__ = ("_ad_tail", "_aead", "_subject_ref")

    def __init__(self, subject_ref: bytes, aead: AESGCM) -> None:
        self._subject_ref = subject_ref
        self._aead = aead
        # The subject's part of every field AD, which ends with it (see Envelope._field_ad);
        # the reference is read-only so the two cannot disagree.
        self._ad_tail = length_prefixed(subject_ref)

    @property
    def subject_ref(self) -> bytes:
        """The subject reference this key belongs to (bound into every field's AD)."""
        return self._subject_ref

    def __repr__(self) -> str:
        return f"SubjectKey(subject_ref={self.subject_ref[:4].hex()}…)"


def _seal(aead: AESGCM, plaintext: bytes, ad: bytes) -> bytes:
    # A fresh random nonce per message: 96 random bits are safe far beyond our volumes
    # (NIST SP 800-38D limit of 2**32 messages per key; one key per subject).
    nonce = os.urandom(NONCE_BYTES)
    return VERSION + nonce + aead.encrypt(nonce, plaintext, ad)


def _open(aead: AESGCM, ciphertext: bytes, ad: bytes) -> bytes | None:
    """Return the plaintext, or None if the ciphertext is malformed or fails authentication."""
    if len(ciphertext) < _MIN_LEN or ciphertext[:1] != VERSION:
        return None
    nonce = ciphertext[1 : 1 + NONCE_BYTES]
    try:
        return aead.decrypt(nonce, ciphertext[1 + NONCE_BYTES :], ad)
    except InvalidTag:
        return None


class Envelope:
    """Seals and opens field values under per-subject keys; shredding a key erases a subject.

    Raises:
        ConfigError: ``cache_size`` is negative.
    """

    def __init__(
        self,
        *,
        tenant: str,
        root_keys: RootKeys,
        keystore: SubjectKeyStore,
        cache_size: int = 100_000,
    ) -> None:
        if cache_size < 0:
            raise ConfigError(f"key cache size must be zero or more, not {cache_size}")
        self.tenant = tenant
        self._tenant = utf8(tenant, "tenant")
        self._ad_heads: dict[str, bytes] = {}
        self._ad_fields: dict[str, bytes] = {}
        self._kek = AESGCM(root_keys.kek)
        self._audit = AESGCM(root_keys.audit_key)
        self._keystore = keystore
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, SubjectKey] = OrderedDict()
        self._lock = threading.Lock()
        # Bumped by every shred, so a load that raced with a shred does not re-cache the key.
        self._shreds = 0

    def __repr__(self) -> str:
        return f"Envelope(tenant={self.tenant!r})"

    @property
    def keystore(self) -> SubjectKeyStore:
        """The store of wrapped subject keys this envelope reads and writes."""
        return self._keystore

    def subject_key(self, subject_ref: bytes, *, create: bool = False) -> SubjectKey:
        """Return a subject's data key (from the cache or the key store), or make one.

        Raises:
            NotFound: the subject has no key (never stored, or shredded) and ``create`` is False.
            IntegrityError: the stored wrapped key fails to unwrap (tampered or misplaced).
            StoreError: the key store failed.
        """
        with self._lock:
            key = self._cached(subject_ref)
        if key is not None:
            return key  # a cached key is current: shred evicts under the same lock
        return self.subject_keys([subject_ref], create=create)[subject_ref]

    def subject_keys(
        self, subject_refs: Sequence[bytes], *, create: bool
    ) -> dict[bytes, SubjectKey]:
        """Return the data keys of many subjects; new keys are stored in one transaction.

        Raises:
            NotFound: a subject has no key and ``create`` is False.
            IntegrityError: a stored wrapped key fails to unwrap.
            StoreError: the key store failed.
        """
        refs = list(dict.fromkeys(subject_refs))
        while True:
            with self._lock:
                shreds = self._shreds
                found = {ref: key for ref in refs if (key := self._cached(ref)) is not None}
            missing = [ref for ref in refs if ref not in found]
            loaded = self._load(missing, create=create) if missing else {}
            with self._lock:
                if self._shreds == shreds:
                    for key in loaded.values():
                        self._remember(key)
                    return found | loaded
            # A shred ran while keys were loading; load again so a shredded key is not revived.

    def seal(
        self, key: SubjectKey, plaintext: bytes, *, collection: str, record_id: str, field: str
    ) -> bytes:
        """Encrypt a field value, bound to this tenant, collection, record, field and subject.

        Raises:
            InputError: a name is not valid text.
        """
        ad = self._field_ad(key, collection, record_id, field)
        return _seal(key._aead, plaintext, ad)

    def seal_fields(
        self, key: SubjectKey, values: Mapping[str, bytes], *, collection: str, record_id: str
    ) -> dict[str, bytes]:
        """Encrypt the fields of one record, each exactly as :meth:`seal` would.

        Every field gets its own fresh random nonce and the AD of its place; only the work is
        shared (the AD parts are encoded once, the nonces come from one read of the OS source).

        Raises:
            InputError: a name is not valid text.
        """
        record_head = self._ad_head(collection) + prefixed_text(record_id, "record id")
        tail, encrypt, field_parts = key._ad_tail, key._aead.encrypt, self._ad_fields
        # 96 random bits per field, as in _seal; one system call instead of one per field.
        nonces = os.urandom(NONCE_BYTES * len(values))
        sealed: dict[str, bytes] = {}
        start = 0
        for name, plaintext in values.items():
            part = field_parts.get(name) if type(name) is str else None
            if part is None:
                part = self._ad_field(name)
            nonce = nonces[start : start + NONCE_BYTES]
            start += NONCE_BYTES
            sealed[name] = VERSION + nonce + encrypt(nonce, plaintext, record_head + part + tail)
        return sealed

    def open(
        self, key: SubjectKey, ciphertext: bytes, *, collection: str, record_id: str, field: str
    ) -> bytes:
        """Decrypt a field value sealed for exactly this place and subject.

        Raises:
            IntegrityError: the ciphertext is malformed, altered, or belongs somewhere else.
        """
        ad = self._field_ad(key, collection, record_id, field)
        plaintext = _open(key._aead, ciphertext, ad)
        if plaintext is None:
            raise _field_failed(collection, record_id, field)
        return plaintext

    def open_fields(
        self,
        key: SubjectKey,
        sealed: Mapping[str, bytes],
        names: Iterable[str],
        *,
        collection: str,
        record_id: str,
    ) -> dict[str, bytes]:
        """Decrypt the fields ``names`` of one record (those it has), as :meth:`open` would.

        Raises:
            InputError: a name is not valid text.
            IntegrityError: a ciphertext is malformed, altered, or belongs somewhere else.
        """
        # The AD is built from parts encoded once per collection, record, field and subject;
        # the bytes are those of _field_ad.
        record_head = self._ad_head(collection) + prefixed_text(record_id, "record id")
        tail, aead, field_parts = key._ad_tail, key._aead, self._ad_fields
        opened: dict[str, bytes] = {}
        for name in names:
            if name not in sealed:
                continue
            part = field_parts.get(name) or self._ad_field(name)
            plaintext = _open(aead, sealed[name], record_head + part + tail)
            if plaintext is None:
                raise _field_failed(collection, record_id, name)
            opened[name] = plaintext
        return opened

    def shred(self, subject_ref: bytes) -> bool:
        """Delete a subject's data key for good; return whether there was one.

        Raises:
            StoreError: the key store failed (the key may still exist; retry).
        """
        deleted = self._keystore.delete(subject_ref)
        # Evict after the delete, so no load can re-read the key and cache it afterwards.
        with self._lock:
            self._shreds += 1
            self._cache.pop(subject_ref, None)
        return deleted

    def seal_audit(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt an audit text (e.g. a break-glass justification) under the audit key."""
        return _seal(self._audit, plaintext, self._audit_ad(context))

    def open_audit(self, ciphertext: bytes, *, context: bytes) -> bytes:
        """Decrypt an audit text sealed with the same context.

        Raises:
            IntegrityError: the ciphertext is malformed, altered, or from another context.
        """
        plaintext = _open(self._audit, ciphertext, self._audit_ad(context))
        if plaintext is None:
            raise IntegrityError(
                "an audit ciphertext failed authentication: it was altered or moved"
            )
        return plaintext

    def _cached(self, ref: bytes) -> SubjectKey | None:
        key = self._cache.get(ref)
        if key is not None:
            self._cache.move_to_end(ref)
        return key

    def _remember(self, key: SubjectKey) -> None:
        if self._cache_size == 0:
            return
        self._cache[key.subject_ref] = key
        self._cache.move_to_end(key.subject_ref)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _load(self, refs: list[bytes], *, create: bool) -> dict[bytes, SubjectKey]:
        wrapped = self._keystore.get_many(refs)
        absent = [ref for ref in refs if ref not in wrapped]
        if absent and not create:
            raise NotFound("no data key for this subject: never stored, or shredded")
        keys = {ref: SubjectKey(ref, AESGCM(self._unwrap(ref, wrapped[ref]))) for ref in wrapped}
        if absent:
            keys |= self._create(absent)
        return {ref: keys[ref] for ref in refs}

    def _create(self, refs: list[bytes]) -> dict[bytes, SubjectKey]:
        """Make, wrap and store new data keys in one key-store transaction; return the keys
        stored (another writer may have won the race for some subjects: theirs are used)."""
        fresh = {ref: AESGCM.generate_key(KEY_BYTES * 8) for ref in refs}
        ours = {ref: self._wrap(ref, dek) for ref, dek in fresh.items()}
        stored = self._keystore.put_many_if_absent(list(ours.items()))
        if len(stored) != len(refs):
            raise NotFound("no data key for this subject: shredded while being created")
        keys = {}
        for ref in refs:
            # The key we just wrapped needs no unwrapping; one stored by a racing writer does.
            won = hmac.compare_digest(stored[ref], ours[ref])
            dek = fresh[ref] if won else self._unwrap(ref, stored[ref])
            keys[ref] = SubjectKey(ref, AESGCM(dek))
        return keys

    def _wrap(self, subject_ref: bytes, dek: bytes) -> bytes:
        return _seal(self._kek, dek, self._dek_ad(subject_ref))

    def _unwrap(self, subject_ref: bytes, wrapped: bytes) -> bytes:
        dek = _open(self._kek, wrapped, self._dek_ad(subject_ref))
        if dek is None or len(dek) != KEY_BYTES:
            raise IntegrityError(
                "the stored data key of a subject failed to unwrap: it was altered, copied from "
                "another subject or tenant, or wrapped under another root key"
            )
        return dek

    def _dek_ad(self, subject_ref: bytes) -> bytes:
        return _DEK_AD + length_prefixed(self._tenant, subject_ref)

    def _field_ad(self, key: SubjectKey, collection: str, record_id: str, field: str) -> bytes:
        # _FIELD_AD + length_prefixed(tenant, collection, record_id, field, subject_ref), from
        # parts encoded once (hot read path).
        record = length_prefixed(utf8(record_id, "record id"))
        return self._ad_head(collection) + record + self._ad_field(field) + key._ad_tail

    def _ad_head(self, collection: str) -> bytes:
        return _memo(
            self._ad_heads,
            collection,
            lambda name: _FIELD_AD + length_prefixed(self._tenant, utf8(name, "collection")),
        )

    def _ad_field(self, field: str) -> bytes:
        return _memo(self._ad_fields, field, lambda name: length_prefixed(utf8(name, "field")))

    def _audit_ad(self, context: bytes) -> bytes:
        return _AUDIT_AD + length_prefixed(self._tenant, context)


def _memo(cache: dict[str, bytes], name: str, encode: Callable[[str], bytes]) -> bytes:
    """Return ``encode(name)``, remembered in ``cache`` (at most ``_NAME_CACHE`` names)."""
    if not isinstance(name, str):
        return encode(name)  # raises InputError, naming what was expected
    found = cache.get(name)
    if found is None:
        found = encode(name)
        if len(cache) >= _NAME_CACHE:
            cache.clear()  # atomic under the GIL, unlike evicting one entry while others read
        cache[name] = found
    return found


def _field_failed(collection: str, record_id: str, field: str) -> IntegrityError:
    return IntegrityError(
        f"field {field!r} of record {record_id!r} in collection {collection!r} failed "
        "authentication: the ciphertext was altered, moved or swapped"
    )
