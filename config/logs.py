"""Logging set-up: readable text or one JSON object per line, with secrets scrubbed."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any

_secrets: set[str] = set()
_secrets_lock = threading.Lock()

# Attributes every LogRecord has; anything else was passed with `extra=` and is data.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn adds a coloured copy of each message
}


def register_secret(value: str) -> None:
    """Never let this value reach a log line, whatever code tries to log it."""
    if len(value) >= 4:  # scrubbing very short strings would mangle ordinary words
        with _secrets_lock:
            _secrets.add(value)
            # In a JSON line the secret appears escaped: a quote, a backslash or an accented
            # letter in a password would otherwise slip past the scrubber.
            _secrets.add(json.dumps(value)[1:-1])


def scrub(text: str) -> str:
    # Longest first, so that no part of a secret survives a shorter one it contains; a copy,
    # because a credential may be re-read while another thread logs.
    for secret in sorted(tuple(_secrets), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(entry, default=str))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if extra:
            text += " " + " ".join(f"{k}={v}" for k, v in extra.items())
        return scrub(text)


def configure(*, level: str = "info", fmt: str = "text") -> None:
    """Send cmscan's logs to stderr in the chosen format; quieten chatty libraries."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    noisy_loggers = (
        "asyncssh",
        "pypsrp",
        "spnego",
        "urllib3",
        "requests_ntlm",
        "alembic",
        "uvicorn.access",
        "uvicorn.error",
    )
    for noisy in noisy_loggers:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
