"""Settings precedence (file < environment < flags) and error reporting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from config.settings import DEFAULT_DATABASE_URL, SettingsError, load_settings, parse_duration


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("CMSCAN_DATABASE_URL", "CMSCAN_CONFIG", "CMSCAN_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./cmscan.toml


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_source() -> None:
    assert load_settings().database_url == DEFAULT_DATABASE_URL


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write(
        tmp_path / "c.toml", 'database_url = "sqlite:///from-file.db"\nlog_level = "debug"\n'
    )
    assert load_settings(config_file=config).database_url == "sqlite:///from-file.db"
    monkeypatch.setenv("CMSCAN_DATABASE_URL", "sqlite:///from-env.db")
    settings = load_settings(config_file=config)
    assert settings.database_url == "sqlite:///from-env.db"
    assert settings.log_level == "debug"  # still from the file
    flagged = load_settings(config_file=config, overrides={"database_url": "sqlite:///flag.db"})
    assert flagged.database_url == "sqlite:///flag.db"
    # A flag that was not given does not hide the environment.
    assert load_settings(config_file=config, overrides={"database_url": None}).database_url == (
        "sqlite:///from-env.db"
    )


def test_cmscan_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write(tmp_path / "cmscan.toml", 'database_url = "sqlite:///here.db"\n')
    assert load_settings().database_url == "sqlite:///here.db"


def test_cmscan_config_environment_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "elsewhere.toml", 'database_url = "sqlite:///elsewhere.db"\n')
    monkeypatch.setenv("CMSCAN_CONFIG", str(config))
    assert load_settings().database_url == "sqlite:///elsewhere.db"


def test_nested_sections_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMSCAN_TIMEOUTS__TOTAL", "2m")
    assert load_settings().timeouts.total == timedelta(minutes=2)


def test_log_level_and_format_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMSCAN_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("CMSCAN_LOG_FORMAT", "Json")
    loaded = load_settings()
    assert (loaded.log_level, loaded.log_format) == ("debug", "json")


def test_every_problem_is_listed_with_its_key_and_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(
        tmp_path / "c.toml",
        'log_level = "loud"\ndatabse_url = "typo"\n[timeouts]\ntotal = "soon"\n',
    )
    monkeypatch.setenv("CMSCAN_DATABASE_URL", "mysql://db/cmscan")
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=config)
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 4
    assert (
        "database_url (environment CMSCAN_DATABASE_URL): unsupported database 'mysql'" in problems
    )
    assert f"log_level (config file {config})" in problems
    assert f"databse_url (config file {config}): unknown setting" in problems
    assert "timeouts.total" in problems
    assert "'soon' is not a duration" in problems


def test_flag_problems_name_the_command_line() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(overrides={"database_url": "not a url"})
    assert caught.value.problems == [
        "database_url (command line): not a database URL; expected sqlite:///PATH or postgresql://…"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("database_url = \n", "config file"),  # TOML syntax error, with its line
        ("\xff\xfe", "not UTF-8"),
    ],
)
def test_unreadable_config_files(tmp_path: Path, text: str, problem: str) -> None:
    config = tmp_path / "c.toml"
    config.write_bytes(text.encode("latin-1"))
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=config)
    assert problem in caught.value.problems[0]


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(config_file=tmp_path / "absent.toml")


def test_credentials_never_hold_a_password(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", '[credentials.default]\nusername = "svc"\npassword = "x"\n')
    with pytest.raises(SettingsError, match=r"credentials\.default\.password .*unknown setting"):
        load_settings(config_file=config)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90),
        ("15m", 900),
        ("4h", 14400),
        ("7d", 604800),
        ("1w", 604800),
        (30, 30),
        ("0.5s", 0.5),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == timedelta(seconds=seconds)


@pytest.mark.parametrize("value", ["soon", "5 years", "-3s", "1x"])
def test_bad_durations(value: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-3, float("inf"), float("nan"), 1e20, "99999999999d"])
def test_durations_out_of_range(value: object) -> None:
    with pytest.raises(ValueError, match="is not a duration between 0 and 100 years"):
        parse_duration(value)


def test_out_of_range_duration_in_a_file_is_a_settings_problem(tmp_path: Path) -> None:
    config = write(tmp_path / "c.toml", "freshness = inf\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=config)
    assert caught.value.problems == [
        f"freshness (config file {config}): inf is not a duration between 0 and 100 years"
    ]


def test_a_list_from_the_environment_must_be_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMSCAN_SCHEDULE__WINDOWS", "Mon-Fri 08:00-18:30")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    (problem,) = caught.value.problems
    assert problem.startswith("schedule (environment CMSCAN_SCHEDULE__WINDOWS): ")
    assert "written as JSON" in problem
    monkeypatch.setenv("CMSCAN_SCHEDULE__WINDOWS", '["Mon-Fri 08:00-18:30"]')
    assert load_settings().schedule.windows == ("Mon-Fri 08:00-18:30",)
