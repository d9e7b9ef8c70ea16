"""The access ledger: RFC 9162 Merkle trees, C2SP signed notes and the persistent log.

``custodes.ledger.merkle`` hashes trees, makes proofs and verifies them;
``custodes.ledger.note`` signs and opens notes, checkpoints and witness cosignatures. Neither
touches storage. :class:`Ledger` serves roots and proofs from the Merkle nodes the store keeps
beside its events, and verifies the stored log against them. :class:`CheckpointLog` signs
checkpoints of it into files of the vault home; ``custodes.ledger.witness`` checks and cosigns
them, and :func:`witnessed_checkpoint` picks the largest checkpoint a configured witness cosigned.
"""

from __future__ import annotations

from custodes.ledger import merkle, note
from custodes.ledger._checkpoint import CheckpointLog, SignedCheckpoint
from custodes.ledger._log import Ledger, LedgerTamperError
from custodes.ledger._witnessed import WitnessedCheckpoint, witnessed_checkpoint
from custodes.ledger.merkle import (
    HASH_SIZE,
    combine_peaks,
    consistency_proof,
    consistency_proof_from_hashes,
    consistency_proof_nodes,
    inclusion_proof,
    inclusion_proof_from_hashes,
    inclusion_proof_nodes,
    leaf_hash,
    node_hash,
    range_peaks,
    root,
    root_from_hashes,
    subtree_roots,
    verify_consistency,
    verify_inclusion,
    verify_inclusion_hash,
)
from custodes.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Checkpoint,
    NoteSigner,
    WitnessSigner,
    decode_vkey,
    encode_vkey,
    key_id,
    open_note,
    verify_cosignature,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "HASH_SIZE",
    "Checkpoint",
    "CheckpointLog",
    "Ledger",
    "LedgerTamperError",
    "NoteSigner",
    "SignedCheckpoint",
    "WitnessSigner",
    "WitnessedCheckpoint",
    "combine_peaks",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "consistency_proof_nodes",
    "decode_vkey",
    "encode_vkey",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "inclusion_proof_nodes",
    "key_id",
    "leaf_hash",
    "merkle",
    "node_hash",
    "note",
    "open_note",
    "range_peaks",
    "root",
    "root_from_hashes",
    "subtree_roots",
    "verify_consistency",
    "verify_cosignature",
    "verify_inclusion",
    "verify_inclusion_hash",
    "witnessed_checkpoint",
]
