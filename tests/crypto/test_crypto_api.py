"""The public surface of custodes.crypto, and that no object shows key bytes."""

from __future__ import annotations

import custodes.crypto
from custodes.crypto import BlindIndex, Envelope, KeyProvider, LocalKeyFile, RootKeys


def test_public_names_are_pinned() -> None:
    assert sorted(custodes.crypto.__all__) == [
        "BlindIndex",
        "Envelope",
        "KeyProvider",
        "LocalKeyFile",
        "RootKeys",
        "SubjectKey",
        "SubjectKeyStore",
    ]
    for name in custodes.crypto.__all__:
        assert getattr(custodes.crypto, name).__module__.startswith("custodes.crypto._")


def test_local_key_file_is_a_key_provider(key_file: LocalKeyFile) -> None:
    assert isinstance(key_file, KeyProvider)


def test_reprs_never_show_key_material(
    key_file: LocalKeyFile, root_keys: RootKeys, envelope: Envelope, blind: BlindIndex
) -> None:
    key = envelope.subject_key(b"s" * 32, create=True)
    texts = [repr(key_file), repr(root_keys), str(root_keys), repr(envelope), repr(blind)]
    texts.append(repr(key))
    secrets = [
        key_file._secret,
        root_keys.kek,
        root_keys.index_key,
        root_keys.pseudonym_key,
        root_keys.audit_key,
    ]
    for text in texts:
        for secret in secrets:
            assert secret.hex() not in text
            assert repr(secret) not in text
    assert root_keys.key_id in repr(root_keys)
    assert not hasattr(key, "key")
    assert not hasattr(key, "__dict__")
