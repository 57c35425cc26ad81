"""Deployment packaging: the Helm values of one tenant's runtime release.

``runtime_values`` is a pure function of the tenant and the control plane's settings; it
fills the tenant-specific part of ``helm/storeops-tenant-runtime`` (tenant, control plane,
database name, secret provider and Vault role). Platform-wide values (image repository,
Redis, network ranges) come from a site values file given to Helm before these.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import yaml

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.errors import InvalidInput

#: The chart these values are for, relative to the repository root.
RUNTIME_CHART = "helm/storeops-tenant-runtime"
#: Helm refuses longer release names.
RELEASE_NAME_LIMIT = 53
#: PostgreSQL truncates longer identifiers.
IDENTIFIER_LIMIT = 63
DATABASE_PREFIX = "storeops_rt_"

_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class TenantRelease:
    """What the values need to know about a tenant."""

    id: UUID
    slug: str
    name: str
    status: str
    partner_slug: str
    #: Partners with another tenant of the same slug (slugs are unique per partner only).
    namesakes: tuple[str, ...] = ()


def _shorten(name: str, limit: int, tenant_id: UUID, sep: str) -> str:
    """``name`` if it fits, else its head plus a stable hash of the tenant id."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(tenant_id.bytes).hexdigest()[:8]
    return f"{name[: limit - len(digest) - 1].rstrip(sep)}{sep}{digest}"


def release_name(tenant: TenantRelease) -> str:
    """The Helm release: the tenant's slug (shortened with a hash beyond Helm's limit)."""
    return _shorten(tenant.slug, RELEASE_NAME_LIMIT, tenant.id, "-")


def database_name(tenant: TenantRelease) -> str:
    """The runtime's own database: ``storeops_rt_<slug>``, hyphens as underscores."""
    name = DATABASE_PREFIX + tenant.slug.replace("-", "_")
    return _shorten(name, IDENTIFIER_LIMIT, tenant.id, "_")


def vault_role(settings: Settings, tenant_id: UUID) -> str:
    """The tenant's AppRole (and policy) name, as the Vault store names it."""
    import hvac

    from control_plane.secrets.vault import VaultSecretStore

    # The client is only a carrier for the store's naming: building it opens no connection.
    client = hvac.Client(url=settings.vault_addr or "http://127.0.0.1:8200", token="")
    store = VaultSecretStore(client, mount=settings.vault_mount, prefix=settings.vault_prefix)
    return store.tenant_role(tenant_id)


def runtime_values(
    tenant: TenantRelease, settings: Settings, *, image_tag: str | None = None
) -> dict[str, Any]:
    """Values for ``helm/storeops-tenant-runtime`` serving ``tenant``."""
    if tenant.status == "offboarded":
        raise InvalidInput(f"tenant {tenant.slug} is offboarded: it has no runtime to deploy")
    if image_tag is not None and not _IMAGE_TAG.match(image_tag):
        raise ValueError(f"--image-tag {image_tag!r} is not a valid image tag")
    values: dict[str, Any] = {}
    if image_tag is not None:
        values["image"] = {"tag": image_tag}
    values["tenant"] = {
        "id": str(tenant.id),
        "slug": tenant.slug,
        "name": tenant.name,
        "partner": tenant.partner_slug,
    }
    values["controlPlane"] = {
        "url": settings.issuer,
        "tokenIssuer": settings.issuer,
        "tokenAudience": settings.jwt_audience,
    }
    values["database"] = {"name": database_name(tenant)}
    if settings.secrets_backend == "vault":
        role = vault_role(settings, tenant.id)
        vault: dict[str, Any] = {"role": role, "policy": role}
        if settings.vault_addr:
            vault = {"addr": settings.vault_addr, **vault}
        values["secrets"] = {"provider": "vault", "vault": vault}
    else:
        # The local store has no per-tenant credentials: runtimes ask the broker.
        values["secrets"] = {"provider": "broker"}
    return values


def render_values(
    tenant: TenantRelease, settings: Settings, *, image_tag: str | None = None
) -> str:
    """``runtime_values`` as a YAML document, headed by how to install it."""
    values = runtime_values(tenant, settings, image_tag=image_tag)
    release = release_name(tenant)
    header = [
        f"# {RUNTIME_CHART} values for tenant {tenant.slug} ({tenant.name}),",
        f"# partner {tenant.partner_slug}. Install or upgrade with:",
        f"#   helm upgrade --install {release} {RUNTIME_CHART} --namespace <namespace> \\",
        f"#     -f <site values> -f {release}.yaml",
    ]
    body = yaml.safe_dump(values, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body


async def load_tenant(ctx: Ctx, tenant_id: UUID) -> TenantRelease:
    """The tenant, its partner's slug, and the partners of its namesakes."""
    from sqlalchemy import select

    from control_plane.tenancy import service
    from control_plane.tenancy.models import Partner, Tenant

    tenant = await service.get_tenant(ctx, tenant_id)
    partner = await service.get_partner(ctx, tenant.partner_id)
    namesakes = (
        await ctx.session.scalars(
            select(Partner.slug)
            .join(Tenant, Tenant.partner_id == Partner.id)
            .where(Tenant.slug == tenant.slug, Tenant.id != tenant.id)
            .order_by(Partner.slug)
        )
    ).all()
    return TenantRelease(
        id=tenant.id,
        slug=tenant.slug,
        name=tenant.name,
        status=str(tenant.status),
        partner_slug=partner.slug,
        namesakes=tuple(namesakes),
    )
