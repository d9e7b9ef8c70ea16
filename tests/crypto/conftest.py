"""Fixtures for the crypto tests: a fresh key file, key store, envelope and blind index."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.crypto import BlindIndex, Envelope, LocalKeyFile, RootKeys, SubjectKeyStore

TENANT = "acme"


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    """The keys directory of a fresh vault home."""
    return tmp_path / "home" / "keys"


@pytest.fixture
def key_file(keys_dir: Path) -> LocalKeyFile:
    """A newly created root key file."""
    return LocalKeyFile.create(keys_dir / "root.key")


@pytest.fixture
def root_keys(key_file: LocalKeyFile) -> RootKeys:
    """The root keys of the test tenant."""
    return key_file.root_keys(TENANT)


@pytest.fixture
def keystore(keys_dir: Path) -> Iterator[SubjectKeyStore]:
    """An open subject key store beside the root key."""
    store = SubjectKeyStore(keys_dir / "subject-keys.db")
    yield store
    store.close()


@pytest.fixture
def envelope(root_keys: RootKeys, keystore: SubjectKeyStore) -> Envelope:
    """An envelope for the test tenant."""
    return Envelope(tenant=TENANT, root_keys=root_keys, keystore=keystore)


@pytest.fixture
def blind(root_keys: RootKeys) -> BlindIndex:
    """A blind index for the test tenant."""
    return BlindIndex(
        tenant=TENANT, index_key=root_keys.index_key, pseudonym_key=root_keys.pseudonym_key
    )
