"""The scoped fast read: one row by id, for GET handlers on the hot path.

On PostgreSQL it skips the ORM and the transaction: one call of ``storeops_read_row``
(migration 0002) on a plain asyncpg pool sets the tenancy context, reads the row under
row-level security and restores the context, in one round trip. The data layer's own wall
then checks the row against the scope (:meth:`Scoped.admits`, the same rule the ORM hook
applies as SQL). Elsewhere (the embedded SQLite database) it reads through a scoped ORM
session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.db.base import Scoped
from control_plane.db.pg_context import scope_settings
from control_plane.db.scope import Scope

if TYPE_CHECKING:
    from control_plane.db.session import Database

_READ_ROW = "SELECT storeops_read_row($1::regclass, $2, $3, $4, $5)"


async def read_one(
    db: Database | None,
    scope: Scope,
    model: type[Scoped],
    obj_id: UUID,
    *,
    session: AsyncSession | None = None,
) -> dict[str, Any] | None:
    """The row's column values, or None when it does not exist or lies outside ``scope``."""
    if session is None and db is not None and db.is_postgres:
        table: str = model.__table__.name  # type: ignore[attr-defined]
        pool = await db.reader()
        async with db.read_slots, pool.acquire() as conn:
            row = await conn.fetchval(_READ_ROW, table, obj_id, *scope_settings(scope))
        if row is None or not model.admits(scope, row):
            return None
        # JSON carries ids as strings; callers compare them with UUIDs.
        return {k: UUID(v) if (k == "id" or k.endswith("_id")) and v else v for k, v in row.items()}
    if session is None:
        assert db is not None
        async with db.session(scope) as own:
            return await _orm_read(own, model, obj_id)
    return await _orm_read(session, model, obj_id)


async def _orm_read(session: AsyncSession, model: type[Any], obj_id: UUID) -> dict[str, Any] | None:
    obj = await session.scalar(select(model).where(model.id == obj_id))
    if obj is None:
        return None
    return {attr.key: getattr(obj, attr.key) for attr in inspect(obj).mapper.column_attrs}
