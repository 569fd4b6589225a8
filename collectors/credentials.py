"""Named credential profiles: where each secret comes from, and the loaded secret kept hidden."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

WinRMAuth = Literal["negotiate", "ntlm", "kerberos", "credssp", "certificate", "basic"]


class CredentialError(Exception):
    """A profile's secret cannot be obtained. The message never contains a secret."""


class Secret:
    """A secret string that prints as a redaction, so it cannot leak through logs or reprs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would be a way to persist a secret by accident.
        raise TypeError("secrets cannot be pickled")


class CredentialProfile(BaseModel):
    """A credential profile as written in the configuration: names and paths, never secrets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str | None = None
    password_env: str | None = None
    password_file: Path | None = None
    auth: WinRMAuth = "negotiate"
    ssh_key_file: Path | None = None
    ssh_key_passphrase_env: str | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CredentialProfile:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if self.auth == "certificate":
            if not (self.client_cert_file and self.client_key_file):
                raise ValueError("auth = certificate needs client_cert_file and client_key_file")
        elif self.auth != "kerberos" and not self.username:
            # Kerberos may use the ambient ticket cache's principal; the others need a name.
            raise ValueError(f"auth = {self.auth} needs a username")
        return self


@dataclass(frozen=True)
class Credentials:
    """A profile with its secrets loaded, ready for a collector."""

    profile: str
    username: str | None
    auth: WinRMAuth
    password: Secret | None = field(default=None, repr=False)
    ssh_key_file: Path | None = None
    ssh_key_passphrase: Secret | None = field(default=None, repr=False)
    client_cert_file: Path | None = None
    client_key_file: Path | None = None


def check_private_file(path: Path) -> None:
    """Refuse a secret-bearing file that anyone but its owner may read or write."""
    try:
        info = path.stat()
    except OSError as exc:
        raise CredentialError(f"cannot read secret file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CredentialError(f"secret file {path} is not a regular file")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise CredentialError(
            f"secret file {path} is readable by others (mode {stat.S_IMODE(info.st_mode):o});"
            f" run: chmod 600 {path}"
        )


def read_secret_file(path: Path) -> str:
    """Read a secret from a file that only its owner may read."""
    check_private_file(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"cannot read secret file {path}: {type(exc).__name__}") from None
    # A trailing newline is an editor's habit, not part of the password.
    return text.rstrip("\r\n")


def _from_env(name: str, profile: str, environ: Mapping[str, str]) -> Secret:
    value = environ.get(name)
    if not value:
        raise CredentialError(
            f"credential profile {profile!r}: environment variable {name} is not set"
        )
    return Secret(value)


def resolve(
    name: str, profile: CredentialProfile, environ: Mapping[str, str] | None = None
) -> Credentials:
    """Load a profile's secrets from the environment or files; CredentialError if one is missing."""
    env = os.environ if environ is None else environ
    password: Secret | None = None
    if profile.password_env:
        password = _from_env(profile.password_env, name, env)
    elif profile.password_file:
        password = Secret(read_secret_file(profile.password_file))
    passphrase = (
        _from_env(profile.ssh_key_passphrase_env, name, env)
        if profile.ssh_key_passphrase_env
        else None
    )
    for path in (profile.ssh_key_file, profile.client_key_file):
        if path is not None:
            check_private_file(path)
    if profile.client_cert_file is not None and not profile.client_cert_file.is_file():
        raise CredentialError(
            f"credential profile {name!r}: no certificate at {profile.client_cert_file}"
        )
    return Credentials(
        profile=name,
        username=profile.username,
        auth=profile.auth,
        password=password,
        ssh_key_file=profile.ssh_key_file,
        ssh_key_passphrase=passphrase,
        client_cert_file=profile.client_cert_file,
        client_key_file=profile.client_key_file,
    )
