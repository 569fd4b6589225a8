"""All database access, as plain async functions grouped by what they touch."""
