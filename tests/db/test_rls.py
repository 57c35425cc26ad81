"""PostgreSQL row-level security, seen from the application role with no ORM in between.

The ORM's scoping is one wall; these tests check the second one on its own: connected
directly as ``storeops_app``, a session sees only what its transaction's
``set_config('storeops.*', ..., true)`` scope covers, and nothing at all without one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID

import asyncpg
import pytest

from control_plane.config import Settings
from tests.conftest import Tree, World

RLS_TABLES = ("partners", "tenants", "regions", "stores")


def dsn(url: str) -> str:
    """An asyncpg DSN from a SQLAlchemy URL (``postgresql+asyncpg://`` -> ``postgresql://``)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="module")
async def trees(world: World) -> tuple[Tree, Tree]:
    return await world.tree(), await world.tree()


@pytest.fixture
async def app_conn(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn(settings.database_url))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def admin_conn(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn(settings.admin_database_url))
    try:
        yield conn
    finally:
        await conn.close()


async def scope_to_tenant(conn: asyncpg.Connection, tenant_id: UUID) -> None:
    """The transaction-local scope the application sets for a tenant-level grant."""
    await conn.execute("SELECT set_config('storeops.tenant_ids', $1, true)", str(tenant_id))


async def in_tenant_scope(
    conn: asyncpg.Connection, tenant_id: UUID, statement: str, *args: object
) -> str:
    """Run one statement in its own transaction, scoped to ``tenant_id``."""
    async with conn.transaction():
        await scope_to_tenant(conn, tenant_id)
        return str(await conn.execute(statement, *args))


async def as_platform(conn: asyncpg.Connection, statement: str) -> str:
    """Run one statement in its own transaction under the platform-wide scope."""
    async with conn.transaction():
        await conn.execute("SELECT set_config('storeops.platform', 'on', true)")
        return str(await conn.execute(statement))


async def versions(conn: asyncpg.Connection, tree: Tree) -> list[tuple[str, UUID, int, str]]:
    rows = await conn.fetch(
        """
        SELECT 'partner', id, version, name FROM partners WHERE id = $1
        UNION ALL SELECT 'tenant', id, version, name || status FROM tenants WHERE id = $2
        UNION ALL SELECT 'region', id, version, name FROM regions WHERE tenant_id = $2
        UNION ALL SELECT 'store', id, version, name FROM stores WHERE tenant_id = $2
        ORDER BY 2
        """,
        tree.partner_id,
        tree.tenant_id,
    )
    return [tuple(r) for r in rows]


async def test_app_role_is_not_privileged(
    settings: Settings, admin_conn: asyncpg.Connection
) -> None:
    assert dsn(settings.database_url) != dsn(settings.admin_database_url)
    role = settings.db_app_role
    flags = await admin_conn.fetchrow(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1", role
    )
    assert flags is not None, f"role {role} does not exist"
    assert flags["rolsuper"] is False
    assert flags["rolbypassrls"] is False
    owned = await admin_conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tableowner = $1", role
    )
    assert owned == [], f"{role} owns {[r['tablename'] for r in owned]}: RLS would not bind it"
    secured = await admin_conn.fetch(
        "SELECT relname FROM pg_class WHERE relname = ANY($1::text[]) AND relrowsecurity",
        list(RLS_TABLES),
    )
    assert {r["relname"] for r in secured} == set(RLS_TABLES)


async def test_connected_as_the_app_role(settings: Settings, app_conn: asyncpg.Connection) -> None:
    assert await app_conn.fetchval("SELECT current_user") == settings.db_app_role


@pytest.mark.parametrize("table", RLS_TABLES)
async def test_no_scope_sees_no_rows(
    trees: tuple[Tree, Tree],
    table: str,
    app_conn: asyncpg.Connection,
    admin_conn: asyncpg.Connection,
) -> None:
    assert await admin_conn.fetchval(f"SELECT count(*) FROM {table}") > 0  # noqa: S608
    assert await app_conn.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608
    async with app_conn.transaction():
        assert await app_conn.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608


async def test_tenant_scope_sees_only_that_tenant(
    trees: tuple[Tree, Tree], app_conn: asyncpg.Connection
) -> None:
    a, b = trees
    async with app_conn.transaction():
        await scope_to_tenant(app_conn, a.tenant_id)
        assert await app_conn.fetchval("SELECT array_agg(id) FROM tenants") == [a.tenant_id]
        regions = await app_conn.fetch("SELECT id, tenant_id FROM regions")
        assert {r["id"] for r in regions} == {a.region_id}
        stores = await app_conn.fetch("SELECT id, tenant_id FROM stores")
        assert {r["id"] for r in stores} == {a.store_id}
        # A tenant-level scope does not open the partner row above it.
        assert await app_conn.fetchval("SELECT count(*) FROM partners") == 0
        assert b.tenant_id not in {r["tenant_id"] for r in (*regions, *stores)}


