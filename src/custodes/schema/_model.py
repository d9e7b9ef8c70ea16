"""Collections and fields as a deployment declares them, read from a TOML schema file.

The file format is documented in the header of ``custodes/defaults/schema.toml``.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from custodes.errors import ConfigError, InputError
from custodes.schema import _normalize as norm

__all__ = ["Collection", "DataClass", "Field", "FieldType", "Schema"]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_FIELD_KEYS = frozenset({"class", "type", "indexed", "required", "max_length"})
_COLLECTION_KEYS = frozenset({"description", "fields"})
_E = TypeVar("_E", bound=StrEnum)


class DataClass(StrEnum):
    """How sensitive a field is; policies grant access by class as well as by field."""

    IDENTIFIER = "identifier"
    CONTACT = "contact"
    LOCATION = "location"
    FINANCIAL = "financial"
    CRIMINAL = "criminal"
    SPECIAL = "special"
    OTHER = "other"


class FieldType(StrEnum):
    """What a field holds, which decides how its values are checked and normalized."""

    STRING = "string"
    NAME = "name"
    ID_NUMBER = "id_number"
    PHONE = "phone"
    DATE = "date"
    DATETIME = "datetime"
    INTEGER = "integer"
    DECIMAL = "decimal"
    GEO = "geo"


DEFAULT_MAX_LENGTH: Mapping[FieldType, int] = MappingProxyType(
    {
        FieldType.ID_NUMBER: 18,
        FieldType.PHONE: 16,
        FieldType.DATE: 10,
        FieldType.DATETIME: 32,
        FieldType.INTEGER: 20,
        FieldType.DECIMAL: 32,
        FieldType.GEO: 32,
        FieldType.NAME: 128,
        FieldType.STRING: 256,
    }
)

_NORMALIZERS: Mapping[FieldType, Callable[[str], str]] = MappingProxyType(
    {
        FieldType.STRING: norm.string_value,
        FieldType.NAME: norm.name_value,
        FieldType.ID_NUMBER: norm.id_number,
        FieldType.PHONE: norm.phone,
        FieldType.DATE: norm.date_value,
        FieldType.DATETIME: norm.datetime_value,
        FieldType.INTEGER: norm.integer_value,
        FieldType.DECIMAL: norm.decimal_value,
        FieldType.GEO: norm.geo_value,
    }
)


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a collection: its data class, type, and whether it is indexed or required."""

    name: str
    data_class: DataClass
    type: FieldType
    indexed: bool
    required: bool
    max_length: int
    # Looked up once: every value written goes through normalize (the bulk-ingest hot path).
    _normalizer: Callable[[str], str] = dataclass_field(init=False, repr=False, compare=False)
    _numeric: bool = dataclass_field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_normalizer", _NORMALIZERS[self.type])
        object.__setattr__(self, "_numeric", self.type in (FieldType.INTEGER, FieldType.DECIMAL))

    def normalize(self, value: object, *, max_value_bytes: int | None = None) -> str:
        """Return the canonical string form of ``value`` for this field.

        Raises:
            InputError: not text (or an int, for integer/decimal fields), malformed for the
                field's type, or longer than the field's limit (or ``max_value_bytes``).
        """
        if type(value) is not str:
            if self._numeric and isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            elif not isinstance(value, str):
                raise InputError(f"field '{self.name}' must be text")
        try:
            text = self._normalizer(value)
        except norm.NormalizeError as exc:
            raise InputError(f"field '{self.name}': {exc}") from exc
        limit = self.max_length
        if max_value_bytes is not None and max_value_bytes < limit:
            limit = max_value_bytes
        size = len(text) if text.isascii() else len(text.encode())
        if size > limit:
            raise InputError(f"field '{self.name}' is {size} bytes; the limit is {limit}")
        return text


