"""Bearer secrets: API tokens, one-time portal codes and sign-in sessions.

A secret is shown once, when issued, and stored only as its SHA-256 digest (the secrets are
256-bit random, or 60-bit one-time codes that expire in minutes and are rate limited, so a fast
hash is enough: there is nothing to brute-force offline). Every secret names its kind in a
prefix, so a portal code can never pass as an API token.

Checks may be answered from a short-lived in-memory cache (``cache_seconds``, off by default)
so that the API's hot path does not query the store on every request. Revoking through the same
:class:`Credentials` drops the cached entry at once; a revocation made by another process (the
``custodes token revoke`` command) takes effect once the entry ages out, at most
``cache_seconds`` later.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import timedelta

from custodes.clock import Clock, system_clock
from custodes.model import Credential, CredentialKind
from custodes.store import Store

__all__ = ["Credentials"]

_PREFIX = {
    CredentialKind.API_TOKEN: "cst_",
    CredentialKind.ACCESSOR_SESSION: "csa_",
    CredentialKind.SUBJECT_SESSION: "css_",
    CredentialKind.PORTAL_CODE: "",
}
_CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: easy to read aloud
_CODE_LENGTH = 12  # 30^12 ~ 2^59
_CACHE_MAX = 10_000  # cached credentials before the cache is emptied and refilled


def _digest(kind: CredentialKind, secret: str) -> bytes:
    # The kind is hashed in, so a secret of one kind can never match a digest of another.
    return hashlib.sha256(f"custodes {kind}\n{secret}".encode()).digest()


def _normalize_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


class Credentials:
    """Issues and checks bearer secrets, keeping only their digests in the store."""

    def __init__(
        self,
        *,
        store: Store,
        clock: Clock = system_clock,
        cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        # digest -> (credential, when cached); only live credentials are cached.
        self._cache: dict[bytes, tuple[Credential, float]] = {}

    def issue(self, kind: CredentialKind, principal: str, ttl: timedelta) -> str:
        """Create a secret of ``kind`` for ``principal`` valid for ``ttl``; return it (once).

        Raises:
            StoreError: the digest could not be stored.
        """
        if kind is CredentialKind.PORTAL_CODE:
            raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
            secret = "-".join(raw[i : i + 4] for i in range(0, _CODE_LENGTH, 4))
            digest = _digest(kind, raw)
        else:
            token = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            secret = _PREFIX[kind] + token
            digest = _digest(kind, secret)
        now = self._clock()
        credential = Credential(
            digest=digest, kind=kind, principal=principal, created_at=now, expires_at=now + ttl
        )
        with self._store.transaction() as tx:
            tx.put_credential(credential)
        return secret

    def check(self, kind: CredentialKind, secret: str) -> Credential | None:
        """Return the live credential of ``kind`` this secret proves, or ``None``.

        Raises:
            StoreError: the store could not be read.
        """
        if kind is CredentialKind.PORTAL_CODE or not secret.startswith(_PREFIX[kind]):
            return None
        digest = _digest(kind, secret)
        hit = self._cached(digest)
        if hit is not None:
            return hit
        found = self._store.credential(digest)
        if found is None or found.kind is not kind or found.expires_at <= self._clock():
            return None
        if self._cache_seconds > 0:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (found, self._monotonic())
        return found

    def cached(self, kind: CredentialKind, secret: str) -> Credential | None:
        """Return the live credential this secret proves if the cache holds it, else ``None``
        (which means "unknown here", not "invalid": call :meth:`check`). Never touches the
        store, so it can run on an event loop."""
        if self._cache_seconds <= 0 or not secret.startswith(_PREFIX[kind]):
            return None
        if kind is CredentialKind.PORTAL_CODE:
            return None
        return self._cached(_digest(kind, secret))

    def _cached(self, digest: bytes) -> Credential | None:
        entry = self._cache.get(digest)
        if entry is None:
            return None
        found, at = entry
        if self._monotonic() - at >= self._cache_seconds or found.expires_at <= self._clock():
            self._cache.pop(digest, None)
            return None
        return found

    def redeem_code(self, code: str) -> Credential | None:
        """Use a one-time portal code: return its credential and delete it, or ``None`` if it
        is unknown, already used or expired.

        Raises:
            StoreError: the store could not be read or written.
        """
        kind = CredentialKind.PORTAL_CODE
        digest = _digest(kind, _normalize_code(code))
        found = self._store.credential(digest)
        if found is None or found.kind is not kind:
            return None
        with self._store.transaction() as tx:
            if not tx.delete_credential(digest):
                return None  # another request used it first
        return found if found.expires_at > self._clock() else None

    def revoke(self, kind: CredentialKind, secret: str) -> bool:
        """Delete a secret (sign-out, token revocation); return whether it existed.

        Raises:
            StoreError: the store could not be written.
        """
        # Portal codes are stored by their normalized form (as redeem_code looks them up).
        text = _normalize_code(secret) if kind is CredentialKind.PORTAL_CODE else secret
        digest = _digest(kind, text)
        self._cache.pop(digest, None)
        with self._store.transaction() as tx:
            return tx.delete_credential(digest)
