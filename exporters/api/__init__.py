"""The HTTP API (/api/v1): summary, hosts, rescans, dashboard access and the exports.

Every route needs a bearer token (exporters/auth.py): `read` for GET, `rescan` to queue a
rescan. Errors are JSON objects with a `detail`; invalid input answers 422 and says where.
One module per resource (summary, hosts, rescans, export, access); schemas holds the wire formats.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from fastapi import APIRouter

from config.settings import Settings
from exporters.api import access, export, hosts, rescans, summary
from exporters.api.deps import Api
from exporters.api.schemas import AUTH_ERRORS
from store import db

PREFIX = "/api/v1"


def build_router(
    database: db.Database, settings: Settings, *, clock: Callable[[], datetime]
) -> APIRouter:
    api = Api(database=database, settings=settings, clock=clock)
    router = APIRouter(prefix=PREFIX, responses=AUTH_ERRORS)
    router.include_router(summary.routes(api))
    router.include_router(hosts.routes(api))
    router.include_router(rescans.routes(api, prefix=PREFIX))
    router.include_router(export.routes(api))
    router.include_router(access.routes(api))
    return router
