"""Pins the public names of custodes.ledger so changes to them are deliberate."""

from __future__ import annotations

import custodes.ledger
from custodes.ledger import merkle, note


def test_package_exports_both_modules_public_names() -> None:
    expected = {
        *merkle.__all__,
        *note.__all__,
        "merkle",
        "note",
        "Ledger",
        "LedgerTamperError",
        "CheckpointLog",
        "SignedCheckpoint",
        "WitnessedCheckpoint",
        "witnessed_checkpoint",
    }
    assert set(custodes.ledger.__all__) == expected
    for name in custodes.ledger.__all__:
        assert getattr(custodes.ledger, name) is not None


def test_merkle_public_names() -> None:
    assert set(merkle.__all__) == {
        "HASH_SIZE",
        "combine_peaks",
        "consistency_proof",
        "consistency_proof_from_hashes",
        "consistency_proof_nodes",
        "inclusion_proof",
        "inclusion_proof_from_hashes",
        "inclusion_proof_nodes",
        "leaf_hash",
        "node_hash",
        "range_peaks",
        "root",
        "root_from_hashes",
        "subtree_roots",
        "verify_consistency",
        "verify_inclusion",
        "verify_inclusion_hash",
    }


def test_note_public_names() -> None:
    assert set(note.__all__) == {
        "ALG_COSIGNATURE_V1",
        "ALG_ED25519",
        "Checkpoint",
        "NoteSigner",
        "WitnessSigner",
        "decode_vkey",
        "encode_vkey",
        "key_id",
        "open_note",
        "verify_cosignature",
    }
