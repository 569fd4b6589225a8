"""The demo's configuration file: short intervals, the fleet's credentials, an API token."""

from __future__ import annotations

import hashlib
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

TEMPLATE = """\
# cmscan settings written by `cmscan demo` for the simulated fleet in {fleet_dir}.
# Copy it as a starting point for a real deployment: change the database, the
# credentials and the CA, and set the schedule back to the defaults (drop [schedule]).

database_url = "sqlite:///{database}"
freshness = "7d"

[credentials.default]
# The simulated fleet's service account. In a real estate: a least-privilege domain
# account, its password in a file only cmscan's user can read (or password_env).
username = "{username}"
password_file = "{password_file}"
auth = "{auth}"
{ssh_key_line}
[winrm]
ca_file = "{ca_file}"          # the simulated fleet's CA; HTTPS is always verified

[ssh]
known_hosts = "{known_hosts}"

[timeouts]
connect = "5s"
operation = "20s"
total = "20s"

[schedule]
# Much shorter than the defaults (24h / 4h) so that the demo's deployment campaign shows
# up within seconds: a fixed machine turns green at its next scan.
interval_compliant = "10m"
interval_noncompliant = "20s"
backoff_base = "20s"
backoff_max = "2m"
concurrency = 64
per_site = 8

[daemon]
listen = "{listen}"

[[api.tokens]]
# The demo token's SHA-256; the token itself is in {token_file} (mode 600).
name = "demo"
sha256 = "{token_hash}"
scopes = ["read", "rescan"]
"""


def new_token() -> tuple[str, str]:
    """A random API token and the SHA-256 the configuration keeps instead of it."""
    token = secrets.token_urlsafe(24)
    return token, hashlib.sha256(token.encode()).hexdigest()


def write_config(directory: Path, fleet_config: Path, *, listen: str, token: str) -> Path:
    """Write cmscan.toml (and the token file) into the demo directory; returns the config."""
    fleet: dict[str, Any] = tomllib.loads(fleet_config.read_text(encoding="utf-8"))
    credentials = fleet["credentials"]["default"]
    token_file = directory / "demo-token"
    # Created private, never readable by others even for a moment; chmod covers a file
    # left by an earlier run, whose mode O_CREAT does not change.
    descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    token_file.chmod(0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    key = credentials.get("ssh_key_file")
    text = TEMPLATE.format(
        fleet_dir=fleet_config.parent,
        database=(directory / "cmscan.db").resolve(),
        username=credentials["username"],
        password_file=credentials["password_file"],
        auth=credentials.get("auth", "ntlm"),
        ssh_key_line=f'ssh_key_file = "{key}"\n' if key else "",
        ca_file=fleet["winrm"]["ca_file"],
        known_hosts=fleet["ssh"]["known_hosts"],
        listen=listen,
        token_file=token_file,
        token_hash=hashlib.sha256(token.encode()).hexdigest(),
    )
    path = directory / "cmscan.toml"
    path.write_text(text, encoding="utf-8")
    return path
