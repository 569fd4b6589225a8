"""The configured credential profiles with their secrets loaded once, at start-up."""

from __future__ import annotations

from collections.abc import Mapping

from collectors.credentials import CredentialError, CredentialProfile, Credentials, resolve
from scanner.logs import register_secret


class CredentialBook:
    """Profile name -> Credentials, or the reason the profile cannot be used."""

    def __init__(self, profiles: Mapping[str, CredentialProfile]) -> None:
        self._ready: dict[str, Credentials] = {}
        self._broken: dict[str, str] = {}
        for name, profile in profiles.items():
            try:
                credentials = resolve(name, profile)
            except CredentialError as exc:
                self._broken[name] = str(exc)
                continue
            self._ready[name] = credentials
            for secret in (credentials.password, credentials.ssh_key_passphrase):
                if secret is not None:
                    register_secret(secret.reveal())

    def get(self, name: str) -> Credentials | str:
        if name in self._ready:
            return self._ready[name]
        return self._broken.get(
            name, f"credential profile {name!r} is not configured (add [credentials.{name}])"
        )

    @property
    def problems(self) -> dict[str, str]:
        return dict(self._broken)

    @property
    def names(self) -> list[str]:
        return sorted({*self._ready, *self._broken})
