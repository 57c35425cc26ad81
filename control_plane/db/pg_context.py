"""PostgreSQL transactions that open with their tenancy context in one round trip.

The application engine runs the driver in autocommit mode and brackets every SQLAlchemy
transaction itself: ``BEGIN; SELECT set_config(..., true) x3`` goes out as one simple-protocol
message when the session begins, ``COMMIT`` or ``ROLLBACK`` when it ends. That saves a
round trip per request over BEGIN-then-set_config, and the context stays transaction-local.
A connection is never returned to the pool inside a transaction: the pool's reset rolls
back whatever is still open.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from control_plane.db.scope import Scope

_IDS = re.compile(r"^[0-9a-f,-]*$")


def scope_settings(scope: Scope) -> tuple[str, str, str]:
    """The values of storeops.platform, storeops.partner_ids and storeops.tenant_ids."""
    return (
        "on" if scope.platform else "",
        ",".join(str(i) for i in sorted(scope.partner_ids)),
        ",".join(str(i) for i in sorted(scope.visible_tenant_ids)),
    )


def begin_sql(scope: Scope) -> str:
    """The opening message. Values are UUIDs we formatted, checked again before inlining."""
    platform, partners, tenants = scope_settings(scope)
    if not (_IDS.match(partners) and _IDS.match(tenants)):
        raise ValueError("scope ids must be UUIDs")
    return (
        "BEGIN; SELECT "
        f"set_config('storeops.platform', '{platform}', true), "
        f"set_config('storeops.partner_ids', '{partners}', true), "
        f"set_config('storeops.tenant_ids', '{tenants}', true)"
    )


def _driver(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.driver_connection  # type: ignore[union-attr]


def begin_scoped(conn: Connection, scope: Scope) -> None:
    await_only(_driver(conn).execute(begin_sql(scope)))


def install(engine: AsyncEngine) -> None:
    """Bracket ``engine``'s transactions ourselves; it must run in AUTOCOMMIT mode."""

    def _end(conn: Connection, statement: str) -> None:
        driver = _driver(conn)
        if driver.is_in_transaction():
            await_only(driver.execute(statement))

    @event.listens_for(engine.sync_engine, "commit")
    def _commit(conn: Connection) -> None:
        _end(conn, "COMMIT")

    @event.listens_for(engine.sync_engine, "rollback")
    def _rollback(conn: Connection) -> None:
        _end(conn, "ROLLBACK")

    @event.listens_for(engine.sync_engine.pool, "reset")
    def _reset(dbapi_conn: Any, _record: Any, _state: Any) -> None:
        driver = dbapi_conn.driver_connection
        if driver is not None and not driver.is_closed() and driver.is_in_transaction():
            await_only(driver.execute("ROLLBACK"))