@dataclass(frozen=True)
class Collection:
    """A kind of record (hotel stays, flights, ...) and its fields, in declaration order."""

    name: str
    description: str
    fields: Mapping[str, Field]

    @property
    def indexed_fields(self) -> tuple[str, ...]:
        """The names of the fields that allow exact-match lookups."""
        return tuple(name for name, f in self.fields.items() if f.indexed)

    def field(self, name: str) -> Field:
        """Return the field called ``name``.

        Raises:
            InputError: the collection has no such field (the message lists those it has).
        """
        try:
            return self.fields[name]
        except (KeyError, TypeError):
            raise InputError(
                f"collection '{self.name}' has no field {_quote(name)} (fields: {self._names()})"
            ) from None

    def validate(
        self, values: Mapping[str, object], *, max_value_bytes: int | None = None
    ) -> dict[str, str]:
        """Return the normalized values, in schema field order.

        Raises:
            InputError: an unknown field, a missing required field, or a value that is empty,
                malformed or too long (the field's limit, or ``max_value_bytes`` if smaller).
        """
        if not isinstance(values, Mapping):
            raise InputError(f"values for collection '{self.name}' must be a mapping of fields")
        fields = self.fields
        if not values.keys() <= fields.keys():
            unknown = [name for name in values if name not in fields]
            listed = ", ".join(_quote(name) for name in unknown)
            plural = "fields" if len(unknown) > 1 else "field"
            raise InputError(
                f"collection '{self.name}' has no {plural} {listed} (fields: {self._names()})"
            )
        if not self._required <= values.keys():
            missing = [n for n, f in fields.items() if f.required and n not in values]
            raise InputError(
                f"collection '{self.name}' is missing required field(s): {', '.join(missing)}"
            )
        return {
            name: f.normalize(values[name], max_value_bytes=max_value_bytes)
            for name, f in fields.items()
            if name in values
        }

    @functools.cached_property
    def _required(self) -> frozenset[str]:
        return frozenset(name for name, f in self.fields.items() if f.required)

    def _names(self) -> str:
        return ", ".join(self.fields)


