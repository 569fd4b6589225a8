"""Tests of the scanner daemon: scheduling, lockout guard, leases, sweeps and rescans."""
