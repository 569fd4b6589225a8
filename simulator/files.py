"""What a running fleet leaves for cmscan and tests: inventory, ODS, CIM users, config, sim.json."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inventory.spec import FIELDS
from simulator.fleet import Fleet, SimHost

INVENTORY_HEADER = FIELDS  # exactly the columns cmscan's importer reads
EPRACCUR_COLUMNS = 27


@dataclass(frozen=True, slots=True)
class FleetFiles:
    """Where everything lives in a fleet's output directory."""

    root: Path

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.csv"

    @property
    def epraccur(self) -> Path:
        return self.root / "epraccur.csv"

    @property
    def users_report(self) -> Path:
        return self.root / "users.csv"

    @property
    def config(self) -> Path:
        return self.root / "cmscan.toml"

    @property
    def manifest(self) -> Path:
        return self.root / "sim.json"

    @property
    def password(self) -> Path:
        return self.root / "password"

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def database(self) -> Path:
        return self.root / "cmscan.db"

    @property
    def ssh_dir(self) -> Path:
        return self.root / "ssh"

    @property
    def known_hosts(self) -> Path:
        return self.ssh_dir / "known_hosts"

    @property
    def client_key(self) -> Path:
        return self.ssh_dir / "client_key"

    def host_key(self, hostname: str) -> Path:
        return self.ssh_dir / "host_keys" / f"{hostname}_ed25519"


def write_atomically(path: Path, text: str | bytes, *, private: bool = False) -> None:
    """Replace a file in one step, so a reader never sees half of it. Text goes out as UTF-8
    with its line ends as given; bytes exactly as given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8") if isinstance(text, str) else text
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o600 if private else 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _tags(host: SimHost) -> str:
    caption = host.machine.os.caption or ""
    os_tag = "win11" if "Windows 11" in caption else "win10"
    return f"simulated;{os_tag}"


def inventory_csv(fleet: Fleet) -> str:
    """inventory.csv as cmscan's importer reads it: one row per host, its own transport and port."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(INVENTORY_HEADER)
    for host in fleet:
        practice = host.practice
        writer.writerow(
            (
                host.hostname,
                host.address,
                host.port(),
                host.transport,
                practice.code,
                practice.pcn or "",
                practice.ccg,
                practice.icb,
                practice.site,
                "default",
                _tags(host),
            )
        )
    return buffer.getvalue()


def epraccur_csv(fleet: Fleet) -> str:
    """The practices in NHS ODS epraccur.csv form: no header, 27 quoted columns, upper case."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for practice in sorted(fleet.practices.values(), key=lambda p: p.code):
        row = [""] * EPRACCUR_COLUMNS
        row[0] = practice.code
        row[1] = practice.name.upper()
        row[2] = practice.region
        row[3] = practice.icb
        row[4:9] = [line.upper() for line in practice.address]
        row[9] = practice.postcode
        row[10] = practice.opened
        row[11] = practice.closed
        row[12] = practice.status
        row[13] = "B"
        row[14] = practice.ccg
        # Practices open in July 2022 joined their commissioner when ICBs took over from CCGs.
        row[15] = practice.opened if practice.closed else max(practice.opened, "20220701")
        row[16] = practice.closed
        row[17] = practice.phone
        row[21] = "0"
        row[23] = practice.ccg
        row[25] = "4"
        writer.writerow(row)
    return buffer.getvalue()


def _toml_string(value: str) -> str:
    # JSON's escapes are all valid in a TOML basic string.
    return json.dumps(value)


def cmscan_toml(files: FleetFiles, *, username: str, winrm: bool, ssh: bool) -> str:
    """A config that scans this fleet as it stands: paths are absolute so any directory works."""
    root = files.root.resolve()
    lines = [
        "# cmscan settings for the simulated fleet in this directory (written by cmscan simulate).",
        f"database_url = {_toml_string('sqlite:///' + str(root / files.database.name))}",
        "",
        "[credentials.default]",
        f"username = {_toml_string(username)}",
        f"password_file = {_toml_string(str(root / files.password.name))}",
        'auth = "ntlm"',
    ]
    if ssh:
        lines.append(f"ssh_key_file = {_toml_string(str(files.client_key.resolve()))}")
    if winrm:
        lines += ["", "[winrm]", f"ca_file = {_toml_string(str(files.ca.resolve()))}"]
    if ssh:
        lines += ["", "[ssh]", f"known_hosts = {_toml_string(str(files.known_hosts.resolve()))}"]
    return "\n".join(lines) + "\n"


def host_entry(host: SimHost) -> dict[str, Any]:
    """One host as the manifest (the test oracle) describes it."""
    profile = host.profile
    return {
        "hostname": host.hostname,
        "address": host.address,
        "transport": host.transport,
        "winrm_port": host.winrm_port,
        "winrm_https_port": host.winrm_https_port,
        "ssh_port": host.ssh_port,
        "icb": host.practice.icb,
        "ccg": host.practice.ccg,
        "pcn": host.practice.pcn,
        "practice": host.practice.code,
        "profile": profile.name,
        "fault": None if host.fault is None else str(host.fault),
        "expected_outcome": host.expected_outcome,
        "expected_status": host.expected_status,
        "expected_failing_rules": list(profile.expected_failing_rules),
        "expected_advisories": list(profile.expected_advisories),
    }


def manifest(fleet: Fleet, extra: Mapping[str, Any]) -> dict[str, Any]:
    """sim.json: the fleet's secrets and endpoints, and every host's expected verdict."""
    return {
        "seed": fleet.options.seed,
        **extra,
        "hosts": [host_entry(h) for h in fleet],
    }
