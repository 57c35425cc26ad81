"""Engine and sessions; the one place tenant scoping is applied to every query.

Two walls, set from the same :class:`Scope`:

* every ORM SELECT/UPDATE/DELETE gets ``with_loader_criteria`` for each scoped model;
* on PostgreSQL each transaction starts with ``set_config(..., true)`` so row-level
  security policies see the same scope (transaction-local, never per connection).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, with_loader_criteria
from sqlalchemy.pool import NullPool

from control_plane.config import Settings
from control_plane.db.base import Base, Scoped
from control_plane.db.scope import Scope

SCOPE_KEY = "scope"
_SET_SCOPE = text(
    "SELECT set_config('storeops.platform', :platform, true),"
    " set_config('storeops.partner_ids', :partners, true),"
    " set_config('storeops.tenant_ids', :tenants, true)"
)


class UnscopedSessionError(RuntimeError):
    """A query ran on a session that was never given a scope: refuse rather than leak."""


@cache
def scoped_models() -> tuple[type[Scoped], ...]:
    found: list[type[Scoped]] = []
    for mapper in Base.registry.mappers:
        cls = mapper.class_
        if issubclass(cls, Scoped) and cls.__scope_columns__:
            found.append(cls)
    return tuple(found)


def session_scope(session: Session) -> Scope:
    scope = session.info.get(SCOPE_KEY)
    if not isinstance(scope, Scope):
        raise UnscopedSessionError("session has no tenancy scope")
    return scope


@event.listens_for(Session, "do_orm_execute")
def _apply_scope(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    scope = session_scope(state.session)
    if scope.platform:
        return
    state.statement = state.statement.options(
        *(
            with_loader_criteria(model, model.scope_clause(scope), include_aliases=True)
            for model in scoped_models()
        )
    )


@event.listens_for(Session, "after_begin")
def _set_rls_context(session: Session, transaction: SessionTransaction, conn: Connection) -> None:
    if conn.dialect.name != "postgresql":
        return
    scope = session_scope(session)
    conn.execute(_SET_SCOPE, rls_params(scope))


def rls_params(scope: Scope) -> dict[str, str]:
    return {
        "platform": "on" if scope.platform else "",
        "partners": ",".join(str(i) for i in sorted(scope.partner_ids)),
        "tenants": ",".join(str(i) for i in sorted(scope.visible_tenant_ids)),
    }


def make_engine(url: str, settings: Settings, *, pooled: bool = True) -> AsyncEngine:
    kwargs: dict[str, Any] = {"echo": settings.db_echo}
    if url.startswith("sqlite"):
        settings.home.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if pooled:
        kwargs.update(
            pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size, pool_pre_ping=False
        )
    else:
        kwargs["poolclass"] = NullPool
    return create_async_engine(url, **kwargs)


def system_session(session: AsyncSession) -> AsyncSession:
    """An unrestricted session on the same engine, for reads the caller may not make itself."""
    return AsyncSession(bind=session.bind, info={SCOPE_KEY: Scope.system()}, expire_on_commit=False)


class Database:
    """The application's engine plus a factory for scoped sessions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url, settings)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def session(self, scope: Scope) -> AsyncSession:
        session = self._sessions()
        session.info[SCOPE_KEY] = scope
        return session

    @asynccontextmanager
    async def transaction(self, scope: Scope) -> AsyncIterator[AsyncSession]:
        """A session whose work commits on success and rolls back on any error."""
        async with self.session(scope) as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