@dataclass(frozen=True)
class Schema:
    """The collections of a deployment; ``identity.id_number`` identifies every subject."""

    collections: Mapping[str, Collection]

    subject_field: ClassVar[tuple[str, str]] = ("identity", "id_number")

    @classmethod
    def loads(cls, text: str, *, source: str = "<schema>") -> Schema:
        """Parse a schema from TOML text; ``source`` names it in error messages.

        Raises:
            ConfigError: invalid TOML, unknown keys, classes or types, wrong value types, or no
                ``identity`` collection with an ``id_number`` field of type ``id_number``.
        """
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
        return _Parser(source).schema(raw)

    @classmethod
    def load(cls, path: Path) -> Schema:
        """Read and parse the schema file at ``path``.

        Raises:
            ConfigError: the file cannot be read, or its contents are invalid (see ``loads``).
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the schema file: {exc}") from exc
        return cls.loads(text, source=str(path))

    @classmethod
    def default(cls) -> Schema:
        """Return the schema packaged with custodes (``custodes/defaults/schema.toml``).

        Raises:
            ConfigError: the packaged file is missing or invalid (a broken installation).
        """
        return _default_schema()

    def collection(self, name: str) -> Collection:
        """Return the collection called ``name``.

        Raises:
            InputError: no such collection (the message lists the ones there are).
        """
        try:
            return self.collections[name]
        except (KeyError, TypeError):
            known = ", ".join(self.collections)
            raise InputError(f"unknown collection {_quote(name)} (collections: {known})") from None

    def normalize_subject(self, id_number: object) -> str:
        """Return the canonical form of a subject's ID number.

        Raises:
            InputError: the ID number is malformed (the message names the problem).
        """
        return self._subject_spec.normalize(id_number)

    @functools.cached_property
    def _subject_spec(self) -> Field:
        collection, field = self.subject_field
        return self.collection(collection).field(field)


@functools.cache
def _default_schema() -> Schema:
    # Cached: the schema is immutable (read-only mappings of frozen objects).
    resource = resources.files("custodes").joinpath("defaults/schema.toml")
    try:
        text = resource.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"the packaged default schema is missing: {exc}") from exc
    return Schema.loads(text, source="custodes/defaults/schema.toml")


def _quote(name: object) -> str:
    """Show a caller-supplied name in a message, safely: short, one line."""
    if isinstance(name, str) and _NAME.fullmatch(name):
        return f"'{name}'"
    shown = repr(name)
    return shown if len(shown) <= 40 else shown[:37] + "..."


class _Parser:
    """Turns the parsed TOML into a Schema, naming the key path of anything wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {problem}")

    def schema(self, raw: dict[str, Any]) -> Schema:
        self._no_unknown(raw, frozenset({"collections"}), "")
        tables = self._table(raw.get("collections"), "collections")
        collections = {
            name: self.collection(name, body, f"collections.{name}")
            for name, body in tables.items()
        }
        self._check_subject(collections)
        return Schema(collections=MappingProxyType(collections))

    def collection(self, name: str, body: object, path: str) -> Collection:
        self._check_name(name, path)
        table = self._table(body, path)
        self._no_unknown(table, _COLLECTION_KEYS, path)
        description = table.get("description", "")
        if not isinstance(description, str):
            raise self.fail(f"{path}.description", "must be a string")
        fields = self._table(table.get("fields"), f"{path}.fields")
        if not fields:
            raise self.fail(f"{path}.fields", "a collection needs at least one field")
        parsed = {n: self.field(n, b, f"{path}.fields.{n}") for n, b in fields.items()}
        return Collection(name=name, description=description, fields=MappingProxyType(parsed))

    def field(self, name: str, body: object, path: str) -> Field:
        self._check_name(name, path)
        table = self._table(body, path)
        self._no_unknown(table, _FIELD_KEYS, path)
        data_class = self._enum(table, "class", DataClass, path)
        field_type = self._enum(table, "type", FieldType, path)
        max_length = table.get("max_length", DEFAULT_MAX_LENGTH[field_type])
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise self.fail(f"{path}.max_length", "must be a positive whole number of bytes")
        return Field(
            name=name,
            data_class=data_class,
            type=field_type,
            indexed=self._flag(table, "indexed", path),
            required=self._flag(table, "required", path),
            max_length=max_length,
        )

    def _enum(self, table: dict[str, Any], key: str, kind: type[_E], path: str) -> _E:
        word, words = ("class", "classes") if kind is DataClass else ("type", "types")
        choices = ", ".join(kind)
        if key not in table:
            raise self.fail(f"{path}.{key}", f"missing (one of: {choices})")
        value = table[key]
        try:
            return kind(value)
        except ValueError:
            raise self.fail(
                f"{path}.{key}", f"unknown {word} {value!r} ({words}: {choices})"
            ) from None

    def _flag(self, table: dict[str, Any], key: str, path: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(f"{path}.{key}", "must be true or false")
        return value

    def _table(self, value: object, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            what = "missing" if value is None else "must be a table"
            raise self.fail(path, what)
        return value

    def _no_unknown(self, table: dict[str, Any], allowed: frozenset[str], path: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            where = f"{path}.{unknown[0]}" if path else unknown[0]
            raise self.fail(where, f"unknown key (allowed here: {', '.join(sorted(allowed))})")

    def _check_name(self, name: str, path: str) -> None:
        if not _NAME.fullmatch(name):
            raise self.fail(path, "names must be lower-case letters, digits and '_'")

    def _check_subject(self, collections: Mapping[str, Collection]) -> None:
        collection, field = Schema.subject_field
        if collection not in collections:
            raise self.fail("collections", f"the '{collection}' collection is required")
        subject = collections[collection].fields.get(field)
        if subject is None:
            raise self.fail(f"collections.{collection}.fields", f"the '{field}' field is required")
        if subject.type is not FieldType.ID_NUMBER:
            raise self.fail(f"collections.{collection}.fields.{field}.type", "must be 'id_number'")
