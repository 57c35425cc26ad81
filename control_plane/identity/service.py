"""Users, grants and API clients; password and client-credential authentication."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.api.etag import check_if_match
from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.context import Ctx
from control_plane.errors import Duplicate, Forbidden, InvalidInput, NotFound, Unauthorized
from control_plane.identity import passwords, schemas
from control_plane.identity.models import ApiClient, RoleGrant, User
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import ROLE_LEVELS, Role
from control_plane.tenancy.models import Partner, Region, Store, Tenant

# --- grants -----------------------------------------------------------------------------


async def resolve_grant(ctx: Ctx, spec: schemas.GrantSpec) -> Grant:
    """Fill in a grant's ancestry from the deepest node named, checking it is visible."""
    session = ctx.session
    partner_id, tenant_id, region_id, store_id = (
        spec.partner_id,
        spec.tenant_id,
        spec.region_id,
        spec.store_id,
    )
    if store_id:
        store = await session.scalar(select(Store).where(Store.id == store_id))
        if store is None:
            raise NotFound(f"store {store_id} does not exist")
        partner_id, tenant_id, region_id = store.partner_id, store.tenant_id, store.region_id
    elif region_id:
        region = await session.scalar(select(Region).where(Region.id == region_id))
        if region is None:
            raise NotFound(f"region {region_id} does not exist")
        partner_id, tenant_id = region.partner_id, region.tenant_id
    elif tenant_id:
        tenant = await session.scalar(select(Tenant).where(Tenant.id == tenant_id))
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        partner_id = tenant.partner_id
    elif partner_id:
        partner = await session.scalar(select(Partner).where(Partner.id == partner_id))
        if partner is None:
            raise NotFound(f"partner {partner_id} does not exist")
    given = {
        "partner_id": spec.partner_id,
        "tenant_id": spec.tenant_id,
        "region_id": spec.region_id,
        "store_id": spec.store_id,
    }
    resolved = {
        "partner_id": partner_id,
        "tenant_id": tenant_id,
        "region_id": region_id,
        "store_id": store_id,
    }
    for key, value in given.items():
        if value is not None and resolved[key] != value:
            raise InvalidInput(f"grant: {key} {value} is not an ancestor of the node named")
    grant = Grant(role=spec.role, **resolved)
    if grant.level not in ROLE_LEVELS[spec.role]:
        levels = ", ".join(sorted(lv.value for lv in ROLE_LEVELS[spec.role]))
        raise InvalidInput(
            f"grant: role {spec.role} is granted at the {levels} level, not at {grant.level}"
        )
    # No escalation: the granter needs users:write over the node it grants at.
    if not ctx.principal.can("users:write", **resolved):
        raise Forbidden(f"you cannot grant roles at {grant.node}")
    return grant


def _grant_row(grant: Grant, **owner: UUID) -> RoleGrant:
    return RoleGrant(
        role=grant.role.value,
        partner_id=grant.partner_id,
        tenant_id=grant.tenant_id,
        region_id=grant.region_id,
        store_id=grant.store_id,
        **owner,
    )


def grant_of(row: RoleGrant) -> Grant:
    return Grant(
        role=Role(row.role),
        partner_id=row.partner_id,
        tenant_id=row.tenant_id,
        region_id=row.region_id,
        store_id=row.store_id,
    )


def grant_out(row: RoleGrant) -> schemas.GrantOut:
    g = grant_of(row)
    return schemas.GrantOut(
        id=row.id,
        role=row.role,
        node=g.node,
        partner_id=row.partner_id,
        tenant_id=row.tenant_id,
        region_id=row.region_id,
        store_id=row.store_id,
    )


async def grants_by_owner(
    session: AsyncSession, *, users: Sequence[UUID] = (), clients: Sequence[UUID] = ()
) -> dict[UUID, list[RoleGrant]]:
    """The grants of several users (or clients) in one query, keyed by owner."""
    column = RoleGrant.user_id if users else RoleGrant.client_id
    owners = list(users or clients)
    found: dict[UUID, list[RoleGrant]] = {owner: [] for owner in owners}
    if owners:
        stmt = select(RoleGrant).where(column.in_(owners)).order_by(RoleGrant.id)
        for grant in await session.scalars(stmt):
            found[getattr(grant, column.key)].append(grant)
    return found


