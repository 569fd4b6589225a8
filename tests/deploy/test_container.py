"""The container image and the compose file, checked without Docker (it is not needed to
run the tests): Dockerfile instructions by rule, compose.yaml against the Compose schema."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.deploy.assets import DEPLOY, ROOT, load_yaml

SCHEMA = Path(__file__).with_name("schemas") / "compose-spec.json"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    return found


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DEPLOY / "Dockerfile")
    last = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last:]


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = [args for keyword, args in final_stage() if keyword == "USER"]
    assert users, "the final stage never leaves root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) >= 1000


def test_the_image_has_a_healthcheck_on_healthz_and_listens_on_all_addresses() -> None:
    stage = final_stage()
    (check,) = [args for keyword, args in stage if keyword == "HEALTHCHECK"]
    assert "/healthz" in check
    assert "CMD" in check
    environment = " ".join(args for keyword, args in stage if keyword == "ENV")
    assert "CMSCAN_DAEMON__LISTEN=0.0.0.0:8180" in environment
    assert ("EXPOSE", "8180") in stage
    assert [args for keyword, args in stage if keyword == "ENTRYPOINT"] == ['["cmscan"]']


def test_the_image_starts_from_a_slim_pinned_python() -> None:
    steps = instructions(DEPLOY / "Dockerfile")
    (argument,) = [args for keyword, args in steps if keyword == "ARG"]
    assert argument.startswith("PYTHON_IMAGE=python:3.11-slim")


def test_everything_copied_into_the_image_exists_and_is_in_the_build_context() -> None:
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    for keyword, args in instructions(DEPLOY / "Dockerfile"):
        if keyword != "COPY" or args.startswith("--from"):
            continue
        *sources, _ = shlex.split(args)
        for source in sources:
            # README.md is pyproject.toml's readme: packaging needs it whatever builds it.
            assert (ROOT / source).exists() or source == "README.md", source
            assert f"!{source.rstrip('/')}" in ignore or f"!{source}/" in ignore, source


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml(DEPLOY / "compose.yaml")
    return document


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)
    problems = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(compose)]
    assert problems == []


def test_the_schema_check_catches_mistakes(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = json.loads(json.dumps(compose))
    broken["services"]["cmscan"]["enviroment"] = {"A": "1"}
    broken["services"]["grafana"]["ports"] = [{"target": "three thousand"}]
    errors = list(jsonschema.Draft201909Validator(schema).iter_errors(broken))
    assert len(errors) == 2


def test_compose_brings_up_the_whole_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"simulator", "cmscan", "prometheus", "grafana"}
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.removeprefix("service:") in services
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)
            else:
                assert source in compose["volumes"], (name, source)


def test_prometheus_in_compose_scrapes_the_daemon_where_it_listens(
    compose: dict[str, Any],
) -> None:
    cmscan = compose["services"]["cmscan"]
    listen = cmscan["environment"]["CMSCAN_DAEMON__LISTEN"]
    assert listen == "0.0.0.0:8180"
    host = cmscan["network_mode"].removeprefix("service:")
    config = load_yaml(DEPLOY / "compose" / "prometheus.yml")
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "cmscan"
    assert job["static_configs"] == [{"targets": [f"{host}:8180"]}]
    assert "127.0.0.1:8180:8180" in compose["services"][host]["ports"]
