"""Leak forensics: canary subjects, fingerprinted exports, and tracing a leaked file.

- :func:`plant_canaries` writes synthetic people no legitimate work touches; any access to one
  is a ``canary_touch`` alert (streaming detection reads the registry).
- :func:`export_fingerprinted` exports a collection with a recipient-specific fingerprint:
  per-export canary rows and a keyed representation watermark, recorded on the ledger.
- :func:`match_fingerprints` and :func:`canaries_in` say which export and which canaries a
  parsed leak (:class:`LeakTable`, from :func:`read_leak`) carries; :func:`trace_leak` puts it
  all together for ``custodes trace-leak``.
- :func:`fingerprint_read` marks a bulk read (a ``find`` of at least
  ``forensics.fingerprint_min_rows`` records) with its reader's watermark, recorded like an
  export's.

Everything reads the vault through its interfaces (store queries by token or pseudonym, the
blind index, the ledger); nothing decrypts the vault wholesale. The registry under
``<home>/forensics/`` holds pseudonyms and keyed tokens only (docs/forensics.md).
"""

from __future__ import annotations

from custodes.forensics._canary import (
    CanaryHit,
    PlantResult,
    canaries_in,
    plant_canaries,
    planted_canaries,
)
from custodes.forensics._fingerprint import (
    CANARY_SHARE,
    HIGH_CONFIDENCE,
    MAX_CANARIES,
    MIN_CANARIES,
    REPORT_CONFIDENCE,
    SCHEME,
    ExportMatch,
    FingerprintedExport,
    export_fingerprinted,
    export_key,
    match_fingerprints,
    read_exports,
)
from custodes.forensics._leak import ColumnRole, LeakTable, detect_roles, read_leak
from custodes.forensics._leaksim import insider_leak
from custodes.forensics._reads import fingerprint_read
from custodes.forensics._registry import CanaryRow, ExportRecord, PlantedCanary
from custodes.forensics._trace import (
    CollectionShare,
    LeakReport,
    Resolution,
    Suspect,
    rank_suspects,
    resolve_subjects,
    trace_leak,
)

__all__ = [
    "CANARY_SHARE",
    "HIGH_CONFIDENCE",
    "MAX_CANARIES",
    "MIN_CANARIES",
    "REPORT_CONFIDENCE",
    "SCHEME",
    "CanaryHit",
    "CanaryRow",
    "CollectionShare",
    "ColumnRole",
    "ExportMatch",
    "ExportRecord",
    "FingerprintedExport",
    "LeakReport",
    "LeakTable",
    "PlantResult",
    "PlantedCanary",
    "Resolution",
    "Suspect",
    "canaries_in",
    "detect_roles",
    "export_fingerprinted",
    "export_key",
    "fingerprint_read",
    "insider_leak",
    "match_fingerprints",
    "plant_canaries",
    "planted_canaries",
    "rank_suspects",
    "read_exports",
    "read_leak",
    "resolve_subjects",
    "trace_leak",
]