INSERTS = {
    "regions": (
        "INSERT INTO regions (id, partner_id, tenant_id, code, name, created_at, updated_at,"
        " version) VALUES (gen_random_uuid(), $1, $2, $3, 'Injected', now(), now(), 1)"
    ),
    "stores": (
        "INSERT INTO stores (id, partner_id, tenant_id, region_id, code, name, timezone,"
        " opening_hours, holidays, created_at, updated_at, version) VALUES (gen_random_uuid(),"
        " $1, $2, NULL, $3, 'Injected', 'UTC', '{}', '[]', now(), now(), 1)"
    ),
}


@pytest.mark.parametrize("table", sorted(INSERTS))
async def test_insert_into_another_tenant_is_refused(
    trees: tuple[Tree, Tree], table: str, app_conn: asyncpg.Connection
) -> None:
    a, b = trees
    # Positive control: the same statement works for the tenant in scope (then rolls back).
    tx = app_conn.transaction()
    await tx.start()
    try:
        await scope_to_tenant(app_conn, a.tenant_id)
        assert await app_conn.execute(INSERTS[table], a.partner_id, a.tenant_id, "RLS-OK") == (
            "INSERT 0 1"
        )
    finally:
        await tx.rollback()

    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="row-level security"):
        await in_tenant_scope(app_conn, a.tenant_id, INSERTS[table], b.partner_id, b.tenant_id, "X")


async def test_update_and_delete_of_another_tenant_touch_nothing(
    trees: tuple[Tree, Tree], app_conn: asyncpg.Connection, admin_conn: asyncpg.Connection
) -> None:
    a, b = trees
    before = await versions(admin_conn, b)
    async with app_conn.transaction():
        await scope_to_tenant(app_conn, a.tenant_id)
        for statement, arg in (
            ("UPDATE partners SET name = 'hijacked' WHERE id = $1", b.partner_id),
            ("UPDATE tenants SET status = 'offboarded' WHERE id = $1", b.tenant_id),
            ("UPDATE regions SET name = 'hijacked' WHERE tenant_id = $1", b.tenant_id),
            ("UPDATE stores SET name = 'hijacked' WHERE tenant_id = $1", b.tenant_id),
            ("DELETE FROM stores WHERE tenant_id = $1", b.tenant_id),
            ("DELETE FROM regions WHERE tenant_id = $1", b.tenant_id),
        ):
            status = await app_conn.execute(statement, arg)
            assert status.endswith(" 0"), f"{statement} -> {status}"
    # Moving A's own store into B is refused by the policy's WITH CHECK.
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="row-level security"):
        await in_tenant_scope(
            app_conn,
            a.tenant_id,
            "UPDATE stores SET tenant_id = $1, partner_id = $2 WHERE id = $3",
            b.tenant_id,
            b.partner_id,
            a.store_id,
        )
    assert await versions(admin_conn, b) == before


async def test_scope_does_not_leak_to_the_next_transaction(
    trees: tuple[Tree, Tree], app_conn: asyncpg.Connection
) -> None:
    a, _ = trees
    async with app_conn.transaction():
        await scope_to_tenant(app_conn, a.tenant_id)
        await app_conn.execute("SELECT set_config('storeops.platform', 'on', true)")
        assert await app_conn.fetchval("SELECT count(*) FROM tenants") > 1  # platform sees all
    # Same connection, next statement (own implicit transaction) and next explicit one.
    assert not await app_conn.fetchval("SELECT current_setting('storeops.tenant_ids', true)")
    assert not await app_conn.fetchval("SELECT current_setting('storeops.platform', true)")
    assert await app_conn.fetchval("SELECT count(*) FROM tenants") == 0
    async with app_conn.transaction():
        assert await app_conn.fetchval("SELECT count(*) FROM tenants") == 0
        assert await app_conn.fetchval("SELECT count(*) FROM stores") == 0

    # A scope set in a transaction that rolls back is gone as well.
    tx = app_conn.transaction()
    await tx.start()
    await scope_to_tenant(app_conn, a.tenant_id)
    assert await app_conn.fetchval("SELECT count(*) FROM tenants") == 1
    await tx.rollback()
    assert await app_conn.fetchval("SELECT count(*) FROM tenants") == 0


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET actor = 'forged' WHERE seq = 1",
        "DELETE FROM audit_entries WHERE seq = 1",
        "TRUNCATE audit_entries",
    ],
)
async def test_app_role_cannot_rewrite_the_audit_log(
    trees: tuple[Tree, Tree], statement: str, app_conn: asyncpg.Connection
) -> None:
    assert await app_conn.fetchval("SELECT count(*) FROM audit_entries") > 0  # readable
    # Even a platform-wide scope does not lift a missing table privilege.
    with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="permission denied"):
        await as_platform(app_conn, statement)
