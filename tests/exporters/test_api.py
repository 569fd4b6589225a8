"""The HTTP API over real HTTP: authentication, validation, paging, hosts, rescans, export."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import httpx
import pytest

from tests.exporters.live import live_server
from tests.exporters.seed import NOW, READ_TOKEN, RESCAN_TOKEN, settings
from tests.support import free_port

READ = {"Authorization": f"Bearer {READ_TOKEN}"}
RESCAN = {"Authorization": f"Bearer {RESCAN_TOKEN}"}


def get(
    base: str, path: str, headers: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers=headers or READ, params=params, timeout=30)


# --- Authentication ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/summary", "/api/v1/hosts", "/api/v1/export/unpatched.csv"]
)
def test_no_token_or_a_wrong_one_is_refused_with_a_bearer_challenge(api: str, path: str) -> None:
    missing = httpx.get(f"{api}{path}")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "missing bearer token" in missing.json()["detail"]
    wrong = httpx.get(f"{api}{path}", headers={"Authorization": "Bearer cmscan_not-a-token"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    basic = httpx.get(f"{api}{path}", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 401


def test_a_read_only_token_cannot_queue_a_rescan(api: str) -> None:
    response = httpx.post(f"{api}/api/v1/rescans", headers=READ, json={"ccg": "00K"})
    assert response.status_code == 403
    assert response.json() == {"detail": "token 'grafana' lacks the 'rescan' scope"}


def test_health_readiness_metrics_and_openapi_need_no_token(api: str) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert httpx.get(f"{api}{path}").status_code == 200, path
    schema = httpx.get(f"{api}/openapi.json").json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/api/v1/hosts/{hostname}" in schema["paths"]
    # A body that is not JSON answers 422 like any other bad body, not 400.
    rescan_answers = schema["paths"]["/api/v1/rescans"]["post"]["responses"]
    assert "not json" in rescan_answers["422"]["description"].lower()


def test_without_configured_tokens_the_api_is_closed(seeded_sqlite: str) -> None:
    with live_server(settings(seeded_sqlite, api={"tokens": []}), clock=lambda: NOW) as base:
        response = get(base, "/api/v1/summary")
        metrics = httpx.get(f"{base}/metrics")
    assert response.status_code == 503
    assert "no api.tokens are configured" in response.json()["detail"]
    assert metrics.status_code == 200


def test_tokens_never_reach_the_logs(api: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    get(api, "/api/v1/summary")
    get(api, "/api/v1/hosts", headers={"Authorization": "Bearer cmscan_wrong-secret-value"})
    httpx.post(f"{api}/api/v1/rescans", headers=RESCAN, json={"hosts": ["nosuch"]})
    for secret in (READ_TOKEN, RESCAN_TOKEN, "cmscan_wrong-secret-value"):
        assert secret not in caplog.text


# --- Reading -----------------------------------------------------------------------------


def test_summary_per_ccg_and_per_practice(api: str) -> None:
    summary = get(api, "/api/v1/summary").json()
    assert summary["group"] == "ccg"
    by_code = {g["code"]: g for g in summary["groups"]}
    north = by_code["00K"]
    assert north["name"] == "NHS Example North CCG"
    assert north["hosts"] == 6
    assert north["statuses"]["noncompliant"] == 2
    assert north["compliant_percent"] == pytest.approx(16.7)
    assert north["stale"] == 2
    assert by_code["unknown"]["hosts"] == 1
    assert summary["total"]["hosts"] == 10
    practices = get(api, "/api/v1/summary", group="practice").json()
    assert {g["code"] for g in practices["groups"]} == {"A81001", "A81002", "B82001", "unknown"}


def test_host_pages_follow_next_links_in_a_stable_order(api: str) -> None:
    seen: list[str] = []
    url: str | None = f"{api}/api/v1/hosts?per_page=3"
    pages = 0
    while url is not None:
        page = httpx.get(url, headers=READ).json()
        assert page["total"] == 10
        seen += [h["hostname"] for h in page["items"]]
        url = page["next"]
        pages += 1
    assert pages == 4
    assert seen == sorted(seen)
    assert len(set(seen)) == 10
    assert "pc09.b82001.nhs.uk" not in seen  # retired


def test_host_filters(api: str) -> None:
    def names(**params: Any) -> list[str]:
        body = get(api, "/api/v1/hosts", **params).json()
        assert body["total"] == len(body["items"])
        return [h["hostname"] for h in body["items"]]

    assert names(status="noncompliant") == [
        "pc02.a81001.nhs.uk",
        "pc03.a81001.nhs.uk",
        "pc08.b82001.nhs.uk",
    ]
    assert names(ccg="15n", status="error") == ["pc07.b82001.nhs.uk"]
    assert names(practice="A81002") == [f"pc0{i}.a81002.nhs.uk" for i in (4, 5, 6)]
    assert names(q="HEALTH centre") == [f"pc{i}.b82001.nhs.uk" for i in ("07", "08", "11")]
    assert names(q="10.0.0.1") == [
        "pc01.a81001.nhs.uk",
        "pc10.example.nhs.uk",
        "pc11.b82001.nhs.uk",
    ]
    assert names(q="%") == []  # a LIKE wildcard is a plain character here
    stale = {h["hostname"]: h["stale"] for h in get(api, "/api/v1/hosts").json()["items"]}
    assert stale["pc11.b82001.nhs.uk"]
    assert stale["pc05.a81002.nhs.uk"]
    assert not stale["pc06.a81002.nhs.uk"]  # never scanned: unknown, not stale


def test_one_host_with_verdict_reasons_remediation_scans_and_history(api: str) -> None:
    host = get(api, "/api/v1/hosts/PC02.A81001.NHS.UK").json()
    assert host["hostname"] == "pc02.a81001.nhs.uk"
    assert host["practice_name"] == "Riverside Surgery"
    verdict = host["verdict"]
    assert verdict["status"] == "noncompliant"
    (failing,) = verdict["failing"]
    assert failing["rule"] == "cm-version"
    assert "1.3.1.0" in failing["reason"]
    assert "1.4.2.0" in failing["remediation"]
    assert [a["rule"] for a in verdict["advisories"]] == ["no-pending-reboot"]
    assert host["facts"]["products"]
    assert host["scans"][0]["outcome"] == "ok"
    assert host["history"][0]["to_status"] == "noncompliant"
    waived = get(api, "/api/v1/hosts/pc03.a81001.nhs.uk").json()["verdict"]["waived"]
    assert [w["rule"] for w in waived] == ["dotnet-48"]
    short = get(api, "/api/v1/hosts/pc05")
    assert short.status_code == 200
    assert short.json()["status"] == "auth_failed"


def test_unknown_hosts_and_rescans_are_404_with_a_detail(api: str) -> None:
    missing = get(api, "/api/v1/hosts/nosuch.example")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no host 'nosuch.example' in the inventory"}
    assert get(api, "/api/v1/rescans/999").status_code == 404


# --- Validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"per_page": 0}, ["query", "per_page"]),
        ({"per_page": 501}, ["query", "per_page"]),
        ({"page": "two"}, ["query", "page"]),
        ({"status": "broken"}, ["query", "status"]),
        ({"ccg": "X" * 17}, ["query", "ccg"]),
        ({"q": "pc\x00"}, ["query", "q"]),
    ],
)
def test_bad_query_parameters_are_422_saying_where(
    api: str, params: dict[str, Any], where: list[str]
) -> None:
    response = get(api, "/api/v1/hosts", **params)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == where
    assert error["msg"]
    assert "input" not in error  # the rejected value is never echoed back


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"hosts": ["x" * 254]}, "at most 253 characters"),
        ({"ccg": "00K", "colour": "red"}, "Extra inputs are not permitted"),
        ({"status": "sleepy"}, "Input should be"),
        ({"hosts": "pc01"}, "valid list"),
        ({"hosts": ["pc01\x00"]}, "should match pattern"),
    ],
)
def test_bad_rescan_bodies_are_422(api: str, body: object, message: str) -> None:
    response = httpx.post(f"{api}/api/v1/rescans", headers=RESCAN, json=body)
    assert response.status_code == 422
    assert message in response.text


def test_a_rescan_that_selects_nothing_says_why(api: str) -> None:
    def post(body: object) -> httpx.Response:
        return httpx.post(f"{api}/api/v1/rescans", headers=RESCAN, json=body)

    assert "say which hosts" in post({}).json()["detail"]
    assert post({"hosts": ["nosuch"]}).json()["detail"] == "not in the inventory: nosuch"
    nobody = post({"ccg": "99Z"})
    assert nobody.status_code == 422
    assert "no host in service matches" in nobody.json()["detail"]
    broken = httpx.post(
        f"{api}/api/v1/rescans",
        headers={**RESCAN, "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert broken.status_code == 422


# --- Rescans -----------------------------------------------------------------------------


def test_a_rescan_is_accepted_with_its_location_and_can_be_followed(api: str) -> None:
    response = httpx.post(
        f"{api}/api/v1/rescans", headers=RESCAN, json={"ccg": "00K", "status": "noncompliant"}
    )
    assert response.status_code == 202
    accepted = response.json()
    assert accepted["host_count"] == 2
    assert accepted["state"] == "pending"
    assert accepted["requested_by"] == "api:engineer"
    location = response.headers["location"]
    assert location == f"/api/v1/rescans/{accepted['id']}"
    followed = get(api, location).json()
    assert followed["id"] == accepted["id"]
    assert followed["selector"] == {"ccg": "00K", "status": "noncompliant"}
    assert followed["done_count"] == 0
    assert followed["results"] == []


# --- Export ------------------------------------------------------------------------------


def test_the_export_streams_csv_and_json_with_the_cli_parameters(api: str) -> None:
    response = get(api, "/api/v1/export/unpatched.csv", ccg="00K", include_unreachable="true")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="unpatched.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert [r["hostname"] for r in rows] == [
        "pc02.a81001.nhs.uk",
        "pc03.a81001.nhs.uk",
        "pc04.a81002.nhs.uk",
        "pc05.a81002.nhs.uk",
    ]
    as_json = get(api, "/api/v1/export/unpatched.csv", format="json", stale_days=7).json()
    assert {r["hostname"] for r in as_json} == {
        "pc02.a81001.nhs.uk",
        "pc03.a81001.nhs.uk",
        "pc04.a81002.nhs.uk",
        "pc05.a81002.nhs.uk",
        "pc07.b82001.nhs.uk",
        "pc08.b82001.nhs.uk",
        "pc11.b82001.nhs.uk",
    }
    excel = get(api, "/api/v1/export/unpatched.csv", excel="true")
    assert excel.content.startswith(b"\xef\xbb\xbf")
    assert get(api, "/api/v1/export/unpatched.csv", stale_days=-1).status_code == 422


def test_a_database_that_cannot_be_reached_is_a_503_that_names_no_server() -> None:
    url = f"postgresql+psycopg://cmscan:hunter2-secret@127.0.0.1:{free_port()}/cmscan"
    with live_server(settings(url), clock=lambda: NOW) as base:
        response = get(base, "/api/v1/summary")
        export = get(base, "/api/v1/export/unpatched.csv")
        ready = httpx.get(f"{base}/readyz")
    assert response.status_code == 503
    assert response.json() == {"detail": "the database is unavailable"}
    # Not a 200 followed by a cut-off file.
    assert export.status_code == 503
    assert export.json() == {"detail": "the database is unavailable"}
    assert ready.status_code == 503
    assert "hunter2-secret" not in ready.text
