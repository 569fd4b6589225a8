"""Tests of the simulated hosts' WinRM endpoint, driven by unmodified pypsrp and pywinrm."""
