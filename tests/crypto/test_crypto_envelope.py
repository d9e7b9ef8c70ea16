"""Envelope encryption: every sealed value opens in its place and nowhere else."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.crypto import Envelope, LocalKeyFile, RootKeys, SubjectKey, SubjectKeyStore
from custodes.errors import IntegrityError, NotFound

SUBJECT_A = b"A" * 32
SUBJECT_B = b"B" * 32
PLACE = {"collection": "people", "record_id": "r-1", "field": "phone"}


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Envelope, SubjectKey]]:
    """A module-wide envelope and key, for Hypothesis tests (which re-run the test body)."""
    with tempfile.TemporaryDirectory() as tmp:
        keys = LocalKeyFile.create(Path(tmp) / "root.key").root_keys("acme")
        with SubjectKeyStore(Path(tmp) / "subject-keys.db") as store:
            envelope = Envelope(tenant="acme", root_keys=keys, keystore=store)
            yield envelope, envelope.subject_key(SUBJECT_A, create=True)


@settings(max_examples=200, deadline=None)
@given(
    plaintext=st.binary(max_size=4096),
    collection=st.text(max_size=20),
    record_id=st.text(max_size=20),
    field=st.text(max_size=20),
)
def test_every_sealed_value_opens(
    shared: tuple[Envelope, SubjectKey],
    plaintext: bytes,
    collection: str,
    record_id: str,
    field: str,
) -> None:
    envelope, key = shared
    place = {"collection": collection, "record_id": record_id, "field": field}
    sealed = envelope.seal(key, plaintext, **place)
    assert sealed[0] == 1
    assert len(sealed) == 1 + 12 + len(plaintext) + 16
    assert envelope.open(key, sealed, **place) == plaintext


@pytest.mark.parametrize("size", [0, 1, 4096])
def test_edge_sizes_round_trip(envelope: Envelope, size: int) -> None:
    key = envelope.subject_key(SUBJECT_A, create=True)
    plaintext = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert envelope.open(key, envelope.seal(key, plaintext, **PLACE), **PLACE) == plaintext


def test_two_seals_of_one_value_differ(envelope: Envelope) -> None:
    key = envelope.subject_key(SUBJECT_A, create=True)
    seals = {envelope.seal(key, b"same value", **PLACE) for _ in range(50)}
    assert len(seals) == 50
    assert len({s[1:13] for s in seals}) == 50


def test_flipping_any_bit_of_any_byte_is_detected(envelope: Envelope) -> None:
    key = envelope.subject_key(SUBJECT_A, create=True)
    sealed = envelope.seal(key, b"13800138000", **PLACE)
    for i in range(len(sealed)):
        for bit in (0x01, 0x80):
            tampered = bytearray(sealed)
            tampered[i] ^= bit
            with pytest.raises(IntegrityError):
                envelope.open(key, bytes(tampered), **PLACE)


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"collection": "staff"},
        {"record_id": "r-2"},
        {"field": "email"},
        # Length prefixes: shifting a boundary between parts must not give the same AD.
        {"collection": "peopler", "record_id": "-1"},
        {"record_id": "r-1p", "field": "hone"},
    ],
)
def test_ciphertext_moved_to_another_place_fails(
    envelope: Envelope, elsewhere: dict[str, str]
) -> None:
    key = envelope.subject_key(SUBJECT_A, create=True)
    sealed = envelope.seal(key, b"13800138000", **PLACE)
    with pytest.raises(IntegrityError) as caught:
        envelope.open(key, sealed, **(PLACE | elsewhere))
    message = str(caught.value)
    assert (PLACE | elsewhere)["field"] in message
    assert "13800138000" not in message


def test_ciphertext_moved_to_another_subject_fails(envelope: Envelope) -> None:
    key_a = envelope.subject_key(SUBJECT_A, create=True)
    key_b = envelope.subject_key(SUBJECT_B, create=True)
    sealed = envelope.seal(key_a, b"value", **PLACE)
    with pytest.raises(IntegrityError):
        envelope.open(key_b, sealed, **PLACE)


def test_subject_ref_is_bound_even_under_the_same_data_key(envelope: Envelope) -> None:
    key_a = envelope.subject_key(SUBJECT_A, create=True)
    impostor = SubjectKey(SUBJECT_B, key_a._aead)
    sealed = envelope.seal(key_a, b"value", **PLACE)
    with pytest.raises(IntegrityError):
        envelope.open(impostor, sealed, **PLACE)


def test_ciphertext_moved_to_another_tenant_fails(
    key_file: LocalKeyFile, keystore: SubjectKeyStore, root_keys: RootKeys
) -> None:
    # Same root keys and data key, only the tenant name differs: the AD still binds it.
    ours = Envelope(tenant="acme", root_keys=root_keys, keystore=keystore)
    theirs = Envelope(tenant="other", root_keys=root_keys, keystore=keystore)
    key = ours.subject_key(SUBJECT_A, create=True)
    sealed = ours.seal(key, b"value", **PLACE)
    with pytest.raises(IntegrityError):
        theirs.open(key, sealed, **PLACE)


@pytest.mark.parametrize("cut", [0, 1, 12, 13, 28, -1])
def test_truncated_ciphertext_fails(envelope: Envelope, cut: int) -> None:
    key = envelope.subject_key(SUBJECT_A, create=True)
    sealed = envelope.seal(key, b"value", **PLACE)
    with pytest.raises(IntegrityError):
        envelope.open(key, sealed[:cut], **PLACE)


@pytest.mark.parametrize("version", [0x00, 0x02, 0xFF])
def test_unknown_version_byte_fails(envelope: Envelope, version: int) -> None:
    key = envelope.subject_key(SUBJECT_A, create=True)
    sealed = envelope.seal(key, b"value", **PLACE)
    with pytest.raises(IntegrityError):
        envelope.open(key, bytes([version]) + sealed[1:], **PLACE)


def test_wrapped_key_of_one_subject_cannot_serve_another(
    envelope: Envelope, keystore: SubjectKeyStore
) -> None:
    envelope.subject_key(SUBJECT_A, create=True)
    wrapped_a = keystore.get(SUBJECT_A)
    assert wrapped_a is not None
    keystore.put_if_absent(SUBJECT_B, wrapped_a)
    with pytest.raises(IntegrityError, match="failed to unwrap"):
        envelope.subject_key(SUBJECT_B)


def test_wrapped_key_is_bound_to_tenant(
    root_keys: RootKeys, keystore: SubjectKeyStore, envelope: Envelope
) -> None:
    envelope.subject_key(SUBJECT_A, create=True)
    other = Envelope(tenant="other", root_keys=root_keys, keystore=keystore)
    with pytest.raises(IntegrityError):
        other.subject_key(SUBJECT_A)


def test_wrapped_key_needs_the_right_kek(
    tmp_path: Path, keystore: SubjectKeyStore, envelope: Envelope
) -> None:
    envelope.subject_key(SUBJECT_A, create=True)
    stranger = LocalKeyFile.create(tmp_path / "other.key").root_keys("acme")
    other = Envelope(tenant="acme", root_keys=stranger, keystore=keystore)
    with pytest.raises(IntegrityError):
        other.subject_key(SUBJECT_A)


def test_tampered_wrapped_key_fails(tmp_path: Path, root_keys: RootKeys) -> None:
    path = tmp_path / "k.db"
    with SubjectKeyStore(path) as store:
        Envelope(tenant="acme", root_keys=root_keys, keystore=store).subject_key(
            SUBJECT_A, create=True
        )
        wrapped = store.get(SUBJECT_A)
        assert wrapped is not None
        store.delete(SUBJECT_A)
        store.put_if_absent(SUBJECT_A, wrapped[:-1] + bytes([wrapped[-1] ^ 1]))
        fresh = Envelope(tenant="acme", root_keys=root_keys, keystore=store)
        with pytest.raises(IntegrityError):
            fresh.subject_key(SUBJECT_A)


def test_wrapped_key_format(envelope: Envelope, keystore: SubjectKeyStore) -> None:
    assert envelope.keystore is keystore
    envelope.subject_key(SUBJECT_A, create=True)
    wrapped = keystore.get(SUBJECT_A)
    assert wrapped is not None
    assert wrapped[0] == 1
    assert len(wrapped) == 1 + 12 + 32 + 16


def test_missing_subject_is_not_found(envelope: Envelope) -> None:
    with pytest.raises(NotFound, match="never stored, or shredded"):
        envelope.subject_key(SUBJECT_A)
    with pytest.raises(NotFound):
        envelope.subject_keys([SUBJECT_A, SUBJECT_B], create=False)


def test_create_returns_the_same_key_every_time(
    envelope: Envelope, root_keys: RootKeys, keystore: SubjectKeyStore
) -> None:
    key = envelope.subject_key(SUBJECT_A, create=True)
    sealed = envelope.seal(key, b"value", **PLACE)
    assert envelope.subject_key(SUBJECT_A, create=True) is key
    # A fresh envelope (empty cache) reads the same stored key.
    fresh = Envelope(tenant="acme", root_keys=root_keys, keystore=keystore)
    again = fresh.subject_key(SUBJECT_A, create=True)
    assert fresh.open(again, sealed, **PLACE) == b"value"


def test_two_envelopes_racing_to_create_share_one_key(
    root_keys: RootKeys, keystore: SubjectKeyStore
) -> None:
    one = Envelope(tenant="acme", root_keys=root_keys, keystore=keystore)
    two = Envelope(tenant="acme", root_keys=root_keys, keystore=keystore)
    refs = [bytes([i]) * 32 for i in range(20)]
    keys_one = one.subject_keys(refs[:15], create=True)
    keys_two = two.subject_keys(refs, create=True)
    for ref in refs[:15]:
        sealed = one.seal(keys_one[ref], b"v", **PLACE)
        assert two.open(keys_two[ref], sealed, **PLACE) == b"v"


def test_batch_keys_match_single_keys(envelope: Envelope, root_keys: RootKeys) -> None:
    refs = [bytes([i]) * 32 for i in range(50)]
    batch = envelope.subject_keys([*refs, refs[0]], create=True)
    assert set(batch) == set(refs)
    for ref in refs:
        sealed = envelope.seal(batch[ref], ref, **PLACE)
        assert envelope.open(envelope.subject_key(ref), sealed, **PLACE) == ref


def test_lru_cache_is_bounded_and_still_correct(
    root_keys: RootKeys, keystore: SubjectKeyStore
) -> None:
    envelope = Envelope(tenant="acme", root_keys=root_keys, keystore=keystore, cache_size=2)
    refs = [b"1" * 32, b"2" * 32, b"3" * 32]
    sealed = {}
    for ref in refs:
        key = envelope.subject_key(ref, create=True)
        sealed[ref] = envelope.seal(key, ref, **PLACE)
    assert len(envelope._cache) == 2
    assert refs[0] not in envelope._cache
    for ref in refs:
        assert envelope.open(envelope.subject_key(ref), sealed[ref], **PLACE) == ref
        assert len(envelope._cache) <= 2
    # Most recently used stays; the least recently used goes first.
    envelope.subject_key(refs[1])
    envelope.subject_key(refs[0])
    assert list(envelope._cache) == [refs[1], refs[0]]


def test_audit_round_trip_and_binding(envelope: Envelope, root_keys: RootKeys) -> None:
    sealed = envelope.seal_audit(b"patient unconscious, ER admission", context=b"event-7")
    assert sealed[0] == 1
    assert envelope.open_audit(sealed, context=b"event-7") == b"patient unconscious, ER admission"
    with pytest.raises(IntegrityError):
        envelope.open_audit(sealed, context=b"event-8")
    with pytest.raises(IntegrityError):
        envelope.open_audit(sealed[:-1], context=b"event-7")
    assert envelope.seal_audit(b"x", context=b"c") != envelope.seal_audit(b"x", context=b"c")


def test_audit_key_is_not_a_data_key(envelope: Envelope) -> None:
    key = envelope.subject_key(SUBJECT_A, create=True)
    sealed = envelope.seal_audit(b"why", context=b"c")
    with pytest.raises(IntegrityError):
        envelope.open(key, sealed, **PLACE)


def test_creating_keys_uses_the_stored_key_when_another_writer_won(
    root_keys: RootKeys, keystore: SubjectKeyStore
) -> None:
    # The race: `two` found no key, then `one` stored its key first. `two` must use the key
    # that was stored (unwrapped from the key store), never the one it made and lost.
    one = Envelope(tenant="acme", root_keys=root_keys, keystore=keystore)
    two = Envelope(tenant="acme", root_keys=root_keys, keystore=keystore)
    winner = one.subject_key(SUBJECT_A, create=True)
    sealed = one.seal(winner, b"value", **PLACE)
    created = two._create([SUBJECT_A, SUBJECT_B])
    assert two.open(created[SUBJECT_A], sealed, **PLACE) == b"value"
    other = two.seal(created[SUBJECT_B], b"b", **PLACE)
    assert one.open(one.subject_key(SUBJECT_B), other, **PLACE) == b"b"


def test_creating_many_keys_at_once_stores_every_one(
    envelope: Envelope, root_keys: RootKeys, keystore: SubjectKeyStore
) -> None:
    refs = [i.to_bytes(2, "big") * 16 for i in range(700)]
    keys = envelope.subject_keys(refs, create=True)
    assert set(keys) == set(refs)
    assert set(keystore.get_many(refs)) == set(refs)
    sealed = envelope.seal(keys[refs[5]], b"v", **PLACE)
    fresh = Envelope(tenant="acme", root_keys=root_keys, keystore=keystore)  # empty cache
    assert fresh.open(fresh.subject_key(refs[5]), sealed, **PLACE) == b"v"
