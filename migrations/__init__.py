"""Alembic environments: ``control_plane`` now, one for tenant runtimes later."""
