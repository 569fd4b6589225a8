"""Bearer tokens for the HTTP API: configured as SHA-256 hashes, checked in constant time.

The configuration holds only each token's SHA-256 (`api.tokens`), so a leaked config file
gives nobody access. A request's token is hashed and compared with every configured hash
(all of them, always, with `hmac.compare_digest`) so that neither the comparison nor the
position of the match shows in the response time. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.settings import ApiToken

Scope = Literal["read", "rescan"]
TOKEN_PREFIX = "cmscan_"  # noqa: S105  (a prefix, not a secret)
TOKEN_BYTES = 32  # 256 bits of randomness

# auto_error off: a missing header must answer 401 with a WWW-Authenticate challenge
# (FastAPI's own answer is 403), and with no tokens configured, 503.
bearer = HTTPBearer(
    auto_error=False,
    description="A token made with `cmscan api token NAME`, sent as `Authorization: Bearer …`.",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from: the configured token's name and its scopes."""

    name: str
    scopes: frozenset[str]


def new_token() -> str:
    """A fresh random token, recognisable by its prefix in secret scanners."""
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def identify(tokens: Sequence[ApiToken], presented: str) -> Caller | None:
    """The configured token `presented` is, or None; every hash is compared, in constant time."""
    digest = token_hash(presented).encode("ascii")
    found: ApiToken | None = None
    for token in tokens:
        if hmac.compare_digest(digest, token.sha256.encode("ascii")) and found is None:
            found = token
    return Caller(found.name, frozenset(found.scopes)) if found is not None else None


def _challenge(detail: str, error: str | None = None) -> HTTPException:
    value = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": value}
    )


def requires(scope: Scope, tokens: Sequence[ApiToken]) -> Callable[..., Awaitable[Caller]]:
    """A FastAPI dependency that admits callers holding a token with `scope`."""

    async def check(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Caller:
        if not tokens:
            # An API with no tokens would be open to anyone who can reach the port.
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="the API is disabled: no api.tokens are configured;"
                " create one with `cmscan api token NAME`",
            )
        if credentials is None:
            raise _challenge("missing bearer token: send `Authorization: Bearer <token>`")
        caller = identify(tokens, credentials.credentials)
        if caller is None:
            raise _challenge("invalid bearer token", error="invalid_token")
        if scope not in caller.scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"token {caller.name!r} lacks the {scope!r} scope",
            )
        return caller

    return check
