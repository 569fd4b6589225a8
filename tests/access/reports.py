"""Users reports as CIM and Excel write them, over the seeded fleet's practices."""

from __future__ import annotations

import codecs
from pathlib import Path

HOSTILE_FORENAME = '=HYPERLINK("http://evil.example/","x")'

# Semicolons, a byte order mark, CRLF, codes in mixed case (one cell holding two, quoted
# because it holds the delimiter), a repeated row and a user at two practices.
# fmt: off
ROWS = [
    "User ID;Surname;Forename;Organisation Code;Role Code;Activity Codes",
    "555555555501;Smith;Anna;a81001;R8000;b0360",
    "555555555501;Smith;Anna;A81002;R8000;B0560",
    "555555555502;Jones;Ben;A81001;R8008;B0264",
    "555555555503;Patel;Cara;A81001;R0260;\"B0945; b0258\"",
    "555555555503;Patel;Cara;A81001;R0260;\"B0945; b0258\"",
    f"555555555504;Shah;{HOSTILE_FORENAME};B82001;R8008;B0264",
    "555555555505;Brown;Eve;B82001;R8003;B8006",
    "555555555506;Wood;Finn;A81002;R8008;",
    "555555555507;Green;Gus;RXH;R8000;B0360",
]
# fmt: on
WITHOUT_CODE = {
    ("555555555502", "A81001"),
    ("555555555506", "A81002"),
    ("555555555504", "B82001"),
    ("555555555505", "B82001"),
}
BAD_ROWS = [
    ROWS[0],
    "555555555501;Smith;Anna;A81001;R8000;B0360",
    "55555555550X;Jones;Ben;A81001;R8008;B0264",  # line 3: bad user ID
    "555555555503;Patel;Cara;A8-1001;R0260;B0945",  # line 4: bad ODS code
    "555555555504;Shah;Dev;B82001;R8008;B036",  # line 5: bad activity code
]


def write_report(path: Path, rows: list[str] = ROWS) -> Path:
    path.write_bytes(codecs.BOM_UTF8 + ("\r\n".join(rows) + "\r\n").encode("utf-8"))
    return path
