"""The baselines for ``bench/api.py``: a bare Litestar app reading one tenant row with asyncpg.

``GET /tenants/{id}``: no auth, no ORM, no row-level-security context, no middleware, one
``SELECT`` on a pooled connection as the table owner. The floor the control plane's
``GET /api/v1/tenants/{id}`` is compared against.

``GET /rls/tenants/{id}``: the same row read inside a transaction that carries the RLS
context, still without auth, ORM or middleware: as the application role (row-level
security on), ``BEGIN``, ``set_config`` of the tenant scope, the ``SELECT``, ``COMMIT``.
That is the protocol the control plane's ORM sessions use; its GET-by-id reads avoid it
with the one-round-trip ``storeops_read_row`` (migration 0002). For information.

Served by uvicorn with the same options as the control plane::

    uvicorn --app-dir bench --factory bare_app:create_app

``BENCH_BARE_DSN`` names the database as its owner and ``BENCH_BARE_RLS_DSN`` as the
application role (plain ``postgresql://`` DSNs; the second is optional), and
``BENCH_BARE_POOL_SIZE`` the size of each pool (the control plane's ``db_pool_size``).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.exceptions import NotFoundException

SELECT_TENANT = (
    "SELECT id, partner_id, slug, name, status, timezone, isolation_tier, settings,"
    " version, created_at, updated_at FROM tenants WHERE id = $1"
)
#: The control plane's ``_SET_SCOPE`` for a principal that sees one tenant.
SET_SCOPE = (
    "SELECT set_config('storeops.platform', '', true),"
    " set_config('storeops.partner_ids', '', true),"
    " set_config('storeops.tenant_ids', $1, true)"
)


class Tenant(msgspec.Struct):
    """Same fields as ``control_plane.tenancy.schemas.Tenant``."""

    id: UUID
    partner_id: UUID
    slug: str
    name: str
    status: str
    timezone: str
    isolation_tier: str
    settings: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=msgspec.json.encode, decoder=msgspec.json.decode, schema="pg_catalog"
    )


@get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/tenants/{tenant_id:uuid}")
async def get_tenant(state: State, tenant_id: UUID) -> Response[Tenant]:
    pool: asyncpg.Pool = state.pool
    row = await pool.fetchrow(SELECT_TENANT, tenant_id)
    if row is None:
        raise NotFoundException(f"tenant {tenant_id} does not exist")
    return Response(Tenant(**dict(row)))


@get("/rls/tenants/{tenant_id:uuid}")
async def get_tenant_rls(state: State, tenant_id: UUID) -> Response[Tenant]:
    pool: asyncpg.Pool | None = state.rls_pool
    if pool is None:
        raise NotFoundException("BENCH_BARE_RLS_DSN is not set")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(SET_SCOPE, str(tenant_id))
        row = await conn.fetchrow(SELECT_TENANT, tenant_id)
    if row is None:
        raise NotFoundException(f"tenant {tenant_id} does not exist")
    return Response(Tenant(**dict(row)))


def create_app() -> Litestar:
    dsn = os.environ["BENCH_BARE_DSN"]
    rls_dsn = os.environ.get("BENCH_BARE_RLS_DSN")
    size = int(os.environ.get("BENCH_BARE_POOL_SIZE", "10"))

    async def startup(app: Litestar) -> None:
        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=size, max_size=size, init=_init_connection
        )
        app.state.rls_pool = None
        if rls_dsn:
            app.state.rls_pool = await asyncpg.create_pool(
                rls_dsn, min_size=size, max_size=size, init=_init_connection
            )

    async def shutdown(app: Litestar) -> None:
        await app.state.pool.close()
        if app.state.rls_pool is not None:
            await app.state.rls_pool.close()

    return Litestar(
        route_handlers=[healthz, get_tenant, get_tenant_rls],
        on_startup=[startup],
        on_shutdown=[shutdown],
        openapi_config=None,
        debug=False,
    )