async def grants_for(
    session: AsyncSession, *, user_id: UUID | None = None, client_id: UUID | None = None
) -> list[RoleGrant]:
    if user_id is not None:
        return (await grants_by_owner(session, users=[user_id]))[user_id]
    assert client_id is not None
    return (await grants_by_owner(session, clients=[client_id]))[client_id]


def _home(
    ctx: Ctx, partner_id: UUID | None, tenant_id: UUID | None, grants: list[Grant]
) -> tuple[UUID | None, UUID | None]:
    if partner_id is None and tenant_id is None and grants:
        partner_id, tenant_id = grants[0].partner_id, grants[0].tenant_id
    if tenant_id is not None and partner_id is None:
        partner_id = next((g.partner_id for g in grants if g.tenant_id == tenant_id), None)
    if not ctx.principal.can("users:write", partner_id=partner_id, tenant_id=tenant_id):
        raise Forbidden("you cannot create identities outside your part of the tree")
    return partner_id, tenant_id


async def _home_ancestry(
    ctx: Ctx, partner_id: UUID | None, tenant_id: UUID | None
) -> tuple[UUID | None, UUID | None]:
    if tenant_id is not None:
        tenant = await ctx.session.scalar(select(Tenant).where(Tenant.id == tenant_id))
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        if partner_id is not None and partner_id != tenant.partner_id:
            raise InvalidInput(f"tenant {tenant_id} does not belong to partner {partner_id}")
        return tenant.partner_id, tenant_id
    if partner_id is not None:
        partner = await ctx.session.scalar(select(Partner).where(Partner.id == partner_id))
        if partner is None:
            raise NotFound(f"partner {partner_id} does not exist")
    return partner_id, None


# --- users ------------------------------------------------------------------------------


async def create_user(ctx: Ctx, data: schemas.UserCreate) -> tuple[User, list[RoleGrant]]:
    ctx.principal.require("users:write")
    grants = [await resolve_grant(ctx, spec) for spec in data.grants]
    partner_id, tenant_id = await _home_ancestry(ctx, data.partner_id, data.tenant_id)
    partner_id, tenant_id = _home(ctx, partner_id, tenant_id, grants)
    user = User(
        email=data.email.lower(),
        name=data.name,
        password_hash=await passwords.hash_password(data.password),
        partner_id=partner_id,
        tenant_id=tenant_id,
    )
    ctx.session.add(user)
    try:
        await ctx.session.flush()
    except IntegrityError:
        raise Duplicate(f"a user with email {data.email.lower()!r} already exists") from None
    rows = [_grant_row(g, user_id=user.id) for g in grants]
    ctx.session.add_all(rows)
    await ctx.session.flush()
    await record_change(
        ctx,
        "user.create",
        user,
        after={**snapshot(user), "grants": [g.node + "/" + g.role for g in grants]},
    )
    return user, rows


async def get_user(ctx: Ctx, user_id: UUID) -> tuple[User, list[RoleGrant]]:
    user = await ctx.session.scalar(select(User).where(User.id == user_id))
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user, await grants_for(ctx.session, user_id=user.id)


