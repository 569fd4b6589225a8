"""What every API route needs: the database, the settings, the clock and the token checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Depends

from config.settings import Settings
from exporters import auth
from store import db


@dataclass(frozen=True)
class Api:
    database: db.Database
    settings: Settings
    clock: Callable[[], datetime]

    @property
    def reader(self) -> Any:
        """The dependency that admits a token with the `read` scope."""
        return Depends(auth.requires("read", self.settings.api.tokens))

    @property
    def rescanner(self) -> Any:
        """The dependency that admits a token with the `rescan` scope."""
        return Depends(auth.requires("rescan", self.settings.api.tokens))
