"""Engine and sessions; the one place tenant scoping is applied to every query.

Two walls, set from the same :class:`Scope`:

* every ORM SELECT/UPDATE/DELETE gets ``with_loader_criteria`` for each scoped model;
* on PostgreSQL each transaction starts with ``set_config(..., true)`` so row-level
  security policies see the same scope (transaction-local, never per connection).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache, lru_cache
from typing import Any

import asyncpg
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
from control_plane.db import pg_context
from control_plane.db.base import Base, Scoped
from control_plane.db.scope import Scope

SCOPE_KEY = "scope"


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


@lru_cache(maxsize=8192)
def _scope_options(scope: Scope, models: tuple[type[Scoped], ...]) -> tuple[Any, ...]:
    """Loader criteria for ``models`` under ``scope``; built once per (scope, models)."""
    return tuple(
        with_loader_criteria(model, model.scope_clause(scope), include_aliases=True)
        for model in models
    )


@event.listens_for(Session, "do_orm_execute")
def _apply_scope(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    scope = session_scope(state.session)
    if scope.platform:
        return
    involved = {mapper.class_ for mapper in state.all_mappers}
    # A statement that names no scoped entity (a Core table select) still gets every
    # scoped model's criteria: cheap, and never silently unscoped.
    models = tuple(m for m in scoped_models() if m in involved) or scoped_models()
    state.statement = state.statement.options(*_scope_options(scope, models))


@event.listens_for(Session, "after_begin")
def _set_rls_context(session: Session, transaction: SessionTransaction, conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        pg_context.begin_scoped(conn, session_scope(session))


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
    if not pooled:
        kwargs["poolclass"] = NullPool
        return create_async_engine(url, **kwargs)
    # The application's engine: sessions bracket their own transactions (pg_context).
    kwargs.update(
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        isolation_level="AUTOCOMMIT",
    )
    engine = create_async_engine(url, **kwargs)
    pg_context.install(engine)
    return engine


def system_session(session: AsyncSession) -> AsyncSession:
    """An unrestricted session on the same engine, for reads the caller may not make itself."""
    return AsyncSession(bind=session.bind, info={SCOPE_KEY: Scope.system()}, expire_on_commit=False)


class Database:
    """The application's engine, a factory for scoped sessions, and (on PostgreSQL) a
    plain asyncpg pool for the scoped fast reads in :mod:`control_plane.db.reads`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url, settings)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reader: asyncpg.Pool | None = None
        self._reader_lock = asyncio.Lock()
        #: asyncpg's pool lets a newcomer take a just-released connection ahead of a
        #: waiter; queueing here first keeps reads first-come, first-served (the p99).
        self.read_slots = asyncio.Semaphore(settings.db_pool_size)

    async def reader(self) -> asyncpg.Pool:
        if self._reader is None:
            async with self._reader_lock:
                if self._reader is None:
                    url = self.engine.url.set(drivername="postgresql")
                    self._reader = await asyncpg.create_pool(
                        url.render_as_string(hide_password=False),
                        min_size=1,
                        max_size=self.settings.db_pool_size,
                        init=_json_codecs,
                        reset=_no_session_state,
                    )
        return self._reader

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
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        await self.engine.dispose()


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """Reader connections never LISTEN, lock or SET: skip asyncpg's reset round trip.

    (asyncpg still rolls back a transaction left open; reads always end their own.)
    """


async def _json_codecs(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
