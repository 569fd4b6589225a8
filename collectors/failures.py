"""Reading a transport failure: its chain of causes, and short printable reasons from it."""

from __future__ import annotations

import errno
import os
import ssl


def causes(exc: BaseException) -> list[BaseException]:
    """The exception, what it wraps (urllib3 keeps it in args and .reason), and its causes."""
    seen: list[BaseException] = []
    stack: list[BaseException] = [exc]
    while stack and len(seen) < 20:
        current = stack.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        for linked in (
            getattr(current, "reason", None),
            current.__cause__,
            current.__context__,
            *current.args,
        ):
            if isinstance(linked, BaseException):
                stack.append(linked)
    return seen


def dropped(exc: BaseException) -> bool:
    """Whether the connection was cut (reset, EOF), rather than refused by TLS itself."""
    return any(
        isinstance(cause, ConnectionError | ssl.SSLEOFError)
        or (isinstance(cause, OSError) and cause.errno == errno.ENOTCONN)
        for cause in causes(exc)
    )


def root_cause(exc: BaseException) -> str:
    chain = causes(exc)
    for cause in reversed(chain):
        if isinstance(cause, OSError) and cause.errno:
            # asyncio words a refusal "Connect call failed (...)"; the errno says what it was.
            return os.strerror(cause.errno)
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return type(chain[-1]).__name__


def certificate_problem(exc: BaseException) -> str | None:
    """Why the host's certificate was refused, if that is what went wrong."""
    for cause in causes(exc):
        verify_message = getattr(cause, "verify_message", None)
        if verify_message:
            return f"certificate verify failed: {verify_message}"
    return None


def tls_detail(exc: BaseException) -> str:
    return certificate_problem(exc) or root_cause(exc)


def short(text: str, limit: int = 200) -> str:
    """Only printable characters on one line, at most `limit`: a hostile host chooses these."""
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
