"""The one-round-trip scoped read: RLS applies, and the caller's context survives it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from control_plane.config import Settings
from control_plane.db import Scope
from control_plane.db.pg_context import scope_settings
from control_plane.db.reads import read_one
from control_plane.tenancy.models import Store, Tenant
from tests.conftest import Tree, World
from tests.db.test_rls import dsn

READ = "SELECT storeops_read_row($1::regclass, $2, $3, $4, $5)"


@pytest.fixture
async def conn(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(dsn(settings.database_url))
    yield connection
    await connection.close()


def only(tenant: Tree) -> Scope:
    return Scope(tenant_ids=frozenset({tenant.tenant_id}))


async def test_reads_obey_row_level_security(conn: asyncpg.Connection, world: World) -> None:
    a, b = await world.tree(), await world.tree()
    mine = await conn.fetchval(READ, "tenants", a.tenant_id, *scope_settings(only(a)))
    assert mine is not None and json.loads(mine)["id"] == str(a.tenant_id)
    assert await conn.fetchval(READ, "tenants", b.tenant_id, *scope_settings(only(a))) is None
    assert await conn.fetchval(READ, "tenants", b.tenant_id, "", "", "") is None


async def test_the_callers_context_is_restored(conn: asyncpg.Connection, world: World) -> None:
    a, b = await world.tree(), await world.tree()
    async with conn.transaction():
        await conn.execute("SELECT set_config('storeops.tenant_ids', $1, true)", str(a.tenant_id))
        other = await conn.fetchval(READ, "tenants", b.tenant_id, *scope_settings(only(b)))
        assert other is not None
        assert await conn.fetchval("SELECT current_setting('storeops.tenant_ids')") == str(
            a.tenant_id
        )
        assert await conn.fetchval("SELECT count(*) FROM tenants") == 1


async def test_the_data_layer_narrows_below_tenant_level(world: World) -> None:
    a = await world.tree()
    db = world.app.state.db
    region_only = Scope(partial_tenant_ids=frozenset({a.tenant_id}), region_ids=frozenset())
    # RLS admits the tenant's rows (tenant granularity); the data layer still refuses a
    # store outside the grant's region.
    assert await read_one(db, region_only, Store, a.store_id) is None
    assert (await read_one(db, region_only, Tenant, a.tenant_id) or {})["id"] == a.tenant_id
    in_region = Scope(
        partial_tenant_ids=frozenset({a.tenant_id}), region_ids=frozenset({a.region_id})
    )
    assert (await read_one(db, in_region, Store, a.store_id) or {})["id"] == a.store_id
