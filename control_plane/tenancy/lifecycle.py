"""Tenant onboarding and lifecycle with their side effects, for the API and the CLI alike."""

from __future__ import annotations

from uuid import UUID

from control_plane.context import Ctx
from control_plane.runtimelink import bootstrap
from control_plane.secrets import service as secrets
from control_plane.secrets.store import SecretStore
from control_plane.tenancy import schemas, service
from control_plane.tenancy.models import Tenant


async def onboard(
    ctx: Ctx, store: SecretStore, partner_id: UUID, data: schemas.TenantCreate
) -> Tenant:
    """The tenant row, then its runtime's Vault policy and AppRole and its bootstrap token
    (see ``bootstrap.onboarding_token``). All happen before the transaction commits: if
    Vault refuses, the onboarding rolls back with it."""
    tenant = await service.onboard_tenant(ctx, partner_id, data)
    await secrets.provision_runtime_access(ctx, store, tenant.id)
    await bootstrap.issue_at_onboarding(ctx, tenant)
    return tenant


async def transition(
    ctx: Ctx,
    store: SecretStore,
    tenant_id: UUID,
    action: str,
    *,
    reason: str | None = None,
    if_match: str | None = None,
) -> Tenant:
    """A lifecycle step; offboarding also revokes the runtime's Vault access."""
    tenant = await service.transition_tenant(
        ctx, tenant_id, action, reason=reason, if_match=if_match
    )
    if action == "offboard":
        await secrets.revoke_runtime_access(ctx, store, tenant.id)
    return tenant
