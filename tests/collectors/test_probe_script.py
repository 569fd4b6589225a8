"""The PowerShell probe, checked without PowerShell: grammar, commands, and read-only use."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import tree_sitter
import tree_sitter_powershell

from collectors.facts import PROBE_MARKER, SCHEMA_VERSION, WATCHED_SERVICES
from collectors.probe import (
    SSH_COMMAND,
    is_probe,
    parse_stdin_invocation,
    probe_script,
    quote,
    stdin_invocation,
)

# Windows PowerShell 5.1's built-in aliases (Get-Alias on a clean install), plus the
# `where`/`foreach` forms that read as keywords but are aliases in a pipeline.
_ALIAS_WORDS = """
    % ? ac asnp cat cd chdir clc clear clhy cli clp cls clv cnsn compare copy cp cpi cpp curl
    cvpa dbp del diff dir dnsn ebp echo epal epcsv epsn erase etsn exsn fc fhx fl foreach ft
    fw gal gbp gc gcb gci gcm gcs gdr ghy gi gin gjb gl gm gmo gp gps gpv group gsn gsnp gsv
    gtz gu gv gwmi h history icm iex ihy ii ipal ipcsv ipmo ipsn irm ise iwmi iwr kill lp ls
    man md measure mi mount move mp mv nal ndr ni nmo npssc nsn nv ogv oh popd ps pushd pwd r
    rbp rcjb rcsn rd rdr ren ri rjb rm rmdir rmo rni rnp rp rsn rsnp rujb rv rvpa rwmi sajb
    sal saps sasv sbp sc scb select set shcm si sl sleep sls sort sp spjb spps spsv start stz
    sujb sv swmi tee trcm type wget where wjb write
