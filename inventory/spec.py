"""HostSpec: one inventoried host as every inventory source describes it, validated."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from inventory.hostnames import normalise_address, normalise_hostname
from inventory.org_codes import normalise_code

Transport = Literal["winrm", "winrm-https", "ssh"]
TRANSPORTS: tuple[str, ...] = ("winrm", "winrm-https", "ssh")
DEFAULT_PORTS: dict[str, int] = {"winrm": 5985, "winrm-https": 5986, "ssh": 22}

_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TAG = re.compile(r"[a-z0-9][a-z0-9_.:/-]{0,39}")
_TAG_SEPARATORS = re.compile(r"[;,|\s]+")

# Columns every source understands, in the order CSV exports and listings use.
FIELDS: tuple[str, ...] = (
    "hostname",
    "address",
    "port",
    "transport",
    "practice_code",
    "pcn_code",
    "ccg_code",
    "icb_code",
    "site",
    "credential_profile",
    "tags",
)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


class HostSpec(BaseModel):
    """A host to scan. Names are canonical: host names lower case, ODS codes upper case."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    hostname: str
    address: str | None = None
    port: int = Field(default=0, ge=0, le=65535)  # 0: the transport's default port
    transport: Transport = "winrm"
    practice_code: str | None = None
    pcn_code: str | None = None
    ccg_code: str | None = None
    icb_code: str | None = None
    site: str | None = Field(default=None, max_length=200)
    credential_profile: str = "default"
    tags: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _blanks(cls, data: Any) -> Any:
        # An empty CSV cell means "not given", never an empty string; this runs before any
        # field validator so that each of them sees None rather than "".
        if isinstance(data, dict):
            return {key: _blank_to_none(value) for key, value in data.items()}
        return data

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        return normalise_hostname(value)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else normalise_address(value)

    @field_validator("transport", mode="before")
    @classmethod
    def _transport(cls, value: Any) -> Any:
        if value is None:
            return "winrm"
        if isinstance(value, str) and value.strip().lower() in TRANSPORTS:
            return value.strip().lower()
        raise ValueError(f"{value!r} is not a transport; use one of {', '.join(TRANSPORTS)}")

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        if value is None:
            return 0
        text = isinstance(value, str) and value.strip().isdecimal()
        if text or (isinstance(value, float) and value.is_integer()):
            number = int(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            # YAML can hand over lists, mappings or true/false here, not only text and numbers.
            shown = value.strip() if isinstance(value, str) else value
            raise ValueError(f"{shown!r} is not a port number")
        if not 0 < number <= 65535:
            raise ValueError(f"port {number} is out of range 1-65535")
        return number

    @field_validator("practice_code")
    @classmethod
    def _practice(cls, value: str | None) -> str | None:
        return None if value is None else normalise_code("practice", value)

    @field_validator("pcn_code")
    @classmethod
    def _pcn(cls, value: str | None) -> str | None:
        return None if value is None else normalise_code("pcn", value)

    @field_validator("ccg_code")
    @classmethod
    def _ccg(cls, value: str | None) -> str | None:
        return None if value is None else normalise_code("ccg", value)

    @field_validator("icb_code")
    @classmethod
    def _icb(cls, value: str | None) -> str | None:
        return None if value is None else normalise_code("icb", value)

    @field_validator("site")
    @classmethod
    def _site(cls, value: str | None) -> str | None:
        if value is not None and any(not c.isprintable() for c in value):
            raise ValueError("site contains control characters")
        return value

    @field_validator("credential_profile", mode="before")
    @classmethod
    def _profile(cls, value: Any) -> Any:
        if value is None:
            return "default"
        if not isinstance(value, str) or not _PROFILE.fullmatch(value.strip()):
            raise ValueError(
                f"{value!r} is not a credential profile name (letters, digits, '_', '.', '-')"
            )
        return value.strip()

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if value is None:
            return ()
        items = _TAG_SEPARATORS.split(value) if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ValueError("tags must be a list or a string of tags separated by ';'")
        tags: list[str] = []
        for item in items:
            tag = str(item).strip().lower()
            if not tag:
                continue
            if not _TAG.fullmatch(tag):
                raise ValueError(f"{item!r} is not a tag (letters, digits, '_.:/-', up to 40)")
            if tag not in tags:
                tags.append(tag)
        return tuple(tags)

    @model_validator(mode="after")
    def _default_port(self) -> HostSpec:
        if self.port == 0:
            object.__setattr__(self, "port", DEFAULT_PORTS[self.transport])
        return self

    @property
    def dial(self) -> str:
        return self.address or self.hostname
