"""Inventory files: CSV as Excel writes it, YAML with group defaults, and ODS epraccur.csv."""

from __future__ import annotations

from pathlib import Path

import pytest

from inventory.load import load_inventory
from inventory.ods import read_epraccur
from inventory.problems import Inventory
from inventory.spec import FIELDS
from inventory.textfile import InventoryFileError

HEADER = ",".join(FIELDS)


def csv_file(tmp_path: Path, text: str, *, encoding: str = "utf-8", bom: bytes = b"") -> Path:
    path = tmp_path / "hosts.csv"
    path.write_bytes(bom + text.encode(encoding))
    return path


def messages(inventory: Inventory) -> list[str]:
    return [str(p) for p in sorted(inventory.problems, key=lambda p: p.sort_key)]


@pytest.mark.parametrize(
    ("encoding", "bom", "newline"),
    [
        ("utf-8", b"", "\n"),
        ("utf-8", b"\xef\xbb\xbf", "\r\n"),  # Excel "CSV UTF-8"
        ("cp1252", b"", "\r\n"),  # Excel "CSV" on a UK Windows machine
        ("utf-16-le", b"\xff\xfe", "\r\n"),  # Excel "Unicode text"
    ],
)
def test_csv_as_excel_writes_it(tmp_path: Path, encoding: str, bom: bytes, newline: str) -> None:
    rows = [HEADER, "PC01,10.0.0.1,,winrm,A81001,U12345,00K,QHM,Café Surgery – Annexe,,gp"]
    path = csv_file(tmp_path, newline.join(rows) + newline, encoding=encoding, bom=bom)
    inventory = load_inventory(path, fmt="csv")
    assert messages(inventory) == []
    (host,) = inventory.hosts
    assert host.spec.site == "Café Surgery – Annexe"
    assert (host.spec.hostname, host.spec.ccg_code, host.where) == ("pc01", "00K", f"{path}:2")


def test_csv_whitespace_aliases_and_semicolons(tmp_path: Path) -> None:
    text = " Computer Name ; IP ; CCG ; Practice \n  pc01  ; 10.0.0.1 ;00k; a81001\n\n"
    inventory = load_inventory(csv_file(tmp_path, text), fmt="csv")
    assert messages(inventory) == []
    spec = inventory.hosts[0].spec
    assert (spec.hostname, spec.address, spec.ccg_code, spec.practice_code) == (
        "pc01",
        "10.0.0.1",
        "00K",
        "A81001",
    )


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_csv_quoted_headers_with_any_delimiter(tmp_path: Path, delimiter: str) -> None:
    text = (
        delimiter.join(['"Computer Name"', '"IP"'])
        + "\n"
        + delimiter.join(['"pc01"', '"10.0.0.1"'])
    )
    inventory = load_inventory(csv_file(tmp_path, text + "\n"), fmt="csv")
    assert messages(inventory) == []
    assert [(h.spec.hostname, h.spec.address) for h in inventory.hosts] == [("pc01", "10.0.0.1")]


def test_csv_reports_every_bad_row_with_its_line(tmp_path: Path) -> None:
    text = "\n".join(
        [
            "hostname,address,port,owner",
            "pc01,10.0.0.1,,alice",
            '"pc02",10.0.0.2,"5985",bob',
            "bad host,10.0.0.3,,carol",
            "pc03,10.0.0.4,70000,dave",
            "pc04,10.0.0.5,,erin,extra",
            "PC01,10.0.0.6,,frank",
        ]
    )
    path = csv_file(tmp_path, text)
    inventory = load_inventory(path, fmt="csv")
    assert [h.spec.hostname for h in inventory.hosts] == ["pc01", "pc02"]
    assert messages(inventory) == [
        f"{path}:1: ignoring unknown column(s): owner",
        f"{path}:4: hostname: 'bad host' has characters a host name cannot have: ' '",
        f"{path}:5: port: port 70000 is out of range 1-65535",
        f"{path}:6: 5 fields but the header has 4",
        f"{path}:7: pc01 duplicates pc01 at {path}:2",
    ]
    assert {"bad host", "pc03", "pc04"} & inventory.mentioned == {"pc03", "pc04"}


