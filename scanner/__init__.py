"""cmscan: an agentless compliance scanner for NHS smartcard readiness on Windows fleets."""

__version__ = "0.1.0"
