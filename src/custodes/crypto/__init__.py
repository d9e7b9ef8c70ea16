"""Keys, envelope encryption, blind indexes and shredding.

- :class:`LocalKeyFile` (a :class:`KeyProvider`) holds the root secret and derives a tenant's
  :class:`RootKeys` with HKDF-SHA256.
- :class:`SubjectKeyStore` keeps each subject's data key, wrapped under the KEK, in its own file
  beside the root key, never in the records database.
- :class:`Envelope` seals and opens field values with AES-256-GCM under per-subject keys
  (:class:`SubjectKey`), bound to tenant, collection, record, field and subject; ``shred``
  deletes a subject's key so its ciphertexts can never be opened again.
- :class:`BlindIndex` makes keyed lookup tokens, subject references and pseudonyms.
"""

from __future__ import annotations

from custodes.crypto._blind import BlindIndex
from custodes.crypto._envelope import Envelope, SubjectKey
from custodes.crypto._keys import KeyProvider, LocalKeyFile, RootKeys
from custodes.crypto._keystore import SubjectKeyStore

__all__ = [
    "BlindIndex",
    "Envelope",
    "KeyProvider",
    "LocalKeyFile",
    "RootKeys",
    "SubjectKey",
    "SubjectKeyStore",
]
