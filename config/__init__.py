"""Configuration: settings from file, environment and flags, and the logging they ask for."""
