"""Settings: a TOML file, overridden by CMSCAN_* environment variables, overridden by CLI flags."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SettingsSourceError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from collectors.credentials import CredentialProfile
from config.windows import parse_window

ENV_PREFIX = "CMSCAN_"
DEFAULT_CONFIG_FILE = Path("cmscan.toml")
DEFAULT_DATABASE_URL = "sqlite:///./cmscan.db"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_MAX_DURATION_SECONDS = 100 * 365 * 86400


def parse_duration(value: object) -> object:
    """Accept '90s', '15m', '4h', '7d', '2w' or seconds; leave other input to pydantic."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 15m, 4h or 7d")
        seconds = float(match[1]) * _UNIT_SECONDS[match[2]]
    else:
        return value
    # TOML numbers may be negative, inf or nan, and timedelta overflows past 999999999 days.
    if not 0 <= seconds <= _MAX_DURATION_SECONDS:
        raise ValueError(f"{value!r} is not a duration between 0 and 100 years")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeoutSettings(_Section):
    """Per-probe deadlines; `total` is enforced even when a host accepts and never answers."""

    connect: Duration = timedelta(seconds=10)
    operation: Duration = timedelta(seconds=60)
    total: Duration = timedelta(seconds=90)


class WinRMSettings(_Section):
    """WinRM transport options. TLS is verified by default against `ca_file` or the system store."""

    ca_file: Path | None = None
    verify_tls: bool = True
    # Worker threads for pypsrp, which serves only CredSSP and certificate authentication.
    max_threads: int = Field(default=256, ge=1, le=4096)


class SSHSettings(_Section):
    """SSH transport options: host keys come from known_hosts, or are pinned on first use."""

    known_hosts: Path | None = Path("~/.ssh/known_hosts")
    host_key_policy: Literal["known_hosts", "tofu"] = "known_hosts"


class ScheduleSettings(_Section):
    """When hosts are scanned, and how hard cmscan may push the network."""

    interval_compliant: Duration = timedelta(hours=24)
    # Shorter, so that a machine an engineer has just fixed turns green the same day.
    interval_noncompliant: Duration = timedelta(hours=4)
    # Failures back off exponentially: a practice machine off for the weekend must not
    # take a worker every few minutes.
    backoff_base: Duration = timedelta(minutes=30)
    backoff_max: Duration = timedelta(hours=8)
    jitter: float = Field(default=0.1, ge=0, le=0.5)  # +/- share of the interval, spreads load
    # Scheduled scans only inside these windows (manual rescans always run), e.g.
    # ["Mon-Fri 08:00-18:30"]; empty means any time.
    windows: tuple[str, ...] = ()
    timezone: str = "Europe/London"
    concurrency: int = Field(default=64, ge=1, le=16_384)
    # Probes at once per practice, for its WAN link. One probe moves about 52 KB to the host
    # and 12 KB back over ~2 s, so eight at once are ~2 Mbit/s into a practice for a couple
    # of seconds: a fifth of HSCN's smallest (10 Mbit/s) line, a few per cent of most.
    per_site: int = Field(default=8, ge=1, le=1024)

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for window in value:
            parse_window(window)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; e.g. Europe/London") from None
        return value


class LockoutSettings(_Section):
    """The lockout guard: stop using a credential before the domain locks the account."""

    max_failures: int = Field(default=3, ge=1, le=100)
    window: Duration = timedelta(minutes=10)
    cooldown: Duration | None = None  # None: suspended until `cmscan credentials resume`


class DaemonSettings(_Section):
    """The daemon's listener, leases and result writing."""

    listen: str = "127.0.0.1:8180"
    lease: Duration = timedelta(minutes=5)  # must outlast a probe's total deadline
    # A daemon's claims last only while it is alive: one whose heartbeat is older than
    # heartbeat_timeout counts as dead, and its hosts go to the others at once.
    heartbeat: Duration = timedelta(seconds=5)
    heartbeat_timeout: Duration = timedelta(seconds=15)
    grace: Duration = timedelta(seconds=30)  # in-flight probes may finish on shutdown
    batch_size: int = Field(default=200, ge=1, le=10_000)
    flush_interval: Duration = timedelta(milliseconds=500)
    held_results: int = Field(default=20_000, ge=100)  # kept in memory while the database is away
    poll_interval: Duration = timedelta(seconds=1)
    keep_scans: Duration = timedelta(days=180)  # scan history; status history is kept for good

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @model_validator(mode="after")
    def _heartbeats_fit(self) -> DaemonSettings:
        if self.heartbeat <= timedelta(0):
            raise ValueError("daemon.heartbeat must be longer than 0 s")
        if self.heartbeat_timeout < 2 * self.heartbeat:
            raise ValueError(
                f"daemon.heartbeat_timeout ({self.heartbeat_timeout}) must be at least twice"
                f" daemon.heartbeat ({self.heartbeat}), or one late heartbeat would count a"
                " live daemon as dead"
            )
        return self


