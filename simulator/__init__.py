"""A simulated Windows fleet on loopback that speaks real WinRM and SSH, for tests and demos."""
