"""Tests of the foundation: settings, database plumbing, inventory import."""
