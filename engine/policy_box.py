"""The policy the engine and the writer grade with, swapped in place when a new one is applied."""

from __future__ import annotations

from dataclasses import dataclass

from policy import Policy


@dataclass
class PolicyBox:
    """The active policy; replaced when someone applies a new one."""

    policy: Policy
