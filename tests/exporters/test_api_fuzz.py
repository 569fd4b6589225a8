"""Schemathesis against the live API's /openapi.json: generated requests never get a 5xx.

Valid and invalid requests are generated for every operation the schema publishes and sent
over real HTTP with a token that may read and rescan; every answer must be a documented
status with a documented content type and body. The number of examples is bounded so the
run stays fast, and derandomised so a failure reproduces.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.exporters.live import live_server
from tests.exporters.seed import NOW, RESCAN_TOKEN
from tests.exporters.seed import settings as seeded_settings

AUTH = {"Authorization": f"Bearer {RESCAN_TOKEN}"}
EXAMPLES = 15  # per operation, mode and database
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=str)
def test_no_generated_request_gets_a_server_error(
    seeded_url: str, mode: schemathesis.GenerationMode
) -> None:
    with live_server(seeded_settings(seeded_url), clock=lambda: NOW) as base:
        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        operations = []
        for result in schema.get_all_operations():
            assert isinstance(result, Ok), result  # every operation's schema is usable
            operations.append(result.ok())
        assert len(operations) >= 6
        for operation in operations:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def exercise(case: schemathesis.Case[Any]) -> None:
                case.call_and_validate(base_url=base, headers=AUTH, checks=CHECKS, timeout=30)

            exercise()
