"""Fixtures: a fresh PostgreSQL database per run (migrated, then used through the
non-owner application role), a Redis db number, the app, and builders for the tree."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from litestar import Litestar

from control_plane.app import create_app
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.db.migrate import upgrade
from control_plane.identity.admin import ensure_signing_key
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.runner import run_as
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy

PG_HOST = os.environ.get("STOREOPS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("STOREOPS_TEST_PG_PORT", "5432"))
PG_SUPERUSER = os.environ.get("STOREOPS_TEST_PG_USER", "postgres")
REDIS_URL = os.environ.get("STOREOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def _pg_url(user: str, db: str) -> str:
    return f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{db}"


async def _admin_exec(sql: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway database; PostgreSQL missing is a failure, never a skip."""
    name = f"storeops_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin_exec(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL is required at {PG_HOST}:{PG_PORT}: {exc}")
    yield name
    asyncio.run(_admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(pg_database: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    s = Settings(
        home=tmp_path_factory.mktemp("home"),
        database_url=_pg_url("storeops_app", pg_database),
        admin_database_url=_pg_url(PG_SUPERUSER, pg_database),
        redis_url=REDIS_URL,
        public_url="http://testserver",
        log_level="WARNING",
    )
    upgrade(s)
    asyncio.run(run_as(s, lambda c: ensure_signing_key(c, s)))
    return s


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Litestar]:
    application = create_app(settings)
    yield application
    for hook in application.on_shutdown:
        await hook()


@pytest.fixture(scope="session")
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """In-process HTTP on the test's own event loop (so fixtures and app share a loop)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class Tree:
    """One partner with one tenant, a region and a store, plus tokens for its roles."""

    partner_id: UUID
    tenant_id: UUID
    region_id: UUID
    store_id: UUID
    partner_token: str
    tenant_token: str


class World:
    """Builds partners and tenants through the real services and mints tokens."""

    def __init__(self, app: Litestar, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def run(self, fn: Any, principal: Principal | None = None) -> Any:
        return await run_as(self.settings, fn, principal, db=self.app.state.db)

    async def token(self, *grants: Grant, subject: str | None = None) -> str:
        principal = Principal(
            subject=subject or f"user:test-{secrets.token_hex(4)}",
            kind="user",
            name="test",
            grants=grants,
        )
        token, _ = await self.app.state.tokens.issue(principal)
        return str(token)

    async def tree(self, label: str | None = None) -> Tree:
        label = label or secrets.token_hex(4)

        async def build(c: Ctx) -> tuple[UUID, UUID, UUID, UUID]:
            p = await tenancy.create_partner(
                c, ts.PartnerCreate(slug=f"p-{label}", name=f"Partner {label}", kind="msp")
            )
            t = await tenancy.onboard_tenant(
                c,
                p.id,
                ts.TenantCreate(slug=f"t-{label}", name=f"Tenant {label}", timezone="Europe/Paris"),
            )
            await tenancy.transition_tenant(c, t.id, "activate")
            r = await tenancy.create_region(c, t.id, ts.RegionCreate(code="north", name="North"))
            s = await tenancy.create_store(
                c, t.id, ts.StoreCreate(code=f"S-{label}", name="Store", region_id=r.id)
            )
            return p.id, t.id, r.id, s.id

        pid, tid, rid, sid = await self.run(build)
        return Tree(
            partner_id=pid,
            tenant_id=tid,
            region_id=rid,
            store_id=sid,
            partner_token=await self.token(Grant(Role.PARTNER_ADMIN, partner_id=pid)),
            tenant_token=await self.token(
                Grant(Role.RETAILER_ADMIN, partner_id=pid, tenant_id=tid)
            ),
        )


@pytest.fixture(scope="session")
def world(app: Litestar, settings: Settings) -> World:
    return World(app, settings)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
async def self_check(app: Litestar) -> AsyncIterator[None]:
    """Domain checks reach this app itself (which answers a pending claim's challenge
    under its Host), as they would once the name's DNS points at StoreOps."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    app.state.domain_http = client
    yield
    app.state.domain_http = None
    await client.aclose()
