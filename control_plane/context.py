"""The context every service call runs in: a scoped session, the caller, the request id."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.identity.principal import Principal


@dataclass
class Ctx:
    session: AsyncSession
    principal: Principal
    request_id: str | None = None