"""
ALIASES = set(_ALIAS_WORDS.split())

# Verbs of cmdlets that change a machine (or a session in ways the probe has no need for).
WRITE_VERBS = {
    "Add", "Clear", "Copy", "Disable", "Enable", "Export", "Install", "Invoke", "Move", "New",
    "Out", "Publish", "Register", "Remove", "Rename", "Reset", "Restart", "Resume", "Save",
    "Set", "Start", "Stop", "Suspend", "Uninstall", "Unregister", "Update", "Write",
}  # fmt: skip
ALLOWED_WRITE_CMDLETS = {"Write-Output"}  # stdout is how the document leaves

# The cmdlets the probe may use at all: every one read-only and present in Windows 5.1.
KNOWN_CMDLETS = {
    "ConvertTo-Json",
    "Get-CimInstance",
    "Get-Service",
    "Write-Output",
}

# .NET methods that write the registry or run code.
WRITE_METHODS = re.compile(
    r"\.(CreateSubKey|SetValue|DeleteValue|DeleteSubKey|DeleteSubKeyTree|SetAccessControl"
    r"|Flush|InvokeScript|Start)\s*\(",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def tree() -> tree_sitter.Tree:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    return parser.parse(probe_script().encode("utf-8"))


def nodes(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from nodes(child)


def text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode("utf-8")


def command_names(tree: tree_sitter.Tree) -> list[str]:
    return [text(n) for n in nodes(tree.root_node) if n.type == "command_name"]


def defined_functions(tree: tree_sitter.Tree) -> set[str]:
    names = set()
    for node in nodes(tree.root_node):
        if node.type == "function_statement":
            name = next(c for c in node.children if c.type == "function_name")
            names.add(text(name))
    return names


def test_the_script_parses_without_errors(tree: tree_sitter.Tree) -> None:
    broken = [
        f"line {n.start_point[0] + 1}: {'MISSING' if n.is_missing else n.type} {text(n)[:60]!r}"
        for n in nodes(tree.root_node)
        if n.type == "ERROR" or n.is_missing
    ]
    assert broken == []
    assert not tree.root_node.has_error


def test_the_grammar_catches_a_broken_script() -> None:
    # The check above means something only if the grammar does report errors.
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    assert parser.parse(b"if ($a { foreach ($x in ) }").root_node.has_error


def test_the_script_carries_the_marker_and_takes_patterns() -> None:
    script = probe_script()
    assert is_probe(script)
    assert f"{PROBE_MARKER}/{SCHEMA_VERSION}" in script
    first_statement = next(line for line in script.split("#>", 1)[1].splitlines() if line.strip())
    assert first_statement == "param([string[]]$Patterns)"


def test_no_aliases(tree: tree_sitter.Tree) -> None:
    used = [name for name in command_names(tree) if name.lower() in ALIASES]
    assert used == []


def test_only_known_read_only_cmdlets(tree: tree_sitter.Tree) -> None:
    own = defined_functions(tree)
    unknown = {n for n in command_names(tree) if n not in own and n not in KNOWN_CMDLETS}
    assert unknown == set()
    writers = {
        name
        for name in (*command_names(tree), *own)
        if name.split("-", 1)[0].capitalize() in WRITE_VERBS and name not in ALLOWED_WRITE_CMDLETS
    }
    assert writers == set()


def test_own_functions_use_read_verbs(tree: tree_sitter.Tree) -> None:
    assert {name.split("-", 1)[0] for name in defined_functions(tree)} <= {"Get", "Test"}


def code(tree: tree_sitter.Tree) -> str:
    """The script with its comments blanked out."""
    source = bytearray(probe_script().encode("utf-8"))
    for node in nodes(tree.root_node):
        if node.type == "comment":
            source[node.start_byte : node.end_byte] = b" " * (node.end_byte - node.start_byte)
    return source.decode("utf-8")


def test_no_win32_product_and_no_registry_writes(tree: tree_sitter.Tree) -> None:
    script = code(tree)
    assert "win32_product" not in script.lower()
    assert WRITE_METHODS.search(script) is None
    # OpenSubKey(path, $true) would open for writing.
    assert re.search(r"OpenSubKey\([^)]*\$true", script, re.IGNORECASE) is None
    assert "Invoke-Expression" not in script
    assert "Add-Type" not in script


def test_reads_what_the_domain_needs() -> None:
    script = probe_script()
    for needle in (
        r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
        "Registry32",  # the WOW6432Node view
        "Registry64",
        r"NET Framework Setup\NDP\v4\Full",
        r"Calais\Readers",
        r"Calais\SmartCards",
        "'80000001'",
        "SmartCardReader",
        "43485",
        r"Component Based Servicing\RebootPending",
        r"WindowsUpdate\Auto Update\RebootRequired",
        "PendingFileRenameOperations",
        r"Policies\Google\Chrome",
        r"Policies\Microsoft\Edge",
        "BlockThirdPartyCookies",
        "CookiesAllowedForUrls",
        "Win32_OperatingSystem",
        *WATCHED_SERVICES,
    ):
        assert needle in script, needle


def test_json_is_written_once_compressed_and_deep_enough(tree: tree_sitter.Tree) -> None:
    script = probe_script()
    assert command_names(tree).count("ConvertTo-Json") == 1
    assert command_names(tree).count("Write-Output") == 1
    assert re.search(r"ConvertTo-Json -InputObject \$document -Depth [4-9] -Compress", script)


def test_the_script_leaves_nothing_behind() -> None:
    # Variables scoped to the script block vanish with it; $global: would outlive the probe.
    assert "$global:" not in probe_script().lower()


def test_stdin_invocation_round_trips_the_probe() -> None:
    patterns = ["NHS *", "*Oberthur*", "O'Brien's *", "O\u2019Brien\u2018s ''\u201a\u201b", ""]
    line = stdin_invocation(probe_script(), patterns)
    assert line.endswith("\n")
    assert line.count("\n") == 1, "powershell -Command - runs stdin line by line"
    parsed = parse_stdin_invocation(line)
    assert parsed == (probe_script(), patterns)
    assert SSH_COMMAND.startswith("powershell.exe ")


def test_stdin_invocation_parses_with_the_grammar() -> None:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    line = stdin_invocation("param([string[]]$Patterns) $Patterns", ["a'b", "*"])
    assert not parser.parse(line.encode()).root_node.has_error


def test_quote_neutralises_powershell_syntax() -> None:
    assert quote("$(Remove-Item C:\\)") == "'$(Remove-Item C:\\)'"
    assert quote("it's") == "'it''s'"
    # PowerShell also ends a single-quoted string at a typographic quote.
    assert quote("it\u2019s; Remove-Item C:\\") == "'it\u2019\u2019s; Remove-Item C:\\'"
    assert quote("\u2018\u201a\u201b") == "'\u2018\u2018\u201a\u201a\u201b\u201b'"


@pytest.mark.parametrize("text", ["", "not an invocation", "& ([ScriptBlock]::Create(x))"])
def test_parse_stdin_invocation_rejects_other_text(text: str) -> None:
    assert parse_stdin_invocation(text) is None