async def list_users(
    ctx: Ctx,
    *,
    partner_id: UUID | None = None,
    tenant_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[Sequence[User], str | None]:
    stmt: Select[Any] = select(User)
    if partner_id:
        stmt = stmt.where(User.partner_id == partner_id)
    if tenant_id:
        stmt = stmt.where(User.tenant_id == tenant_id)
    return await fetch_page(ctx.session, stmt, User.id, limit=limit, cursor=cursor)


async def update_user(
    ctx: Ctx, user_id: UUID, data: schemas.UserUpdate, if_match: str | None
) -> tuple[User, list[RoleGrant]]:
    user, grants = await get_user(ctx, user_id)
    ctx.principal.require("users:write", partner_id=user.partner_id, tenant_id=user.tenant_id)
    check_if_match(user, if_match)
    before = snapshot(user)
    if data.name is not None:
        user.name = data.name
    if data.active is not None:
        user.active = data.active
    if data.password is not None:
        user.password_hash = await passwords.hash_password(data.password)
    await ctx.session.flush()
    await record_change(ctx, "user.update", user, before=before)
    return user, grants


# --- API clients ------------------------------------------------------------------------


async def create_client(
    ctx: Ctx, data: schemas.ClientCreate
) -> tuple[ApiClient, list[RoleGrant], str]:
    """Create a client; its secret is returned here once and only its digest is kept."""
    ctx.principal.require("clients:write")
    grants = [await resolve_grant(ctx, spec) for spec in data.grants]
    partner_id, tenant_id = await _home_ancestry(ctx, data.partner_id, data.tenant_id)
    partner_id, tenant_id = _home(ctx, partner_id, tenant_id, grants)
    secret = passwords.new_client_secret()
    client = ApiClient(
        client_id=passwords.new_client_id(),
        name=data.name,
        secret_hash=passwords.digest_secret(secret),
        partner_id=partner_id,
        tenant_id=tenant_id,
    )
    ctx.session.add(client)
    await ctx.session.flush()
    rows = [_grant_row(g, client_id=client.id) for g in grants]
    ctx.session.add_all(rows)
    await ctx.session.flush()
    await record_change(
        ctx,
        "client.create",
        client,
        after={**snapshot(client), "grants": [g.node + "/" + g.role for g in grants]},
    )
    return client, rows, secret


async def get_client(ctx: Ctx, client_id: UUID) -> tuple[ApiClient, list[RoleGrant]]:
    client = await ctx.session.scalar(select(ApiClient).where(ApiClient.id == client_id))
    if client is None:
        raise NotFound(f"client {client_id} does not exist")
    return client, await grants_for(ctx.session, client_id=client.id)


async def list_clients(
    ctx: Ctx, *, limit: int = 50, cursor: str | None = None
) -> tuple[Sequence[ApiClient], str | None]:
    return await fetch_page(
        ctx.session, select(ApiClient), ApiClient.id, limit=limit, cursor=cursor
    )


async def update_client(
    ctx: Ctx, client_id: UUID, data: schemas.ClientUpdate, if_match: str | None
) -> tuple[ApiClient, list[RoleGrant]]:
    client, grants = await get_client(ctx, client_id)
    ctx.principal.require("clients:write", partner_id=client.partner_id, tenant_id=client.tenant_id)
    check_if_match(client, if_match)
    before = snapshot(client)
    for key, value in msgspec.structs.asdict(data).items():
        if value is not None:
            setattr(client, key, value)
    await ctx.session.flush()
    await record_change(ctx, "client.update", client, before=before)
    return client, grants


# --- authentication (runs before any scope exists: system sessions) ----------------------


async def authenticate_user(session: AsyncSession, email: str, password: str) -> Principal:
    user = await session.scalar(select(User).where(User.email == email.lower()))
    if (
        not await passwords.verify_password(password, user.password_hash if user else None)
        or user is None
    ):
        raise Unauthorized("email or password is wrong")
    if not user.active:
        raise Unauthorized("this user is deactivated")
    rows = await grants_for(session, user_id=user.id)
    return Principal(
        subject=f"user:{user.id}",
        kind="user",
        name=user.email,
        grants=tuple(grant_of(r) for r in rows),
        home_partner_id=user.partner_id,
        home_tenant_id=user.tenant_id,
    )


async def authenticate_client(
    session: AsyncSession, client_id: str, secret: str, requested_scope: str | None = None
) -> Principal:
    client = await session.scalar(select(ApiClient).where(ApiClient.client_id == client_id))
    if client is None or not passwords.secret_matches(secret, client.secret_hash):
        raise Unauthorized("client authentication failed")
    if not client.active:
        raise Unauthorized("this client is deactivated")
    grants = tuple(grant_of(r) for r in await grants_for(session, client_id=client.id))
    if requested_scope:
        wanted = set(requested_scope.split())
        held = {g.role.value for g in grants}
        if not wanted <= held:
            raise InvalidInput(
                f"scope asks for roles this client does not hold: {' '.join(sorted(wanted - held))}"
            )
        grants = tuple(g for g in grants if g.role.value in wanted)
    return Principal(
        subject=f"client:{client.client_id}",
        kind="client",
        name=client.name,
        grants=grants,
        home_partner_id=client.partner_id,
        home_tenant_id=client.tenant_id,
    )
