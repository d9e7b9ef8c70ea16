"""BlindIndex.tokens and pseudonyms_of_refs equal the one-at-a-time functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.crypto import BlindIndex
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
