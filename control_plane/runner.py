"""Running service functions outside HTTP (CLI, demo, jobs) with the same rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.db import Database
from control_plane.identity.principal import Principal

T = TypeVar("T")


async def run_as(
    settings: Settings,
    fn: Callable[[Ctx], Awaitable[T]],
    principal: Principal | None = None,
    db: Database | None = None,
) -> T:
    """Run ``fn`` in one transaction as ``principal`` (the platform CLI actor by default)."""
    principal = principal or Principal.system()
    own = db is None
    database = db or Database(settings)
    try:
        async with database.transaction(principal.scope()) as session:
            return await fn(Ctx(principal, session=session))
    finally:
        if own:
            await database.dispose()
