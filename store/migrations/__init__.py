"""Alembic migrations: the only way cmscan's schema is created or changed."""