def test_a_blank_hostname_cell_is_reported_as_required(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "hostname,address\n,10.0.0.1\n")
    assert messages(load_inventory(path, fmt="csv")) == [f"{path}:2: hostname: is required"]


def test_csv_line_numbers_survive_quoted_newlines(tmp_path: Path) -> None:
    text = 'hostname,notes\npc01,"two\nlines"\npc02,"x"\nbad host,y\n'
    path = csv_file(tmp_path, text)
    inventory = load_inventory(path, fmt="csv")
    assert [h.where for h in inventory.hosts] == [f"{path}:2", f"{path}:4"]
    assert messages(inventory)[-1].startswith(f"{path}:5: hostname")


def test_fqdn_and_short_name_of_one_machine_are_duplicates(tmp_path: Path) -> None:
    text = (
        "hostname,address\npc01.a.nhs.uk,\npc01.b.nhs.uk,\nPC01,\nhost9,10.0.0.9\nhost10,10.0.0.9\n"
    )
    path = csv_file(tmp_path, text)
    inventory = load_inventory(path, fmt="csv")
    assert [h.spec.hostname for h in inventory.hosts] == ["pc01.a.nhs.uk", "pc01.b.nhs.uk", "host9"]
    assert messages(inventory) == [
        f"{path}:4: pc01 duplicates pc01.a.nhs.uk at {path}:2",
        f"{path}:6: address 10.0.0.9 port 5985 is already used by host9 at {path}:5",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty: no header row"),
        ("address,port\n10.0.0.1,5985\n", "no hostname column"),
        ("hostname,host\npc01,pc02\n", "repeated column(s): hostname"),
    ],
)
def test_csv_header_problems(tmp_path: Path, text: str, message: str) -> None:
    inventory = load_inventory(csv_file(tmp_path, text), fmt="csv")
    assert message in messages(inventory)[0]
    assert inventory.hosts == []


def test_unreadable_files_raise(tmp_path: Path) -> None:
    with pytest.raises(InventoryFileError, match="no such file"):
        load_inventory(tmp_path / "absent.csv", fmt="csv")
    with pytest.raises(InventoryFileError, match="is a directory"):
        load_inventory(tmp_path, fmt="csv")


YAML = """\
version: 1
defaults:
  credential_profile: ccg-admin
groups:
  - practice_code: A81001
    practice_name: Bridge Street Surgery
    ccg_code: 00K
    site: Bridge Street
    tags: [gp]
    hosts:
      - A81001-WS001
      - hostname: A81001-WS002
        address: 10.1.0.2
        site: Annexe
  - practice_code: A81002
    ccg_code: 0K0K
    hosts:
      - A81002-WS001
      - hostname: A81002-WS002
hosts:
  - hostname: ccg-laptop.nhs.uk
    transport: ssh
    credential_profile: laptop
  - hostname: bad host
  - {hostname: pc9, colour: blue}
"""


