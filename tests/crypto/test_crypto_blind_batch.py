"""BlindIndex.tokens and pseudonyms_of_refs equal the one-at-a-time functions."""

from __future__ import annotations

import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.crypto import BlindIndex
from custodes.crypto._blind import _HEADS_MAX
from custodes.crypto._keys import length_prefixed, prefixed_text, text_part, utf8
from custodes.errors import InputError

INDEX = BlindIndex(tenant="t", index_key=b"\x01" * 32, pseudonym_key=b"\x02" * 32)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(max_size=40)), field=st.text(min_size=1, max_size=10))
def test_tokens_equal_token_of_each_value(values: list[str], field: str) -> None:
    clean = values
    try:
        expected = [INDEX.token("identity", field, v) for v in clean]
    except InputError:
        with pytest.raises(InputError):
            INDEX.tokens("identity", field, clean)
        return
    assert INDEX.tokens("identity", field, clean) == expected


@settings(max_examples=200, deadline=None)
@given(refs=st.lists(st.binary(min_size=1, max_size=40)))
def test_pseudonyms_of_refs_equal_pseudonym_of_each(refs: list[bytes]) -> None:
    assert INDEX.pseudonyms_of_refs(refs) == [INDEX.pseudonym_of_ref(r) for r in refs]
    with pytest.raises(InputError):
        INDEX.pseudonyms_of_refs([b""])


@pytest.mark.parametrize("bad", ["ok\ud800", b"bytes", 17])
def test_tokens_refuse_what_is_not_text_naming_the_field_not_the_value(bad: object) -> None:
    with pytest.raises(InputError, match="value of field 'phone'") as raised:
        INDEX.tokens("identity", "phone", ["13800000000", bad])  # type: ignore[list-item]
    assert "13800000000" not in str(raised.value)


@settings(max_examples=200, deadline=None)
@given(collection=st.text(max_size=12), field=st.text(max_size=12), value=st.text(max_size=40))
def test_a_token_is_the_hmac_of_the_documented_input(
    collection: str, field: str, value: str
) -> None:
    # docs/architecture.md: HMAC-SHA256(index key, length_prefixed("field", tenant, collection,
    # field, value)); the encoded head of each (collection, field) is kept between calls.
    try:
        message = length_prefixed(b"field", b"t", *(p.encode() for p in (collection, field, value)))
    except UnicodeEncodeError:
        with pytest.raises(InputError):
            INDEX.token(collection, field, value)
        return
    for _ in range(2):
        assert INDEX.token(collection, field, value) == hmac.digest(b"\x01" * 32, message, "sha256")


def test_tokens_stay_right_past_the_kept_heads() -> None:
    index = BlindIndex(tenant="t", index_key=b"\x01" * 32, pseudonym_key=b"\x02" * 32)
    expected = [index.tokens(f"c{i}", "f", ["v"])[0] for i in range(_HEADS_MAX + 50)]
    assert [index.token(f"c{i}", "f", "v") for i in range(_HEADS_MAX + 50)] == expected
    assert [index.token(f"c{i}", "f", "v") for i in range(_HEADS_MAX + 50)] == expected


@pytest.mark.parametrize("names", [(17, "f"), ("c", b"f"), (["c"], "f")])
def test_a_token_of_names_that_are_not_text_is_refused(names: tuple[object, object]) -> None:
    with pytest.raises(InputError):
        INDEX.token(*names, "v")  # type: ignore[arg-type]


@given(st.text(max_size=30) | st.integers() | st.binary(max_size=4))
def test_one_text_part_is_length_prefixed_utf8_or_the_same_error(value: object) -> None:
    try:
        expected = length_prefixed(utf8(value, "record id"))  # type: ignore[arg-type]
    except InputError as exc:
        assert text_part(value) is None
        with pytest.raises(InputError, match="record id") as raised:
            prefixed_text(value, "record id")  # type: ignore[arg-type]
        assert str(raised.value) == str(exc)
        return
    assert text_part(value) == expected
    assert prefixed_text(value, "record id") == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["ok\ud800", b"bytes", 17])
def test_a_token_refuses_what_is_not_text_naming_the_field_not_the_value(bad: object) -> None:
    with pytest.raises(InputError, match="value of field 'phone'") as raised:
        INDEX.token("identity", "phone", bad)  # type: ignore[arg-type]
    assert "ok" not in str(raised.value)
