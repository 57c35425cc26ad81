"""Who may use ``/runtime/v1/...``: a tenant runtime's own client token, and nobody else."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar.connection import ASGIConnection

from control_plane.errors import Forbidden
from control_plane.identity.principal import Principal
from control_plane.identity.roles import Role


def runtime_tenant(principal: Principal) -> tuple[UUID, UUID | None]:
    """The (tenant, partner) a runtime token acts for; refused for users and other clients."""
    grants = [g for g in principal.grants if g.role is Role.TENANT_RUNTIME and g.tenant_id]
    if principal.kind != "client" or len(grants) != 1 or grants[0].tenant_id is None:
        raise Forbidden(
            "only a tenant runtime's own client token (role tenant_runtime at one tenant) "
            "may call the runtime API"
        )
    return grants[0].tenant_id, grants[0].partner_id


async def requires_runtime(connection: ASGIConnection[Any, Principal, Any, Any], _: Any) -> None:
    runtime_tenant(connection.user)
