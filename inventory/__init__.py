"""Inventory: the hosts to scan and their NHS organisations, from CSV, YAML and ODS files."""
