"""Care Identity Management users reports as CIM and Excel write them."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from inventory.cim_users import COLUMN_KEYS, UserGrant, UsersReport, read_users_report
from inventory.textfile import InventoryFileError

HEADER = "User ID,Surname,Forename,Organisation Code,Role Code,Activity Codes"


def report_file(
    tmp_path: Path,
    rows: list[str],
    *,
    newline: str = "\n",
    encoding: str = "utf-8",
    bom: bytes = b"",
) -> Path:
    path = tmp_path / "users.csv"
    path.write_bytes(bom + (newline.join(rows) + newline).encode(encoding))
    return path


def messages(report: UsersReport) -> list[str]:
    return [str(p) for p in sorted(report.problems, key=lambda p: p.sort_key)]


def test_semicolons_bom_mixed_case_repeats_and_codes_over_several_rows(tmp_path: Path) -> None:
    rows = [
        "User ID;Surname;Forename;Organisation Code;Organisation Name;Role Code;Activity Codes",
        "555555555501;Smith;Anna;a81001;Bridge Street Surgery;R8000;b0360",
        "555555555501;Smith;Anna;A81001 ;Bridge Street Surgery;R8000;B0258",
        "555555555501;Smith;Anna;A81002;Church Lane;R8000;B0560",
        "555555555502;Jones;Ben;A81001;Bridge Street Surgery;R8008;",
        "",
        "555555555501;Smith;Anna;A81001;Bridge Street Surgery;R8000;B0360",
        "555 555 555 502;Jones;Ben;a81001;Bridge Street Surgery;R8008;",
    ]
    path = report_file(tmp_path, rows, newline="\r\n", bom=codecs.BOM_UTF8)
    report = read_users_report(path)
    assert messages(report) == []
    anna, ben = "555555555501", "555555555502"
    assert report.grants == [
        UserGrant(anna, "Anna Smith", "A81001", frozenset({"B0360", "B0258"}), f"{path}:2"),
        UserGrant(anna, "Anna Smith", "A81002", frozenset({"B0560"}), f"{path}:4"),
        UserGrant(ben, "Ben Jones", "A81001", frozenset(), f"{path}:5"),
    ]
    assert (report.rows, report.duplicates, report.users) == (6, 2, 2)


@pytest.mark.parametrize(
    ("encoding", "bom", "delimiter", "newline"),
    [
        ("utf-8", b"", ",", "\n"),
        ("utf-8", codecs.BOM_UTF8, ";", "\r\n"),  # Excel "CSV UTF-8" in a comma-decimal locale
        ("cp1252", b"", ",", "\r\n"),  # Excel "CSV" on a UK Windows machine
        ("utf-16-le", codecs.BOM_UTF16_LE, "\t", "\r\n"),  # Excel "Unicode text"
    ],
)
def test_encodings_and_delimiters_as_excel_writes_them(
    tmp_path: Path, encoding: str, bom: bytes, delimiter: str, newline: str
) -> None:
    rows = [HEADER, "555555555501,Ó Briain,Zoë,A81001,R8000,B0360"]
    rows = [row.replace(",", delimiter) for row in rows]
    path = report_file(tmp_path, rows, newline=newline, encoding=encoding, bom=bom)
    report = read_users_report(path)
    assert messages(report) == []
    (grant,) = report.grants
    assert (grant.name, grant.org_code, grant.codes) == (
        "Zoë Ó Briain",
        "A81001",
        frozenset({"B0360"}),
    )


@pytest.mark.parametrize(
    "cell",
    [
        '"B0360;B0258"',
        '"B0360, b0258"',
        "B0360|B0258",
        "B0360 B0258",
        '" b 0360 ; B 0258 ;"',
        '"B0360\nB0258"',
        "b0258  b0360  B0360",
    ],
)
def test_several_codes_in_one_cell(tmp_path: Path, cell: str) -> None:
    path = report_file(tmp_path, [HEADER, f"555555555501,Smith,Anna,A81001,R8000,{cell}"])
    report = read_users_report(path)
    assert messages(report) == []
    assert [g.codes for g in report.grants] == [{"B0360", "B0258"}]


@pytest.mark.parametrize(
    ("header", "row", "name"),
    [
        ("UUID,Last Name,First Name,ODS Code,Activities", "{id},Smith,Anna,A81001,", "Anna Smith"),
        ("UUID,Forenames,ODS Code,Activities", "{id}, Anna  Maria ,A81001,", "Anna Maria"),
        ("Full Name,User_UUID,Org,Activity", "  Anna \t Smith ,{id},A81001,", "Anna Smith"),
        ("Display Name,Surname,UUID,Org,Activity", "Dr A Smith,Smith,{id},A81001,", "Dr A Smith"),
        ("CIS UUID,Organization Code,Activity Code", "{id},A81001,", ""),
    ],
)
def test_names_from_surname_and_forename_or_a_full_name(
    tmp_path: Path, header: str, row: str, name: str
) -> None:
    report = read_users_report(report_file(tmp_path, [header, row.format(id="555555555501")]))
    assert messages(report) == []
    assert [(g.user_id, g.name, g.org_code) for g in report.grants] == [
        ("555555555501", name, "A81001")
    ]


def test_header_names_are_matched_loosely_and_quoted_headers_are_read(tmp_path: Path) -> None:
    header = '"user-id";"  ORGANISATION_ODS_CODE ";"Role Name";"activity codes"'
    report = read_users_report(report_file(tmp_path, [header, "555555555501;RXH;x;"]))
    assert messages(report) == []
    assert [g.org_code for g in report.grants] == ["RXH"]


def test_columns_named_in_the_settings(tmp_path: Path) -> None:
    rows = [
        "Staff UUID,Person,Site,Activities,User ID",
        "555555555501,Anna Smith,A81001,B0360,not an id",
    ]
    path = report_file(tmp_path, rows)
    columns = {"user_id": " staff_uuid ", "name": "PERSON", "organisation": "site"}
    report = read_users_report(path, columns=columns)
    # The named column replaces the usual names, so "User ID" is no longer the user's ID.
    assert messages(report) == [f"{path}:1: ignoring unknown column(s): User ID"]
    assert report.warnings == report.problems
    assert [(g.user_id, g.name, g.org_code) for g in report.grants] == [
        ("555555555501", "Anna Smith", "A81001")
    ]
    missing = read_users_report(path, columns={"user_id": "Staff Number"})
    assert messages(missing) == [
        f"{path}:1: no user ID column headed 'Staff Number', as cmscan.toml says",
        f"{path}:1: no organisation column; if its header is unusual, name it in cmscan.toml:"
        ' [access.columns] organisation = "..."',
    ]


@pytest.mark.parametrize(
    ("columns", "key"),
    [
        ({"user_uuid": "Staff Number"}, "user_uuid"),
        ({"name": "Person", "surname": " person"}, "surname"),
        ({"name": "  "}, "name"),
    ],
)
def test_bad_column_settings_raise(tmp_path: Path, columns: dict[str, str], key: str) -> None:
    path = report_file(tmp_path, [HEADER])
    with pytest.raises(ValueError, match=key):
        read_users_report(path, columns=columns)


def test_every_bad_row_is_named_by_its_line(tmp_path: Path) -> None:
    rows = [
        HEADER,
        "555555555501,Smith,Anna,A81001,R8000,B0360",
        "55555555550X,Jones,Ben,A81001,R8008,B0264",
        "",
        "555555555503,Patel,Cara,A8-1001,R0260,B0945",
        "555555555504,Shah,Dev,B82001,R8008,B0264;B036",
        "555555555505,Brown,Eve,B82001,R8003,B8006",
    ]
    path = report_file(tmp_path, rows)
    report = read_users_report(path)
    assert messages(report) == [
        f"{path}:3: User ID: '55555555550X' is not a user ID: expected 12 digits",
        f"{path}:5: Organisation Code: 'A8-1001' is not an ODS code: expected 3 to 6 letters"
        " or digits, e.g. A81001 or RXH",
        f"{path}:6: Activity Codes: 'B036' is not an activity code: expected B and 4 digits,"
        " e.g. B0360",
    ]
    assert report.errors == report.problems
    assert [g.user_id for g in report.grants] == ["555555555501", "555555555505"]
    assert report.rows == 5


@pytest.mark.parametrize(
    ("delimiter", "cell"),
    [(",", "5.55555E+11"), (",", "555555555555.0"), (";", "5,55556E+11"), (";", "555555555555,00")],
)
def test_an_id_excel_turned_into_a_number_says_so(
    tmp_path: Path, delimiter: str, cell: str
) -> None:
    row = delimiter.join([cell, "Smith", "Anna", "A81001", "R8000", "B0360"])
    rows = [HEADER.replace(",", delimiter), row]
    (problem,) = read_users_report(report_file(tmp_path, rows)).problems
    assert problem.where.endswith(":2")
    assert f"User ID: {cell!r} is a number Excel has rewritten" in problem.message
    assert "format the column as text" in problem.message


def test_an_id_short_of_digits_may_have_lost_leading_zeros(tmp_path: Path) -> None:
    path = report_file(tmp_path, [HEADER, "55555555501,Smith,Anna,A81001,R8000,B0360"])
    assert messages(read_users_report(path)) == [
        f"{path}:2: User ID: '55555555501' is 11 digits, not 12; has Excel dropped leading zeros?"
    ]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Surname,Organisation Code,Activity Codes", "no user ID column"),
        ("User ID,Surname,Activity Codes", "no organisation column"),
        ("User ID,Surname,Organisation,Role Code", "no activity codes column"),
        ("User ID,UUID,Organisation,Activities", "columns 'User ID' and 'UUID' both hold"),
        ("User ID,Org,Organization Code,Activities", "both hold the organisation"),
    ],
)
def test_header_problems_stop_before_the_rows(tmp_path: Path, header: str, message: str) -> None:
    path = report_file(tmp_path, ["", header, "555555555501,x,A81001,B0360"])
    report = read_users_report(path)
    (problem,) = report.problems
    assert (problem.where, problem.severity) == (f"{path}:2", "error")
    assert message in problem.message
    assert (report.grants, report.rows) == ([], 0)


@pytest.mark.parametrize("text", ["", "\r\n\r\n", " , \n"])
def test_an_empty_file_has_no_header(tmp_path: Path, text: str) -> None:
    path = tmp_path / "users.csv"
    path.write_text(text, encoding="utf-8")
    assert messages(read_users_report(path)) == [f"{path}:1: the file is empty: no header row"]


def test_quoted_cells_over_several_lines_keep_line_numbers(tmp_path: Path) -> None:
    text = (
        "User ID,Name,Org,Activity Codes\r\n"
        '555555555501,"Anna\r\nSmith",A81001,"B0360\r\nB0258"\r\n'
        "555555555502,Ben Jones,A81001,B0360\r\n"
        '555555555503,"Cara\nPatel",A81001,"B0560"\r\n'
        "55555555550X,Dev Shah,A81001,B0360\r\n"
    )
    path = report_file(tmp_path, [text], newline="")
    report = read_users_report(path)
    assert [(g.name, g.where) for g in report.grants] == [
        ("Anna Smith", f"{path}:2"),
        ("Ben Jones", f"{path}:5"),
        ("Cara Patel", f"{path}:6"),
    ]
    assert [p.where for p in report.problems] == [f"{path}:8"]


def test_unknown_columns_are_one_warning_and_descriptions_none(tmp_path: Path) -> None:
    rows = [
        "User ID,Email,Organisation,Organisation Name,Role,Role Name,Activity Codes,"
        "Activity Name,,Notes",
        "555555555501,anna.smith@nhs.net,A81001,Bridge Street,R8000,Clinician,B0360,View,,",
    ]
    path = report_file(tmp_path, rows)
    report = read_users_report(path)
    (warning,) = report.problems
    assert str(warning) == f"{path}:1: ignoring unknown column(s): Email, Notes"
    assert warning.severity == "warning"
    assert [g.codes for g in report.grants] == [{"B0360"}]


def test_extra_cells_and_a_second_name_for_one_user(tmp_path: Path) -> None:
    rows = [
        HEADER,
        "555555555501,Smith,Anna,A81001,R8000,B0360",
        "555555555501,Jones,Anna,A81002,R8000,B0360",
        "555555555501,Brown,Anna,A81003,R8000,B0360",
        "555555555502,Smith, Ben,Dr,A81001,R8000,B0360",
    ]
    path = report_file(tmp_path, rows)
    report = read_users_report(path)
    assert messages(report) == [
        f"{path}:3: user 555555555501's name differs from line 2's; keeping the first",
        f"{path}:5: 7 cells but the header has 6; is a ',' unquoted?",
    ]
    assert [p.severity for p in report.problems] == ["warning", "error"]
    assert {g.name for g in report.grants} == {"Anna Smith"}
    assert report.users == 1


def test_a_quote_left_open_is_reported_not_raised(tmp_path: Path) -> None:
    rows = [HEADER, "555555555501,Smith,Anna,A81001,R8000,B0360", '555555555502,"' + "x" * 200_000]
    path = report_file(tmp_path, rows)
    report = read_users_report(path)
    assert [p.where for p in report.errors] == [f"{path}:3"]
    assert "unreadable CSV" in report.errors[0].message


def test_an_unreadable_file_raises(tmp_path: Path) -> None:
    with pytest.raises(InventoryFileError, match="no such file"):
        read_users_report(tmp_path / "absent.csv")


def test_the_column_keys_are_the_documented_ones() -> None:
    assert COLUMN_KEYS == (
        "user_id", "name", "surname", "forename", "organisation", "role_code", "activity_codes"
    )  # fmt: skip
