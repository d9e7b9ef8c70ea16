"""A leaked file as custodes reads it: rows, the role of each column, the subject of each row.

Dumps come in whatever shape the leaker left them: CSV, TSV or other delimited text with or
without a header, JSON lines, a JSON array (possibly cut off mid-way, as samples posted for sale
often are), in UTF-8, UTF-16 or GB 18030, gzip-compressed or as the single member of a zip
archive. :func:`read_leak` reads all of these; a row that cannot be parsed is counted and
described (by line and problem, never by value: it may be personal data), not fatal. Column
names are not trusted (leakers rename them): :func:`detect_roles` decides what a column holds
by validating its values (``stdnum`` for ID numbers, ``phonenumbers`` for phones, real
calendar checks for dates), with the header only breaking ties.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from stdnum.cn import ric

from custodes.errors import InputError
from custodes.schema._normalize import NormalizeError
from custodes.schema._normalize import id_number as _id_number
from custodes.schema._normalize import phone as _phone

__all__ = [
    "ColumnRole",
    "LeakTable",
    "clean_id_number",
    "detect_roles",
    "read_leak",
]

MAX_BYTES = 2 * 1024**3  # decompressed; a larger "sample" is a dump to split first
SAMPLE_VALUES = 200  # values per column looked at to decide its role
ROLE_SHARE = 0.6  # share of a column's sampled values that must validate for a role
_MAX_PROBLEMS = 20
_DELIMITERS = (",", "\t", ";", "|")
_JSON_FORMATS = ("json", "jsonl")


class ColumnRole(StrEnum):
    """What a column of a leaked file holds, decided by validating its values."""

    ID_NUMBER = "id_number"  # Chinese resident ID numbers (stdnum.cn.ric checks)
    PHONE = "phone"  # phone numbers (phonenumbers validity)
    NAME = "name"  # personal names, CJK or latin
    DATE = "date"  # calendar dates
    DATETIME = "datetime"  # points in time
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class LeakTable:
    """A parsed leaked file.

    ``rows`` keep the file's own column names and spellings (values as text, exactly as read,
    so representation watermarks can be checked; nested JSON objects are flattened to dotted
    names, JSON numbers keep their written form, JSON null is ""). ``roles`` maps every column
    to its :class:`ColumnRole`. ``id_numbers`` holds, per row, the row's normalized ID number
    (the first valid one in an ``id_number`` column) or ``None``; ``subjects`` the vault
    pseudonym the row resolved to through the blind index, or ``None`` (not ours, or not
    resolved yet: :func:`read_leak` leaves every entry ``None``, tracing fills them in).
    ``bad_rows`` counts rows that could not be parsed (they are not in ``rows``); ``problems``
    describes the first few (line and problem, never values).
    """

    source: str
    format: str  # "csv" | "tsv" | "delimited" | "jsonl" | "json"
    columns: tuple[str, ...]
    rows: list[dict[str, str]]
    roles: dict[str, ColumnRole]
    id_numbers: list[str | None] = field(default_factory=list)
    subjects: list[str | None] = field(default_factory=list)
    bad_rows: int = 0
    problems: tuple[str, ...] = ()
    encoding: str = "utf-8"
    header: bool = True

    def columns_with(self, role: ColumnRole) -> list[str]:
        """Return the columns detected as holding ``role``, in file order."""
        return [name for name in self.columns if self.roles.get(name) is role]


Progress = Callable[[str, int, int], None]
"""A progress callback: ``(stage, done, total)``."""


def read_leak(path: Path | str, *, progress: Progress | None = None) -> LeakTable:
    """Read a leaked file of any supported format and detect its column roles.

    Raises:
        InputError: the file cannot be read, is empty, binary or garbled, too large, or holds
            no row that could be parsed.
    """
    source = Path(path)
    raw = _read_bytes(source)
    text, encoding = _decode(_unpack(raw, source), source)
    fmt = _sniff(text)
    parsed = _parse_json(text) if fmt in _JSON_FORMATS else _parse_delimited(text)
    if not parsed.rows:
        detail = f" ({parsed.bad} unreadable row(s): {parsed.problems[0]})" if parsed.bad else ""
        raise InputError(f"{source}: no row could be read as a {parsed.format} record{detail}")
    if progress is not None:
        progress("read", len(parsed.rows), len(parsed.rows))
    roles = detect_roles(parsed.columns, parsed.rows)
    id_numbers = _row_id_numbers(parsed.rows, [c for c in parsed.columns if roles[c] is _ID])
    return LeakTable(
        source=str(source),
        format=parsed.format,
        columns=parsed.columns,
        rows=parsed.rows,
        roles=roles,
        id_numbers=id_numbers,
        subjects=[None] * len(parsed.rows),
        bad_rows=parsed.bad,
        problems=parsed.problems,
        encoding=encoding,
        header=parsed.header,
    )


# -- bytes to text -----------------------------------------------------------------------------


def _read_bytes(source: Path) -> bytes:
    try:
        if source.stat().st_size > MAX_BYTES:
            raise InputError(f"{source}: larger than {MAX_BYTES // 1024**3} GiB; split it first")
        return source.read_bytes()
    except IsADirectoryError as exc:
        raise InputError(f"{source}: is a directory, not a file") from exc
    except FileNotFoundError as exc:
        raise InputError(f"{source}: no such file") from exc
    except OSError as exc:
        raise InputError(f"{source}: cannot be read ({exc.strerror or exc})") from exc


def _unpack(raw: bytes, source: Path) -> bytes:
    """Return the content of a gzip file or a one-member zip archive; other bytes as they are."""
    try:
        if raw[:2] == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as handle:
                return _bounded(handle, source)
        if raw[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    raise InputError(
                        f"{source}: a zip archive of {len(members)} files; extract the dump "
                        "and trace each file"
                    )
                with archive.open(members[0]) as handle:
                    return _bounded(handle, source)
    except (OSError, EOFError, zipfile.BadZipFile, RuntimeError) as exc:
        raise InputError(f"{source}: a damaged or encrypted archive ({exc})") from exc
    return raw


def _bounded(handle: io.BufferedIOBase | Any, source: Path) -> bytes:
    data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InputError(f"{source}: expands to more than {MAX_BYTES // 1024**3} GiB")
    return bytes(data)


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode(data: bytes, source: Path) -> tuple[str, str]:
    """Decode by byte-order mark, else as UTF-8, else as GB 18030 (Chinese Windows exports).

    Raises:
        InputError: empty, binary (NUL bytes, control characters) or undecodable.
    """
    if not data.strip():
        raise InputError(f"{source}: the file is empty")
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    candidates = [encoding] if encoding else ["utf-8", "gb18030"]
    for name in candidates:
        if name in ("utf-8", "gb18030") and b"\x00" in data[:65536]:
            raise InputError(f"{source}: binary data, not a text dump (NUL bytes)")
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        _check_garbled(text, source)
        return text, name
    raise InputError(f"{source}: not text in UTF-8, UTF-16 or GB 18030")


# Characters no text dump holds: C0 controls other than tab and line ends, DEL and C1
# controls, private-use characters, and the replacement character of a failed decoding.
_GARBAGE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]")


def _check_garbled(text: str, source: Path) -> None:
    head = text[:65536]
    bad = len(_GARBAGE.findall(head))
    if bad > max(3, len(head) // 100):
        raise InputError(f"{source}: garbled or binary text ({bad} control characters)")


# -- text to rows ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Parsed:
    format: str
    columns: tuple[str, ...]
    rows: list[dict[str, str]]
    bad: int = 0
    problems: tuple[str, ...] = ()
    header: bool = True


class _Problems:
    """Counts unreadable rows and keeps the first few descriptions."""

    def __init__(self) -> None:
        self.count = 0
        self.notes: list[str] = []

    def add(self, note: str) -> None:
        self.count += 1
        if len(self.notes) < _MAX_PROBLEMS:
            self.notes.append(note)


def _sniff(text: str) -> str:
    """Return ``json``/``jsonl`` for JSON text, else the delimited format of the first lines."""
    start = text.lstrip("\ufeff \t\r\n")[:1]
    if start in ("[", "{"):
        return "json" if start == "[" else "jsonl"
    return "delimited"


def _parse_json(text: str) -> _Parsed:
    """Parse a JSON array (whole or cut off), an object wrapping one, or JSON lines."""
    body = text.lstrip("\ufeff \t\r\n")
    problems = _Problems()
    if body.startswith("{"):
        whole = _loads(body)
        if not isinstance(whole, dict):  # several values: JSON lines
            return _from_objects("jsonl", _json_lines(text, problems), problems)
        return _from_objects("json", _array_items(_items_of(whole), problems), problems)
    return _from_objects("json", _array_stream(body, problems), problems)


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_int=str, parse_float=str)
    except ValueError:
        return None


def _items_of(whole: dict[str, Any]) -> list[Any]:
    """The records of one JSON object: the list it wraps, the objects it maps keys to (a dump
    keyed by ID number: the key becomes a ``key`` column, never a column name), or itself."""
    inner = _wrapped_list(whole)
    if inner is not None:
        return inner
    if len(whole) > 1 and all(isinstance(v, dict) for v in whole.values()):
        return [{"key": key, **value} for key, value in whole.items()]
    return [whole]


def _wrapped_list(whole: dict[str, Any]) -> list[Any] | None:
    """The one list of objects in ``{"data": [...], ...}``-style wrappers, if there is one."""
    lists = [v for v in whole.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
    return lists[0] if len(lists) == 1 else None


def _array_items(items: list[Any], problems: _Problems) -> Iterator[dict[str, str]]:
    for pos, item in enumerate(items, 1):
        if isinstance(item, dict):
            yield _flatten(item)
        else:
            problems.add(f"item {pos}: not an object")


def _array_stream(body: str, problems: _Problems) -> Iterator[dict[str, str]]:
    """Decode the objects of a JSON array one by one, so a truncated array keeps its rows."""
    decoder = json.JSONDecoder(parse_int=str, parse_float=str)
    pos, item = 1, 0
    end = len(body)
    while True:
        while pos < end and body[pos] in " \t\r\n,":
            pos += 1
        if pos >= end:
            problems.add(f"item {item + 1}: the array is cut off (no closing ']')")
            return
        if body[pos] == "]":
            return
        item += 1
        try:
            value, pos = decoder.raw_decode(body, pos)
        except json.JSONDecodeError as exc:
            problems.add(f"item {item} (line {exc.lineno}): {exc.msg}; the rest is unreadable")
            return
        if isinstance(value, dict):
            yield _flatten(value)
        else:
            problems.add(f"item {item}: not an object")


def _json_lines(text: str, problems: _Problems) -> Iterator[dict[str, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip().rstrip(",")
        if not stripped or stripped in ("[", "]"):
            continue
        value = _loads(stripped)
        if isinstance(value, dict):
            yield _flatten(value)
        else:
            problems.add(f"line {number}: not a JSON object")


def _from_objects(fmt: str, objects: Iterable[dict[str, str]], problems: _Problems) -> _Parsed:
    rows = [row for row in objects if any(row.values())]
    columns: dict[str, None] = {}
    for row in rows:
        for name in row:
            columns.setdefault(name, None)
    return _Parsed(fmt, tuple(columns), rows, problems.count, tuple(problems.notes))


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = json.dumps(value, ensure_ascii=False)
        elif value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = str(value)
    return out


def _delimiter(lines: Sequence[str]) -> str:
    """The delimiter splitting the first lines into the same number (> 1) of fields."""
    best, best_score = ",", -1.0
    for delim in _DELIMITERS:
        counts = [len(next(csv.reader([line], delimiter=delim))) for line in lines]
        if not counts or counts[0] < 2:
            continue
        steady = sum(1 for c in counts if c == counts[0]) / len(counts)
        score = steady * 10 + min(counts[0], 50) / 50
        if score > best_score:
            best, best_score = delim, score
    return best


def _parse_delimited(text: str) -> _Parsed:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    delim = _delimiter(lines)
    fmt = {",": "csv", "\t": "tsv"}.get(delim, "delimited")
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delim)
    problems = _Problems()
    try:
        head = list(itertools.islice(_numbered(reader), 50))
        if not head:
            return _Parsed(fmt, (), [])
        first = head[0][1]
        header = _looks_like_header(first, [row for _, row in head[1:]])
        columns = (
            _column_names(first) if header else tuple(f"column_{i + 1}" for i in range(len(first)))
        )
        width = len(columns)
        rows: list[dict[str, str]] = []
        for line, cells in head[1:] if header else head:
            _add_cells(rows, problems, columns, cells, line)
        append = rows.append
        for cells in reader:  # the hot loop: most rows have the header's width
            if len(cells) == width and (width > 1 or cells[0].strip()):
                append(dict(zip(columns, cells, strict=False)))  # lengths just compared
            else:
                _add_cells(rows, problems, columns, cells, reader.line_num)
    except csv.Error as exc:
        raise InputError(f"line {reader.line_num}: not readable as {fmt} ({exc})") from exc
    return _Parsed(fmt, columns, rows, problems.count, tuple(problems.notes), header)


def _numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    for cells in reader:
        if len(cells) > 1 or (cells and cells[0].strip()):
            yield reader.line_num, cells


def _add_cells(
    rows: list[dict[str, str]],
    problems: _Problems,
    columns: tuple[str, ...],
    cells: list[str],
    line: int,
) -> None:
    if not (len(cells) > 1 or (cells and cells[0].strip())):
        return  # a blank line
    if len(cells) != len(columns):
        problems.add(f"line {line}: {len(cells)} fields where the header has {len(columns)}")
        return
    rows.append(dict(zip(columns, cells, strict=True)))


def _column_names(cells: Sequence[str]) -> tuple[str, ...]:
    names: list[str] = []
    for pos, cell in enumerate(cells, 1):
        name = cell.strip() or f"column_{pos}"
        while name in names:
            name = f"{name}_{pos}"
        names.append(name)
    return tuple(names)


def _looks_like_header(first: Sequence[str], rest: Sequence[Sequence[str]]) -> bool:
    """A first row is a header unless it holds data: a value that validates as an ID number,
    phone, date, number or personal name, while the rows below hold the same kind of data in
    that column."""
    for pos, cell in enumerate(first):
        kind = _data_kind(cell)
        if kind is None:
            continue
        below = [row[pos] for row in rest if pos < len(row)]
        if not below or sum(1 for v in below if _data_kind(v) == kind) * 2 >= len(below):
            return False
    return True


_NUMBER = re.compile(r"[+-]?[0-9][0-9,]*(?:\.[0-9]+)?")


def _data_kind(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    if clean_id_number(text) is not None:
        return "id"
    if _is_phone(text):
        return "phone"
    if _is_datetime(text) or _is_date(text):
        return "time"
    if _NUMBER.fullmatch(text):
        return "number"
    if _is_name(text) and not any(h in text.lower() for hints in _HINTS.values() for h in hints):
        return "name"  # a person's name is data (never a column name to echo in a report)
    return None


# -- column roles ------------------------------------------------------------------------------

_ID = ColumnRole.ID_NUMBER
_HINTS: dict[ColumnRole, tuple[str, ...]] = {
    ColumnRole.ID_NUMBER: ("id", "身份证", "证件", "sfz", "ric", "citizen"),
    ColumnRole.PHONE: ("phone", "mobile", "tel", "手机", "电话", "cell"),
    ColumnRole.NAME: ("name", "姓名", "名字", "xm"),
    ColumnRole.DATETIME: ("time", "_at", "时间", "ts"),
    ColumnRole.DATE: ("date", "日期", "birth", "生日", "dob"),
}


def detect_roles(columns: Sequence[str], rows: Sequence[dict[str, str]]) -> dict[str, ColumnRole]:
    """Return each column's role, decided by validating up to ``SAMPLE_VALUES`` of its values.

    A role needs at least ``ROLE_SHARE`` of the sampled non-empty values to validate; among
    roles that qualify, the best share wins, then a header hint, then the order of
    :class:`ColumnRole`. Names need varied values, so a column of city names is not a name.
    """
    step = max(1, len(rows) // SAMPLE_VALUES)
    sample = rows[::step][:SAMPLE_VALUES]
    return {name: _role_of(name, [row.get(name, "") for row in sample]) for name in columns}


def _role_of(column: str, values: Sequence[str]) -> ColumnRole:
    present = [v.strip() for v in values if v and v.strip()]
    if not present:
        return ColumnRole.OTHER
    shares = {role: _share(check, present) for role, check in _CHECKS}
    if shares[ColumnRole.NAME] and len(set(present)) < 0.3 * len(present):
        shares[ColumnRole.NAME] = 0.0  # few distinct values: places, brands, not people
    qualified = [(share, role) for role, share in shares.items() if share >= ROLE_SHARE]
    if not qualified:
        return ColumnRole.OTHER
    lowered = column.lower()
    order = list(ColumnRole)

    def rank(item: tuple[float, ColumnRole]) -> tuple[float, bool, int]:
        share, role = item
        hinted = any(h in lowered for h in _HINTS.get(role, ()))
        return (round(share, 2), hinted, -order.index(role))

    return max(qualified, key=rank)[1]


def _share(check: Callable[[str], bool], values: Sequence[str]) -> float:
    """The share of ``values`` that pass ``check``; 0.0 as soon as too many have failed for
    the share to reach ``ROLE_SHARE`` (phone parsing is slow; most columns are not phones)."""
    allowed = int(len(values) * (1 - ROLE_SHARE))
    passed = failed = 0
    for value in values:
        if check(value):
            passed += 1
        else:
            failed += 1
            if failed > allowed:
                return 0.0
    return passed / len(values)


_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


def clean_id_number(value: str, *, full: bool = True) -> str | None:
    """Return the normalized ID number in ``value``, or ``None`` if it holds none.

    Spreadsheet habits are undone first: white space, a leading apostrophe, ``="..."``. With
    ``full`` the number is validated as the schema does (``stdnum``: check digit, birth date,
    region); without, only its form and check digit are (``stdnum``'s check digit, about 20
    times cheaper): what tracing needs before an exact lookup, since only valid numbers are
    ever stored.
    """
    if len(value) == 18 and _ID_SHAPE.fullmatch(value):
        text = value  # the common case, without the clean-up below
    else:
        text = value.strip()
        if text.startswith('="') and text.endswith('"'):
            text = text[2:-1]
        text = "".join(text.lstrip("'").split()).upper()
        if not _ID_SHAPE.fullmatch(text):
            return None
    if not full:
        return text if ric.calc_check_digit(text) == text[-1] else None
    try:
        return _id_number(text)
    except NormalizeError:
        return None


def _is_id(value: str) -> bool:
    return clean_id_number(value) is not None


_PHONE_CHARS = re.compile(r"\+?[0-9 ()\-.]{7,24}")


def _is_phone(value: str) -> bool:
    if not _PHONE_CHARS.fullmatch(value) or not 7 <= sum(c.isdigit() for c in value) <= 15:
        return False  # E.164 numbers have at most 15 digits (an ID number has 18)
    if _is_date(value):
        return False
    try:
        _phone(value)  # the schema's check: phonenumbers' validity, with its +86 fast path
    except NormalizeError:
        return False
    return True


_DATE_FORMS = (
    re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})"),
    re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"),
    re.compile(r"(\d{4})\.(\d{1,2})\.(\d{1,2})"),
    re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日"),
    re.compile(r"(\d{4})(\d{2})(\d{2})"),
)


def _is_date(value: str) -> bool:
    for form in _DATE_FORMS:
        match = form.fullmatch(value)
        if match:
            year, month, day = (int(part) for part in match.groups())
            try:
                date(year, month, day)
            except ValueError:
                return False
            return 1850 <= year <= 2200
    return False


_SLASHED_TIME = re.compile(r"\d{4}/\d{1,2}/\d{1,2}[ T]\d{1,2}:\d{2}(:\d{2})?")


def _is_datetime(value: str) -> bool:
    if len(value) < 16 or not value[:4].isdigit():
        return False
    if _SLASHED_TIME.fullmatch(value):
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


# The commonest Chinese surnames (well over 90% of people), and common two-character ones.
_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
    "龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞"
    "左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕"
    "屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧"
    "闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝"
)
_COMPOUND_SURNAMES = frozenset(
    ("欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙", "宇文", "司徒")
)
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]+(?:[·•][\u4e00-\u9fff]+)?")
_LATIN_NAME = re.compile(r"(?:[A-Z][a-z]+|[A-Z]{2,})(?:[ -](?:[A-Z][a-z]+|[A-Z]{2,})){1,2}")


def _is_name(value: str) -> bool:
    if _HAN.fullmatch(value):
        plain = value.replace("·", "").replace("•", "")
        return 2 <= len(plain) <= 5 and (
            value[0] in _SURNAMES or value[:2] in _COMPOUND_SURNAMES or "·" in value
        )
    return len(value) <= 40 and _LATIN_NAME.fullmatch(value) is not None


_CHECKS: tuple[tuple[ColumnRole, Callable[[str], bool]], ...] = (
    (ColumnRole.ID_NUMBER, _is_id),
    (ColumnRole.PHONE, _is_phone),
    (ColumnRole.NAME, _is_name),
    (ColumnRole.DATE, _is_date),
    (ColumnRole.DATETIME, _is_datetime),
)


def _row_id_numbers(rows: Sequence[dict[str, str]], id_columns: Sequence[str]) -> list[str | None]:
    """Per row, the first ID number of the right form and check digit in an ID column."""
    if not id_columns:
        return [None] * len(rows)
    out: list[str | None] = []
    for row in rows:
        found = None
        for name in id_columns:
            value = row.get(name)
            if value and (found := clean_id_number(value, full=False)) is not None:
                break
        out.append(found)
    return out
