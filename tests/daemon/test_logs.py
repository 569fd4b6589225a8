"""Log lines never carry a registered secret, in text or in JSON."""

from __future__ import annotations

import json
import logging

import pytest

from config import logs

SECRETS = ['pa"ss\\word-1', "pässwört-2", "short-sécret-3-and-longer"]


@pytest.mark.parametrize("formatter", [logs._JsonFormatter(), logs._TextFormatter("%(message)s")])
def test_secrets_are_scrubbed_whatever_characters_they_hold(
    formatter: logging.Formatter,
) -> None:
    for secret in SECRETS:
        logs.register_secret(secret)
    logs.register_secret("short-sécret")
    record = logging.makeLogRecord(
        {
            "name": "cmscan.test",
            "levelno": logging.ERROR,
            "levelname": "ERROR",
            "msg": "login failed with %s",
            "args": (" and ".join(SECRETS),),
            "profile": SECRETS[1],
        }
    )
    line = formatter.format(record)
    for secret in SECRETS:
        assert secret not in line
        assert json.dumps(secret)[1:-1] not in line
    assert "-and-longer" not in line
