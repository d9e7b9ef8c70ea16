"""Collections, fields and data classes of a deployment, and the normalization of values.

A schema file declares which collections (kinds of record) the vault holds, the fields of each,
their data class (how sensitive they are) and type (how values are checked). Every value is
normalized to one canonical spelling before it is sealed or blind-indexed, so that exact-match
lookups find it however it was typed.
"""

from __future__ import annotations

from custodes.schema._model import Collection, DataClass, Field, FieldType, Schema
from custodes.schema._normalize import normalize_id_number, normalize_phone

__all__ = [
    "Collection",
    "DataClass",
    "Field",
    "FieldType",
    "Schema",
    "normalize_id_number",
    "normalize_phone",
]
