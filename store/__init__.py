"""The store: the SQL model, its migrations and plain async data functions; persistence only."""
