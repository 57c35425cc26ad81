"""What differs between PostgreSQL and the embedded SQLite that code above the schema has
to know: inserts that tolerate or merge a conflict, and stored times (SQLite hands them
back without their zone; they are UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_for(conn: AsyncConnection, table: Any) -> Any:
    """An INSERT that takes ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""
    return (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(table)


def insert_ignore(conn: AsyncConnection, table: Any) -> Any:
    """An INSERT whose conflicting rows are left as they are."""
    return insert_for(conn, table).on_conflict_do_nothing()


def aware(moment: datetime) -> datetime:
    """A stored timestamp with its zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """A stored timestamp as ISO 8601 UTC text (``...Z``)."""
    return aware(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")
