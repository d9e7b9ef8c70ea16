"""Reading leaked files: every format, any header, bad rows counted, clear errors, no values
echoed. No vault is involved: read_leak works on the file alone."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.errors import InputError
from custodes.forensics import ColumnRole, LeakTable, read_leak
from custodes.forensics._leak import clean_id_number
from custodes.sim import generate_people

PEOPLE = generate_people(60, seed=5)
ROWS = [
    {
        "姓名": p.name,
        "证件号": p.id_number,
        "mobile": p.phone,
        "born": p.birth_date.isoformat(),
        "addr": p.address,
    }
    for p in PEOPLE
]
ROLES = {
    "姓名": ColumnRole.NAME,
    "证件号": ColumnRole.ID_NUMBER,
    "mobile": ColumnRole.PHONE,
    "born": ColumnRole.DATE,
    "addr": ColumnRole.OTHER,
}


def _delimited(delimiter: str, *, header: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
    if header:
        writer.writerow(ROWS[0])
    writer.writerows([list(row.values()) for row in ROWS])
    return buffer.getvalue()


def _jsonl() -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ROWS)


def _array(indent: int | None = None) -> str:
    return json.dumps(ROWS, ensure_ascii=False, indent=indent)


def _gzip(path: Path, text: str) -> None:
    path.write_bytes(gzip.compress(text.encode()))


def _zip(path: Path, text: str) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("dump.csv", text)


FORMS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "csv": ("csv", lambda p: p.write_text(_delimited(","), encoding="utf-8")),
    "csv-crlf-bom": (
        "csv",
        lambda p: p.write_bytes(b"\xef\xbb\xbf" + _delimited(",").replace("\n", "\r\n").encode()),
    ),
    "tsv": ("tsv", lambda p: p.write_text(_delimited("\t"), encoding="utf-8")),
    "semicolons": ("delimited", lambda p: p.write_text(_delimited(";"), encoding="utf-8")),
    "pipes-gb18030": ("delimited", lambda p: p.write_bytes(_delimited("|").encode("gb18030"))),
    "csv-utf16": ("csv", lambda p: p.write_text(_delimited(","), encoding="utf-16")),
    "jsonl": ("jsonl", lambda p: p.write_text(_jsonl(), encoding="utf-8")),
    "json-array": ("json", lambda p: p.write_text(_array(), encoding="utf-8")),
    "json-pretty": ("json", lambda p: p.write_text(_array(2), encoding="utf-8")),
    "json-wrapped": (
        "json",
        lambda p: p.write_text(
            json.dumps({"total": 60, "data": ROWS}, ensure_ascii=False), encoding="utf-8"
        ),
    ),
    "csv-gzip": ("csv", lambda p: _gzip(p, _delimited(","))),
    "csv-zip": ("csv", lambda p: _zip(p, _delimited(","))),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_every_format_reads_the_same_rows_and_roles(form: str, tmp_path: Path) -> None:
    fmt, write = FORMS[form]
    path = tmp_path / f"leak.{form}"
    write(path)
    table = read_leak(path)
    assert table.format == fmt
    assert table.rows == ROWS
    assert table.columns == tuple(ROWS[0])
    assert table.roles == ROLES
    assert table.bad_rows == 0
    assert table.id_numbers == [p.id_number for p in PEOPLE]
    assert table.subjects == [None] * len(ROWS)


def test_a_file_without_a_header_gets_positional_columns(tmp_path: Path) -> None:
    path = tmp_path / "noheader.csv"
    path.write_text(_delimited(",", header=False), encoding="utf-8")
    table = read_leak(path)
    assert not table.header
    assert table.columns == ("column_1", "column_2", "column_3", "column_4", "column_5")
    assert list(table.roles.values()) == list(ROLES.values())
    assert len(table.rows) == len(ROWS)


def test_a_headerless_file_of_names_does_not_make_a_name_a_column_name(tmp_path: Path) -> None:
    """Column names are echoed in reports: a first row of data must not become them."""
    path = tmp_path / "names.csv"
    path.write_text("".join(f"{p.name},{p.address}\n" for p in PEOPLE), encoding="utf-8")
    table = read_leak(path)
    assert table.columns == ("column_1", "column_2") and len(table.rows) == len(PEOPLE)
    path.write_text("Full Name,Mobile\nZhang Wei,13812345678\nLi Na,13912345678\n", "utf-8")
    assert read_leak(path).columns == ("Full Name", "Mobile")


def test_a_json_object_keyed_by_id_number_gives_one_row_per_key(tmp_path: Path) -> None:
    path = tmp_path / "by_id.json"
    keyed = {p.id_number: {"n": p.name, "tel": p.phone} for p in PEOPLE}
    path.write_text(json.dumps(keyed, ensure_ascii=False), encoding="utf-8")
    table = read_leak(path)
    assert table.columns == ("key", "n", "tel")
    assert table.roles["key"] is ColumnRole.ID_NUMBER
    assert table.id_numbers == [p.id_number for p in PEOPLE]


def test_roles_come_from_values_not_header_names(tmp_path: Path) -> None:
    """Headers lie (a leaker renames them): a column called 'phone' holding ID numbers holds
    ID numbers, and one called 'id' holding names holds names."""
    rows = [{"phone": p.id_number, "id": p.name, "name": p.phone} for p in PEOPLE]
    path = tmp_path / "liars.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    roles = read_leak(path).roles
    assert roles == {"phone": ColumnRole.ID_NUMBER, "id": ColumnRole.NAME, "name": ColumnRole.PHONE}


def test_ids_need_a_valid_check_digit_not_just_eighteen_digits(tmp_path: Path) -> None:
    """Eighteen digits with wrong check digits (account numbers, say) are not ID numbers."""
    wrong = [p.id_number[:17] + str((int(p.id_number[16]) + 1) % 10) for p in PEOPLE]
    wrong = [w if clean_id_number(w) is None else w[:17] + "X" for w in wrong]
    assert all(clean_id_number(w) is None for w in wrong)
    path = tmp_path / "accounts.csv"
    path.write_text("account\n" + "\n".join(wrong) + "\n", encoding="utf-8")
    table = read_leak(path)
    assert table.roles == {"account": ColumnRole.OTHER}
    assert table.id_numbers == [None] * len(wrong)


def test_spellings_and_spreadsheet_habits_are_recognized(tmp_path: Path) -> None:
    rows = []
    for number, p in enumerate(PEOPLE):
        national = p.phone.removeprefix("+86")
        phone = [p.phone, national, f"{national[:3]}-{national[3:7]}-{national[7:]}"][number % 3]
        ident = [f'="{p.id_number}"', f"'{p.id_number}", p.id_number.lower()][number % 3]
        born = p.birth_date
        rows.append(
            {
                "a": ident,
                "b": phone,
                "c": f"{born.year}年{born.month}月{born.day}日",
                "d": f"{born.isoformat()}T08:30:00Z",
                "e": "北京",
                "f": f"{number}.50",
            }
        )
    path = tmp_path / "spelled.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    table = read_leak(path)
    assert table.roles == {
        "a": ColumnRole.ID_NUMBER,
        "b": ColumnRole.PHONE,
        "c": ColumnRole.DATE,
        "d": ColumnRole.DATETIME,
        "e": ColumnRole.OTHER,  # one city over and over: not a name
        "f": ColumnRole.OTHER,
    }
    assert table.id_numbers == [p.id_number for p in PEOPLE]
    assert table.rows[2]["a"] == PEOPLE[2].id_number.lower()  # spellings are kept as read


def test_city_and_brand_columns_are_not_names(tmp_path: Path) -> None:
    cities = ["北京", "上海", "成都", "武汉", "石家庄", "广州"]
    path = tmp_path / "places.csv"
    path.write_text(
        "city,person\n"
        + "\n".join(f"{cities[i % 6]},{p.name}" for i, p in enumerate(PEOPLE))
        + "\n",
        encoding="utf-8",
    )
    assert read_leak(path).roles == {"city": ColumnRole.OTHER, "person": ColumnRole.NAME}


def test_json_keeps_written_numbers_flattens_objects_and_blanks_nulls(tmp_path: Path) -> None:
    path = tmp_path / "typed.jsonl"
    path.write_text(
        '{"amount": 1.50, "n": 007, "ok": true, "who": {"id": "X1", "tags": [1, 2]}, "z": null}\n'
        '{"amount": 12, "n": 8, "ok": false, "who": {"id": "X2", "tags": []}, "z": "a"}\n',
        encoding="utf-8",
    )
    # 007 is not valid JSON: that line is unreadable, the other one is read.
    table = read_leak(path)
    assert table.bad_rows == 1
    assert table.rows == [
        {"amount": "12", "n": "8", "ok": "false", "who.id": "X2", "who.tags": "[]", "z": "a"}
    ]
    path.write_text('[{"amount": 1.50, "z": null, "who": {"id": "X1"}}]', encoding="utf-8")
    assert read_leak(path).rows == [{"amount": "1.50", "z": "", "who.id": "X1"}]


def test_bad_rows_are_counted_and_located_never_quoted(tmp_path: Path) -> None:
    secret = PEOPLE[0].id_number
    lines = _delimited(",").splitlines()
    lines.insert(5, f"{secret},short row")
    lines.insert(9, f'{PEOPLE[1].name},"{secret}",1,2,3,4,5')
    path = tmp_path / "ragged.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = read_leak(path)
    assert len(table.rows) == len(ROWS)
    assert table.bad_rows == 2
    assert table.problems == (
        "line 6: 2 fields where the header has 5",
        "line 10: 7 fields where the header has 5",
    )
    assert all(secret not in p and PEOPLE[1].name not in p for p in table.problems)


def test_broken_json_lines_and_non_objects_are_counted(tmp_path: Path) -> None:
    lines = _jsonl().splitlines()
    lines[3] = lines[3][:-7]  # cut mid-value
    lines.insert(7, "[1, 2, 3]")
    lines.insert(8, '"just a string"')
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = read_leak(path)
    assert table.bad_rows == 3
    assert len(table.rows) == len(ROWS) - 1
    assert [p.split(":")[0] for p in table.problems] == ["line 4", "line 8", "line 9"]


def test_a_cut_off_json_array_keeps_the_rows_before_the_cut(tmp_path: Path) -> None:
    """Samples posted to prove a sale are often cut mid-file."""
    text = _array(2)
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    table = read_leak(path)
    assert 20 <= len(table.rows) < len(ROWS)
    assert table.rows == ROWS[: len(table.rows)]
    assert table.bad_rows == 1
    assert "unreadable" in table.problems[0] or "cut off" in table.problems[0]


def _zip_of_two(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", "x\n1\n")
        archive.writestr("b.csv", "x\n2\n")


UNREADABLE: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty": (lambda p: p.write_bytes(b""), "empty"),
    "blank": (lambda p: p.write_bytes(b"  \n\n \t\n"), "empty"),
    "nul-bytes": (lambda p: p.write_bytes(b"id,name\x00\x00\x00\x01\x02" * 50), "binary"),
    "png": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8), "binary"),
    "control-garbage": (lambda p: p.write_bytes(bytes(range(1, 32)) * 40), "garbled"),
    "two-member-zip": (_zip_of_two, "zip archive of 2 files"),
    "broken-gzip": (lambda p: p.write_bytes(b"\x1f\x8b\x08\x00garbage"), "damaged"),
    "json-scalars": (lambda p: p.write_text("[1, 2, 3]\n", encoding="utf-8"), "no row"),
    "only-header": (lambda p: p.write_text("name,id_number\n", encoding="utf-8"), "no row"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_files_are_one_clear_input_error(case: str, tmp_path: Path) -> None:
    write, phrase = UNREADABLE[case]
    path = tmp_path / "leak.dat"
    write(path)
    with pytest.raises(InputError, match=phrase) as raised:
        read_leak(path)
    assert str(path) in raised.value.diagnostics()


def test_missing_paths_and_directories_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_leak(tmp_path / "absent.csv")
    with pytest.raises(InputError, match="directory"):
        read_leak(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600) | st.text(max_size=400).map(str.encode))
def test_arbitrary_bytes_give_a_table_or_an_input_error(
    data: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Whatever an attacker posts, tracing never crashes with anything but InputError."""
    path = tmp_path_factory.mktemp("fuzz") / "leak"
    path.write_bytes(data)
    try:
        table = read_leak(path)
    except InputError:
        return
    assert isinstance(table, LeakTable)
    assert len(table.id_numbers) == len(table.rows) == len(table.subjects)
    assert set(table.roles) == set(table.columns)


@settings(max_examples=300, deadline=None)
@given(digits=st.text("0123456789", min_size=17, max_size=17), last=st.sampled_from("0123456789Xx"))
def test_the_cheap_id_check_admits_every_valid_number(digits: str, last: str) -> None:
    """Tracing looks numbers up after the cheap check; the full one must never be stricter
    in the other direction (a valid number the cheap check refuses would be missed)."""
    number = digits + last
    full = clean_id_number(number)
    cheap = clean_id_number(number, full=False)
    if full is not None:
        assert cheap == full
    for person in PEOPLE[:10]:
        assert clean_id_number(person.id_number, full=False) == person.id_number
