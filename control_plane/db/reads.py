"""The scoped fast read: one row by id, for GET handlers on the hot path.

On PostgreSQL it skips the ORM: one prepared statement per model on a plain asyncpg pool,
inside a transaction that opens with its tenancy context (``pg_context.begin_sql``), so
both walls hold: the statement carries the scope's criteria (the same columns the ORM
hook filters on) and row-level security sees the same scope. Elsewhere (the embedded
SQLite database) it reads through a scoped ORM session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.db.base import Scoped
from control_plane.db.pg_context import begin_sql
from control_plane.db.scope import Scope

if TYPE_CHECKING:
    from control_plane.db.session import Database


#: Scope kind -> the Scope attribute holding its ids (see Scoped.scope_clause).
_KIND_IDS = {
    "partner": "partner_ids",
    "tenant": "tenant_ids",
    "visible_tenant": "visible_tenant_ids",
    "region": "region_ids",
    "store": "store_ids",
}


_STATEMENTS: dict[type[Scoped], tuple[str, tuple[str, ...]]] = {}


def _statement(model: type[Scoped]) -> tuple[str, tuple[str, ...]]:
    """``SELECT cols FROM t WHERE id = $1 AND ($2 OR col = ANY($3) OR ...)`` for a model."""
    if model in _STATEMENTS:
        return _STATEMENTS[model]
    table = model.__table__  # type: ignore[attr-defined]
    columns = tuple(c.name for c in table.columns)
    kinds = tuple(k for k in _KIND_IDS if k in model.__scope_columns__)
    terms = ["$2"] + [
        f"{model.__scope_columns__[k]} = ANY(${n}::uuid[])" for n, k in enumerate(kinds, start=3)
    ]
    # Identifiers come from our own table metadata; values travel as parameters.
    where = f"id = $1 AND ({' OR '.join(terms)})"
    sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {where}"  # noqa: S608
    _STATEMENTS[model] = (sql, kinds)
    return sql, kinds


async def read_one(
    db: Database | None,
    scope: Scope,
    model: type[Scoped],
    obj_id: UUID,
    *,
    session: AsyncSession | None = None,
) -> dict[str, Any] | None:
    if session is None and db is not None and db.is_postgres:
        sql, kinds = _statement(model)
        args = [obj_id, scope.platform, *(list(getattr(scope, _KIND_IDS[k])) for k in kinds)]
        pool = await db.reader()
        async with db.read_slots, pool.acquire() as conn:
            await conn.execute(begin_sql(scope))
            try:
                record = await conn.fetchrow(sql, *args)
            finally:
                await conn.execute("ROLLBACK")  # read-only: nothing to keep
        return None if record is None else dict(record)
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
