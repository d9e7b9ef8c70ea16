"""Field ciphertexts: the associated data and format are fixed, whatever the fast path does.

The associated data is rebuilt here straight from the documented construction
(``custodes/field/v1 || lp(tenant, collection, record id, field, subject ref)``) and a
ciphertext made with it, outside custodes, is pinned as hex: a stored value must open forever.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.crypto import Envelope, SubjectKey
from custodes.errors import InputError, IntegrityError, NotFound

DEK = bytes(range(100, 132))
REF = bytes(range(32))
NONCE = bytes(range(12))
# AES-256-GCM of "张三" under DEK and NONCE, AD as below for ("identity", "r-0001", "name").
PINNED = "01000102030405060708090a0b7a1798a805c484e18df49fe7b420b86196332b2b202f"

names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


def _lp(*parts: bytes) -> bytes:
    return b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def _ad(tenant: str, collection: str, record_id: str, field: str, ref: bytes) -> bytes:
    parts = (tenant.encode(), collection.encode(), record_id.encode(), field.encode(), ref)
    return b"custodes/field/v1" + _lp(*parts)


def _key(ref: bytes = REF) -> SubjectKey:
    return SubjectKey(ref, AESGCM(DEK))


def test_a_ciphertext_made_outside_custodes_opens(envelope: Envelope) -> None:
    assert envelope.tenant == "acme"
    sealed = bytes.fromhex(PINNED)
    assert sealed[13:] == AESGCM(DEK).encrypt(
        NONCE, "张三".encode(), _ad("acme", "identity", "r-0001", "name", REF)
    )
    opened = envelope.open(_key(), sealed, collection="identity", record_id="r-0001", field="name")
    assert opened.decode() == "张三"
    many = envelope.open_fields(
        _key(), {"name": sealed}, ["name"], collection="identity", record_id="r-0001"
    )
    assert many == {"name": "张三".encode()}


# The envelope holds no state these inputs could leak between examples (only name caches).
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(collection=names, record_id=names, field=names, value=st.binary(max_size=40))
def test_sealed_values_open_under_the_documented_ad(
    envelope: Envelope, collection: str, record_id: str, field: str, value: bytes
) -> None:
    sealed = envelope.seal(_key(), value, collection=collection, record_id=record_id, field=field)
    assert sealed[:1] == b"\x01"
    assert len(sealed) == 1 + 12 + len(value) + 16
    ad = _ad("acme", collection, record_id, field, REF)
    assert AESGCM(DEK).decrypt(sealed[1:13], sealed[13:], ad) == value


def test_open_fields_equals_open_field_by_field(envelope: Envelope) -> None:
    values = {"name": b"Li Lei", "phone": b"13800138000", "address": "北京".encode()}
    sealed = {
        n: envelope.seal(_key(), v, collection="identity", record_id="r1", field=n)
        for n, v in values.items()
    }
    wanted = ["phone", "name", "birth_date"]  # one the record lacks: skipped
    opened = envelope.open_fields(_key(), sealed, wanted, collection="identity", record_id="r1")
    assert list(opened) == ["phone", "name"]
    for name, plaintext in opened.items():
        one = envelope.open(_key(), sealed[name], collection="identity", record_id="r1", field=name)
        assert one == plaintext == values[name]


@pytest.mark.parametrize(
    "place",
    [
        {"collection": "identity", "record_id": "r2"},
        {"collection": "flights", "record_id": "r1"},
    ],
)
def test_open_fields_refuses_a_ciphertext_moved_to_another_place(
    envelope: Envelope, place: dict[str, str]
) -> None:
    sealed = {
        "name": envelope.seal(_key(), b"x", collection="identity", record_id="r1", field="name")
    }
    with pytest.raises(IntegrityError, match="'name'"):
        envelope.open_fields(_key(), sealed, ["name"], **place)


def test_open_fields_refuses_swapped_fields_and_other_subjects(envelope: Envelope) -> None:
    name = envelope.seal(_key(), b"a", collection="identity", record_id="r1", field="name")
    phone = envelope.seal(_key(), b"b", collection="identity", record_id="r1", field="phone")
    swapped = {"name": phone, "phone": name}
    with pytest.raises(IntegrityError):
        envelope.open_fields(_key(), swapped, ["name"], collection="identity", record_id="r1")
    other = _key(b"\xff" * 32)  # the same data key, another subject: the AD still differs
    with pytest.raises(IntegrityError):
        envelope.open_fields(other, {"name": name}, ["name"], collection="identity", record_id="r1")


def test_bad_names_are_input_errors_and_are_not_cached(envelope: Envelope) -> None:
    for bad in ("\ud800", 7):
        with pytest.raises(InputError):
            envelope.seal(_key(), b"x", collection=bad, record_id="r", field="f")  # type: ignore[arg-type]
        with pytest.raises(InputError):
            envelope.open_fields(_key(), {}, [], collection=bad, record_id="r")  # type: ignore[arg-type]
    assert "\ud800" not in envelope._ad_heads


def test_name_caches_stay_bounded(envelope: Envelope) -> None:
    for i in range(1000):
        envelope.seal(_key(), b"x", collection=f"c{i}", record_id="r", field=f"f{i}")
    assert 0 < len(envelope._ad_heads) <= 256
    assert 0 < len(envelope._ad_fields) <= 256
    # Still correct after evictions.
    sealed = envelope.seal(_key(), b"v", collection="c1", record_id="r", field="f1")
    assert envelope.open(_key(), sealed, collection="c1", record_id="r", field="f1") == b"v"


def test_a_key_cannot_be_rebound_to_another_subject() -> None:
    key = _key()
    with pytest.raises(AttributeError):
        key.subject_ref = b"\xff" * 32  # type: ignore[misc]


def test_cached_key_is_gone_after_shred(envelope: Envelope) -> None:
    ref = b"\x07" * 32
    key = envelope.subject_key(ref, create=True)
    assert envelope.subject_key(ref) is key  # served from the cache
    envelope.shred(ref)
    with pytest.raises(NotFound):
        envelope.subject_key(ref)


def test_seal_fields_equals_seal_field_by_field(envelope: Envelope) -> None:
    values = {"name": "张三".encode(), "phone": b"+8613800138000", "empty": b""}
    sealed = envelope.seal_fields(_key(), values, collection="identity", record_id="r-0001")
    assert list(sealed) == list(values)
    for name, ciphertext in sealed.items():
        assert ciphertext[:1] == b"\x01"
        assert len(ciphertext) == 1 + 12 + len(values[name]) + 16
        ad = _ad("acme", "identity", "r-0001", name, REF)  # the documented AD, built here
        assert AESGCM(DEK).decrypt(ciphertext[1:13], ciphertext[13:], ad) == values[name]
    opened = envelope.open_fields(_key(), sealed, values, collection="identity", record_id="r-0001")
    assert opened == values


def test_seal_fields_draws_a_fresh_nonce_for_every_field(envelope: Envelope) -> None:
    values = {f"f{i}": b"same" for i in range(8)}
    nonces = set()
    for record in range(50):
        sealed = envelope.seal_fields(_key(), values, collection="c", record_id=f"r{record}")
        nonces.update(c[1:13] for c in sealed.values())
    assert len(nonces) == 8 * 50


def test_seal_fields_binds_each_field_to_its_place(envelope: Envelope) -> None:
    sealed = envelope.seal_fields(
        _key(), {"name": b"a", "phone": b"b"}, collection="identity", record_id="r1"
    )
    swapped = {"name": sealed["phone"], "phone": sealed["name"]}
    with pytest.raises(IntegrityError):
        envelope.open_fields(_key(), swapped, ["name"], collection="identity", record_id="r1")
    with pytest.raises(IntegrityError):
        envelope.open_fields(_key(), sealed, ["name"], collection="identity", record_id="r2")
    with pytest.raises(IntegrityError):
        envelope.open_fields(
            _key(b"\xff" * 32), sealed, ["name"], collection="identity", record_id="r1"
        )


def test_seal_fields_refuses_bad_names(envelope: Envelope) -> None:
    for bad in ("\ud800", 7):
        with pytest.raises(InputError):
            envelope.seal_fields(_key(), {bad: b"x"}, collection="c", record_id="r")  # type: ignore[dict-item]
        with pytest.raises(InputError):
            envelope.seal_fields(_key(), {"f": b"x"}, collection=bad, record_id="r")  # type: ignore[arg-type]
    assert "\ud800" not in envelope._ad_fields
