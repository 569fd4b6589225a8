"""Collectors: the probe, its facts, and the transports that run it (WinRM, SSH)."""
