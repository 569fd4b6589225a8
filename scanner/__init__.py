"""cmscan: an agentless compliance scanner for NHS smartcard readiness on Windows fleets."""

from importlib.metadata import version

__version__ = version("cmscan")
