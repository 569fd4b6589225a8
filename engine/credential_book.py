"""The configured credential profiles with their secrets loaded once, at start-up."""

from __future__ import annotations

from collections.abc import Mapping

from collectors.credentials import CredentialError, CredentialProfile, Credentials, resolve
from config.logs import register_secret


class CredentialBook:
    """Profile name -> Credentials; a profile that cannot be used keeps the reason why."""

    def __init__(self, profiles: Mapping[str, CredentialProfile]) -> None:
        self._profiles = dict(profiles)
        self._ready: dict[str, Credentials] = {}
        self._broken: dict[str, str] = {}
        for name in profiles:
            self.reload(name)

    def reload(self, name: str) -> None:
        """Read a profile's secret again: after a suspension is lifted, the password file has
        usually just been fixed, and a daemon should not need a restart to see it."""
        profile = self._profiles.get(name)
        if profile is None:
            return
        self._ready.pop(name, None)
        self._broken.pop(name, None)
        try:
            credentials = resolve(name, profile)
        except CredentialError as exc:
            self._broken[name] = str(exc)
            return
        self._ready[name] = credentials
        for secret in (credentials.password, credentials.ssh_key_passphrase):
            if secret is not None:
                register_secret(secret.reveal())

    def get(self, name: str) -> Credentials:
        """The profile's credentials, or CredentialError saying why it cannot be used."""
        if name in self._ready:
            return self._ready[name]
        raise CredentialError(
            self._broken.get(
                name, f"credential profile {name!r} is not configured (add [credentials.{name}])"
            )
        )

    @property
    def problems(self) -> dict[str, str]:
        return dict(self._broken)

    @property
    def names(self) -> list[str]:
        return sorted({*self._ready, *self._broken})
