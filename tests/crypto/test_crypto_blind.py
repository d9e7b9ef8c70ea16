"""Blind indexes: deterministic keyed tokens, separated by tenant, place, purpose and key."""

from __future__ import annotations

import hashlib
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from custodes.crypto import BlindIndex
from custodes.errors import ConfigError, InputError

INDEX_KEY = bytes(range(32))
PSEUDONYM_KEY = bytes(range(32, 64))
ID_NUMBER = "11010519491231002X"


def _blind(tenant: str = "acme", index_key: bytes = INDEX_KEY) -> BlindIndex:
    return BlindIndex(tenant=tenant, index_key=index_key, pseudonym_key=PSEUDONYM_KEY)


def test_outputs_have_the_documented_shape() -> None:
    blind = _blind()
    assert len(blind.subject_ref(ID_NUMBER)) == 32
    assert len(blind.token("people", "phone", "+8613800138000")) == 32
    pseudonym = blind.pseudonym(ID_NUMBER)
    assert len(pseudonym) == 32
    assert pseudonym == pseudonym.lower()
    int(pseudonym, 16)


@given(st.text(), st.text(), st.text())
def test_deterministic_across_instances(collection: str, field: str, value: str) -> None:
    assert _blind().token(collection, field, value) == _blind().token(collection, field, value)
    assert _blind().subject_ref(value) == _blind().subject_ref(value)
    assert _blind().pseudonym(value) == _blind().pseudonym(value)


def test_tokens_differ_per_tenant_collection_field_value_and_key() -> None:
    base = _blind().token("people", "phone", "123")
    variants = [
        _blind(tenant="other").token("people", "phone", "123"),
        _blind().token("staff", "phone", "123"),
        _blind().token("people", "mobile", "123"),
        _blind().token("people", "phone", "124"),
        _blind(index_key=os.urandom(32)).token("people", "phone", "123"),
        # Shifted boundaries between parts must not collide (length prefixes).
        _blind().token("peoplep", "hone", "123"),
        _blind().token("people", "phone1", "23"),
    ]
    assert len({base, *variants}) == len(variants) + 1


def test_subject_ref_differs_per_tenant_and_key() -> None:
    refs = {
        _blind().subject_ref(ID_NUMBER),
        _blind(tenant="other").subject_ref(ID_NUMBER),
        _blind(index_key=os.urandom(32)).subject_ref(ID_NUMBER),
    }
    assert len(refs) == 3


def test_subject_ref_is_not_an_unkeyed_hash() -> None:
    ref = _blind().subject_ref(ID_NUMBER)
    assert ref != hashlib.sha256(ID_NUMBER.encode()).digest()
    assert ref != hashlib.sha256(("acme" + ID_NUMBER).encode()).digest()


def test_a_subject_ref_is_not_a_field_token() -> None:
    blind = _blind()
    assert blind.subject_ref(ID_NUMBER) != blind.token("", "", ID_NUMBER)


def test_pseudonym_reveals_nothing_about_the_subject_ref() -> None:
    blind = _blind()
    ref = blind.subject_ref(ID_NUMBER)
    pseudonym = blind.pseudonym(ID_NUMBER)
    assert pseudonym != ref[:16].hex()
    assert pseudonym not in ref.hex()
    assert bytes.fromhex(pseudonym) not in ref
    # Same construction under the index key gives something else: the keys really differ.
    same_key = BlindIndex(tenant="acme", index_key=INDEX_KEY, pseudonym_key=os.urandom(32))
    assert same_key.subject_ref(ID_NUMBER) == ref


def test_pseudonym_differs_under_another_pseudonym_key_or_tenant() -> None:
    other_key = BlindIndex(tenant="acme", index_key=INDEX_KEY, pseudonym_key=os.urandom(32))
    assert other_key.pseudonym(ID_NUMBER) != _blind().pseudonym(ID_NUMBER)
    assert _blind(tenant="other").pseudonym(ID_NUMBER) != _blind().pseudonym(ID_NUMBER)
    assert other_key.subject_ref(ID_NUMBER) == _blind().subject_ref(ID_NUMBER)


def test_pseudonym_of_ref_matches_pseudonym_of_id_number() -> None:
    blind = _blind()
    assert blind.pseudonym_of_ref(blind.subject_ref(ID_NUMBER)) == blind.pseudonym(ID_NUMBER)
    assert blind.pseudonym_of_ref(b"x" * 32) != blind.pseudonym(ID_NUMBER)
    with pytest.raises(InputError, match="subject_ref"):
        blind.pseudonym_of_ref(b"")


def test_no_normalization_is_done() -> None:
    blind = _blind()
    assert blind.subject_ref("11010519491231002x") != blind.subject_ref(ID_NUMBER)


def test_keys_are_checked() -> None:
    with pytest.raises(ConfigError, match="index_key must be 32 bytes"):
        BlindIndex(tenant="t", index_key=b"short", pseudonym_key=PSEUDONYM_KEY)
    with pytest.raises(ConfigError, match="must differ"):
        BlindIndex(tenant="t", index_key=INDEX_KEY, pseudonym_key=INDEX_KEY)


def test_invalid_text_is_an_input_error_naming_the_field_not_the_value() -> None:
    with pytest.raises(InputError, match="id_number") as caught:
        _blind().subject_ref("110105\udc80")
    assert "110105" not in str(caught.value)
    with pytest.raises(InputError, match="phone"):
        _blind().token("people", "phone", "138\udc80")
