"""Alembic revision scripts, applied in order by `cmscan db upgrade`."""