class ApiToken(_Section):
    """A bearer token, configured by its SHA-256 so the configuration holds no secret."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[Literal["read", "rescan"], ...] = ("read",)


class ApiSettings(_Section):
    tokens: tuple[ApiToken, ...] = ()


class MetricsSettings(_Section):
    """Deployment metrics: grouping labels (never host names) and how fresh a result must be."""

    group_by: tuple[Literal["icb", "ccg", "pcn", "practice"], ...] = ("ccg",)
    cache: Duration = timedelta(seconds=10)


# The columns of a Care Identity Management users report that `access.columns` may name
# (inventory/cim_users.py reads them; tests keep the two lists equal).
AccessColumn = Literal[
    "user_id", "name", "surname", "forename", "organisation", "role_code", "activity_codes"
]


class AccessSettings(_Section):
    """Dashboard access from the users report: its unusual headers, and how long history lasts."""

    # Header text of the user's export for each column cmscan reads, where it differs from
    # the names CIM and common spreadsheets use, e.g. {user_id = "Staff UUID"}.
    columns: dict[AccessColumn, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict
    )
    # When each user gained or lost access is personal data too: kept this long, then pruned.
    keep_history: Duration = timedelta(days=365)


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:PORT) as a (host, port) pair, or ValueError."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ValueError(f"{value!r} is not HOST:PORT, e.g. 127.0.0.1:8180")
    return host.strip("[]"), int(port)


class Settings(BaseSettings):
    """Everything cmscan can be configured with. Secrets are referenced, never stored here."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database_url: str = DEFAULT_DATABASE_URL
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    credentials: dict[str, CredentialProfile] = Field(default_factory=dict)
    timeouts: TimeoutSettings = TimeoutSettings()
    winrm: WinRMSettings = WinRMSettings()
    ssh: SSHSettings = SSHSettings()
    # A host whose last good result is older than this is "stale" in reports and metrics.
    freshness: Duration = timedelta(days=7)
    schedule: ScheduleSettings = ScheduleSettings()
    lockout: LockoutSettings = LockoutSettings()
    daemon: DaemonSettings = DaemonSettings()
    api: ApiSettings = ApiSettings()
    metrics: MetricsSettings = MetricsSettings()
    access: AccessSettings = AccessSettings()

    @model_validator(mode="after")
    def _lease_outlasts_probes(self) -> Settings:
        if self.daemon.lease <= self.timeouts.total:
            raise ValueError(
                f"daemon.lease ({self.daemon.lease}) must be longer than timeouts.total"
                f" ({self.timeouts.total}), or a slow probe's host could be scanned twice"
            )
        return self

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        # CMSCAN_LOG_LEVEL=DEBUG is how most tools spell it.
        return value.lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; expected sqlite:///PATH or postgresql://…"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r}; use sqlite or postgresql"
            )
        return value


class SettingsError(Exception):
    """Invalid settings; `problems` lists every one with its key and where it came from."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


class _TomlSource(PydanticBaseSettingsSource):
    """The already-parsed TOML document, as the lowest-priority settings source."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise SettingsError([f"config file {path} does not exist"]) from None
    except OSError as exc:
        raise SettingsError([f"config file {path}: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"config file {path}: {exc}"]) from None
    except UnicodeDecodeError:
        raise SettingsError([f"config file {path}: not UTF-8 text"]) from None


def _source_of(
    key: str,
    *,
    overrides: Mapping[str, Any],
    environ: Mapping[str, str],
    toml: Mapping[str, Any],
    config_path: Path | None,
) -> str:
    if key in overrides:
        return "command line"
    prefix = (ENV_PREFIX + key).upper()
    env_names = sorted(
        n for n in environ if n.upper() == prefix or n.upper().startswith(prefix + "__")
    )
    if env_names:
        return "environment " + ", ".join(env_names)
    if key in toml:
        return f"config file {config_path}"
    return "default"


def load_settings(
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build settings from file, environment and flags, or raise SettingsError listing all problems.

    `config_file` None means ./cmscan.toml when it exists. `overrides` are CLI flags; a None
    value means the flag was not given.
    """
    env = os.environ
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    path = config_file
    if path is None and env.get(ENV_PREFIX + "CONFIG"):
        path = Path(env[ENV_PREFIX + "CONFIG"])
    if path is None and DEFAULT_CONFIG_FILE.is_file():
        path = DEFAULT_CONFIG_FILE
    toml = _read_toml(path) if path is not None else {}

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _TomlSource(settings_cls, toml)

    try:
        return _Loaded(**flags)
    except SettingsSourceError as exc:
        # A list or table given in the environment must be JSON; pydantic-settings raises
        # this (not a ValidationError) when it is not, naming only the top-level field.
        named = re.search(r'field "([^"]+)"', str(exc))
        key = named[1] if named else "settings"
        source = _source_of(key, overrides=flags, environ=env, toml=toml, config_path=path)
        raise SettingsError(
            [
                f"{key} ({source}): lists and tables in the environment are written as JSON,"
                f""" e.g. CMSCAN_SCHEDULE__WINDOWS='["Mon-Fri 08:00-18:30"]' ({exc.__cause__})"""
            ]
        ) from None
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = [str(part) for part in error["loc"]]
            key = ".".join(loc) or "settings"
            source = _source_of(
                loc[0] if loc else "", overrides=flags, environ=env, toml=toml, config_path=path
            )
            message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
            message = message.removeprefix("Value error, ")
            problems.append(f"{key} ({source}): {message}")
        raise SettingsError(problems) from None
