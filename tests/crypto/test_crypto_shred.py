"""Shredding: once a subject's key is deleted, old ciphertexts are unrecoverable."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from custodes.crypto import Envelope, LocalKeyFile, SubjectKeyStore
from custodes.errors import IntegrityError, NotFound

VICTIM = b"V" * 32
BYSTANDER = b"K" * 32
PLACE = {"collection": "people", "record_id": "r-1", "field": "name"}


def test_shred_erases_the_subject_for_good(keys_dir: Path, key_file: LocalKeyFile) -> None:
    store_path = keys_dir / "subject-keys.db"
    root_keys = key_file.root_keys("acme")
    with SubjectKeyStore(store_path) as store:
        envelope = Envelope(tenant="acme", root_keys=root_keys, keystore=store)
        victim_key = envelope.subject_key(VICTIM, create=True)
        kept_key = envelope.subject_key(BYSTANDER, create=True)
        old_ciphertext = envelope.seal(victim_key, b"Zhang San", **PLACE)  # the "old backup"
        kept_ciphertext = envelope.seal(kept_key, b"Li Si", **PLACE)
        wrapped = store.get(VICTIM)
        assert wrapped is not None

        assert envelope.shred(VICTIM) is True
        assert store.get(VICTIM) is None
        with pytest.raises(NotFound, match="shredded"):
            envelope.subject_key(VICTIM)
        assert envelope.shred(VICTIM) is False

    # secure_delete: the wrapped key's bytes are nowhere in the key store file.
    assert wrapped not in store_path.read_bytes()

    # Reopen everything from disk, with the same root key: the old ciphertext stays sealed.
    reopened_keys = LocalKeyFile.open(key_file.path).root_keys("acme")
    with SubjectKeyStore(store_path) as store:
        fresh = Envelope(tenant="acme", root_keys=reopened_keys, keystore=store)
        with pytest.raises(NotFound):
            fresh.subject_key(VICTIM)
        new_key = fresh.subject_key(VICTIM, create=True)
        with pytest.raises(IntegrityError):
            fresh.open(new_key, old_ciphertext, **PLACE)
        # Other subjects are untouched.
        bystander = fresh.subject_key(BYSTANDER)
        assert fresh.open(bystander, kept_ciphertext, **PLACE) == b"Li Si"


def test_shred_evicts_the_cached_key(envelope: Envelope) -> None:
    envelope.subject_key(VICTIM, create=True)
    assert VICTIM in envelope._cache
    envelope.shred(VICTIM)
    assert VICTIM not in envelope._cache
    with pytest.raises(NotFound):
        envelope.subject_key(VICTIM)


class _InterleavingStore(SubjectKeyStore):
    """A real key store that runs one callback right after a read, to pin an interleaving."""

    after_read: Callable[[], object] | None = None

    def get_many(self, subject_refs: Sequence[bytes]) -> dict[bytes, bytes]:
        found = super().get_many(subject_refs)
        callback, self.after_read = self.after_read, None
        if callback is not None:
            callback()
        return found


def test_shred_during_a_load_never_revives_the_key(tmp_path: Path, key_file: LocalKeyFile) -> None:
    with _InterleavingStore(tmp_path / "k.db") as store:
        envelope = Envelope(tenant="acme", root_keys=key_file.root_keys("acme"), keystore=store)
        envelope.subject_key(VICTIM, create=True)
        envelope._cache.clear()
        # The load has read the wrapped key; the shred lands before it reaches the cache.
        store.after_read = lambda: envelope.shred(VICTIM)
        with pytest.raises(NotFound):
            envelope.subject_key(VICTIM)
        assert VICTIM not in envelope._cache
        with pytest.raises(NotFound):
            envelope.subject_key(VICTIM)


def test_concurrent_loads_and_shreds_end_shredded(
    envelope: Envelope, keystore: SubjectKeyStore
) -> None:
    for _round in range(10):
        envelope.subject_key(VICTIM, create=True)
        envelope._cache.clear()
        stop = threading.Event()

        def load(stop: threading.Event) -> None:
            while not stop.is_set():
                try:
                    envelope.subject_key(VICTIM)
                except NotFound:
                    return

        readers = [threading.Thread(target=load, args=(stop,)) for _ in range(4)]
        for t in readers:
            t.start()
        envelope.shred(VICTIM)
        stop.set()
        for t in readers:
            t.join()
        with pytest.raises(NotFound):
            envelope.subject_key(VICTIM)
