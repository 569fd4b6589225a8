"""Tests of the probe, its facts, and the WinRM and SSH collectors."""