def test_yaml_groups_defaults_and_precise_locations(tmp_path: Path) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(YAML, encoding="utf-8")
    inventory = load_inventory(path, fmt="yaml")
    specs = {h.spec.hostname: h.spec for h in inventory.hosts}
    assert set(specs) == {"a81001-ws001", "a81001-ws002", "ccg-laptop.nhs.uk"}
    assert specs["a81001-ws001"].site == "Bridge Street"
    assert specs["a81001-ws002"].site == "Annexe"
    assert specs["a81001-ws001"].credential_profile == "ccg-admin"
    assert specs["a81001-ws001"].tags == ("gp",)
    assert specs["ccg-laptop.nhs.uk"].port == 22
    assert inventory.org_names[("practice", "A81001")] == "Bridge Street Surgery"
    assert messages(inventory) == [
        # The bad code is reported once, where it is written, not once per host.
        f"{path}:16:15: ccg_code: '0K0K' is not a CCG code: expected 3 letters or digits,"
        " e.g. 00K or 15N (or a 5-character code such as D2P2L)",
        f"{path}:24:15: hostname: 'bad host' has characters a host name cannot have: ' '",
        f"{path}:25:21: unknown field 'colour' in a host; allowed: hostname, address, port,"
        " transport, practice_code, pcn_code, ccg_code, icb_code, site, credential_profile, tags",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", ":1:1: the file is empty"),
        ("- pc01\n", ":1:1: the top level must be a mapping"),
        ("version: 2\nhosts: [pc01]\n", ":1:10: unsupported version 2"),
        ("hosts:\n  - pc01\nhosts: []\n", ":3:1: duplicate key 'hosts'"),
        ("hosts: [pc01\n", ":2:1: expected ',' or ']'"),
        ("groups:\n  - practice_code: A81001\n", ":2:5: a group needs a 'hosts' list"),
        ("hosts: pc01\n", ":1:8: must be a list"),
        ("hosts:\n  - {hostname: pc01, site: 2024-02-30}\n", ":2:28: cannot read '2024-02-30'"),
        ("hosts:\n  - {hostname: pc01, port: [1]}\n", ":2:28: port: [1] is not a port number"),
        ("hosts:\n  - pc01\n  -\n", ":3:4: an empty host entry"),
        ("hosts:\n  - {hostname: '', address: 10.0.0.1}\n", ":2:16: hostname: is required"),
        ("groups:\n  - 5\n", ":2:5: a group must be a mapping"),
    ],
)
def test_yaml_structure_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "hosts.yaml"
    path.write_text(text, encoding="utf-8")
    inventory = load_inventory(path, fmt="yaml")
    assert any(message in m for m in messages(inventory)), messages(inventory)
    assert len(inventory.problems) == 1, messages(inventory)


def epraccur_row(code: str, name: str, status: str, ccg: str, icb: str = "QHM") -> str:
    cells = [""] * 27
    cells[0], cells[1], cells[2], cells[3] = code, name, "Y63", icb
    cells[12], cells[13], cells[14], cells[23], cells[25] = status, "B", ccg, ccg, "4"
    return ",".join(f'"{c}"' for c in cells)


def test_ods_fills_ccg_and_icb_and_reports_closed_practices(tmp_path: Path) -> None:
    ods_path = tmp_path / "epraccur.csv"
    ods_path.write_text(
        "\n".join(
            [
                epraccur_row("A81001", "THE DENSHAM SURGERY", "A", "00K"),
                epraccur_row("A81002", "QUEENS PARK MEDICAL CENTRE", "C", "00K"),
                epraccur_row("A81003", "VICTORIA MEDICAL PRACTICE", "A", "16C"),
                '"short","row"',
            ]
        ),
        encoding="cp1252",
    )
    inv_path = csv_file(
        tmp_path,
        "hostname,practice_code,ccg_code\npc1,A81001,\npc2,A81002,\npc3,A81003,00K\npc4,B99999,\n",
    )
    ods = read_epraccur(ods_path)
    assert set(ods.practices) == {"A81001", "A81002", "A81003"}
    inventory = load_inventory(inv_path, fmt="csv", ods=ods, ods_name="epraccur.csv")
    specs = {h.spec.hostname: h.spec for h in inventory.hosts}
    assert (specs["pc1"].ccg_code, specs["pc1"].icb_code) == ("00K", "QHM")
    assert specs["pc3"].ccg_code == "00K"  # the inventory's own value wins, with a warning
    assert messages(inventory) == [
        f"{ods_path}:4: 2 columns; epraccur.csv rows have 27 (is this the ODS file?)",
        f"{inv_path}:4: CCG 00K differs from 16C, the commissioner of A81003 in epraccur.csv;"
        " keeping 00K",
        "epraccur.csv: practice B99999 is not in epraccur.csv",
        "epraccur.csv: practice A81002 (QUEENS PARK MEDICAL CENTRE) is closed in ODS;"
        " 1 host(s) are inventoried there",
    ]
    assert all(
        p.severity == "warning" for p in inventory.problems if "epraccur.csv:" not in p.where
    )
