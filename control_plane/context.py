"""The context every service call runs in: the caller, its data scope, the request id,
and a scoped session opened only when a service first needs one."""

from __future__ import annotations

from functools import cached_property
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.db import Database, Scope
from control_plane.db.base import Scoped
from control_plane.db.reads import read_one
from control_plane.identity.principal import Principal


class Ctx:
    def __init__(
        self,
        principal: Principal,
        request_id: str | None = None,
        *,
        db: Database | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        if db is None and session is None:
            raise ValueError("a context needs a database or a session")
        self.principal = principal
        self.request_id = request_id
        self._db = db
        self._session = session

    @cached_property
    def scope(self) -> Scope:
        return self.principal.scope()

    @property
    def session(self) -> AsyncSession:
        """The scoped session; the first use opens it (its transaction begins on first I/O)."""
        if self._session is None:
            assert self._db is not None
            self._session = self._db.session(self.scope)
        return self._session

    @property
    def opened(self) -> AsyncSession | None:
        """The session, if anything has opened it."""
        return self._session

    async def read(self, model: type[Scoped], obj_id: UUID) -> dict[str, Any] | None:
        """One row by id as plain values, through the scoped fast read path."""
        if self._db is None:  # a context built around a given session (CLI, jobs)
            return await read_one(None, self.scope, model, obj_id, session=self.session)
        return await read_one(self._db, self.scope, model, obj_id)
