"""The hash-chained audit log: written with each change, tamper-evident, scoped on read.

Tampering runs on a throwaway database of its own (migrated like the session one), so the
shared database's chain is never touched; each tamper case starts from a pristine copy.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from click.testing import CliRunner
from litestar import Litestar

from control_plane.audit.models import AuditEntry
from control_plane.audit.service import GENESIS, ChainProblem, entry_hash, verify_chain
from control_plane.cli import main as cli
from control_plane.config import Settings, get_settings
from control_plane.context import Ctx
from control_plane.db import Database, Scope
from control_plane.db.migrate import upgrade
from control_plane.runner import run_as
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import PartnerKind
from tests.conftest import PG_SUPERUSER, World, _admin_exec, _pg_url, bearer

AUDIT = "/api/v1/audit"


def dsn(url: str) -> str:
    """A SQLAlchemy asyncpg URL as a plain libpq DSN for asyncpg."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def admin_fetch(settings: Settings, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn(settings.admin_database_url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def admin_execute(settings: Settings, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Run statements as the superuser in one transaction (the application role cannot)."""
    conn = await asyncpg.connect(dsn(settings.admin_database_url))
    try:
        async with conn.transaction():
            for sql, args in statements:
                await conn.execute(sql, *args)
    finally:
        await conn.close()


async def max_seq(settings: Settings) -> int:
    rows = await admin_fetch(settings, "SELECT coalesce(max(seq), 0) AS n FROM audit_entries")
    return int(rows[0]["n"])


async def verify(settings: Settings) -> tuple[int, list[ChainProblem]]:
    """verify_chain as the application role would run it."""
    db = Database(settings)
    try:
        async with db.session(Scope.system()) as session:
            return await verify_chain(session)
    finally:
        await db.dispose()


# --- a throwaway database with a known chain ---------------------------------------------


@dataclass(frozen=True)
class Chain:
    settings: Settings
    length: int


async def _seed(settings: Settings) -> None:
    async def build(c: Ctx) -> None:
        p = await tenancy.create_partner(
            c, ts.PartnerCreate(slug="chain-p", name="Chain partner", kind=PartnerKind.MSP)
        )
        t = await tenancy.onboard_tenant(
            c, p.id, ts.TenantCreate(slug="chain-t", name="Chain tenant", timezone="UTC")
        )
        await tenancy.transition_tenant(c, t.id, "activate")
        r = await tenancy.create_region(c, t.id, ts.RegionCreate(code="north", name="North"))
        await tenancy.create_region(c, t.id, ts.RegionCreate(code="south", name="South"))
        s = await tenancy.create_store(
            c, t.id, ts.StoreCreate(code="S1", name="Store 1", region_id=r.id)
        )
        await tenancy.update_store(c, t.id, s.id, ts.StoreUpdate(name="Store one"), None)
        await tenancy.transition_tenant(c, t.id, "suspend", reason="audit test")

    await run_as(settings, build)
    await admin_execute(
        settings, ("CREATE TABLE audit_pristine AS SELECT * FROM audit_entries", ())
    )


@pytest.fixture(scope="module")
def chain_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    name = f"storeops_audit_{secrets.token_hex(4)}"
    asyncio.run(_admin_exec(f'CREATE DATABASE "{name}"'))
    try:
        settings = Settings(
            home=tmp_path_factory.mktemp("audit-home"),
            database_url=_pg_url("storeops_app", name),
            admin_database_url=_pg_url(PG_SUPERUSER, name),
            log_level="WARNING",
        )
        upgrade(settings)
        asyncio.run(_seed(settings))
        yield Chain(settings, asyncio.run(max_seq(settings)))
    finally:
        asyncio.run(_admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _restore(settings: Settings) -> None:
    await admin_execute(
        settings,
        ("DELETE FROM audit_entries", ()),
        ("INSERT INTO audit_entries SELECT * FROM audit_pristine", ()),
    )


@pytest.fixture
def chain(chain_db: Chain) -> Iterator[Chain]:
    """The throwaway chain, pristine before and after the test whatever it did."""
    asyncio.run(_restore(chain_db.settings))
    yield chain_db
    asyncio.run(_restore(chain_db.settings))


def edit_action(seq: int, action: str = "tenant.offboard") -> tuple[str, tuple[Any, ...]]:
    return "UPDATE audit_entries SET action = $2 WHERE seq = $1", (seq, action)


def delete(seq: int) -> tuple[str, tuple[Any, ...]]:
    return "DELETE FROM audit_entries WHERE seq = $1", (seq,)


def swap(seq: int) -> list[tuple[str, tuple[Any, ...]]]:
    """Swap the seq values of entries ``seq`` and ``seq + 1``."""
    return [
        ("UPDATE audit_entries SET seq = -1 WHERE seq = $1", (seq,)),
        ("UPDATE audit_entries SET seq = $1 WHERE seq = $2", (seq, seq + 1)),
        ("UPDATE audit_entries SET seq = $1 WHERE seq = -1", (seq + 1,)),
    ]


# --- tamper evidence -----------------------------------------------------------------------


async def test_intact_chain_reports_no_problems(chain: Chain) -> None:
    assert chain.length >= 8
    count, problems = await verify(chain.settings)
    assert count == chain.length
    assert problems == []


async def test_application_role_cannot_rewrite_the_log(chain: Chain) -> None:
    """Append-only for the app: UPDATE and DELETE are revoked from its role."""
    conn = await asyncpg.connect(dsn(chain.settings.database_url))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE audit_entries SET action = 'x' WHERE seq = 1")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_entries WHERE seq = 1")
    finally:
        await conn.close()
    assert (await verify(chain.settings))[1] == []


@pytest.mark.parametrize("position", [1, 4, "last"])
async def test_edited_entry_is_detected_at_its_position(chain: Chain, position: int | str) -> None:
    seq = chain.length if position == "last" else int(position)
    await admin_execute(chain.settings, edit_action(seq))
    count, problems = await verify(chain.settings)
    assert count == chain.length
    assert [(p.position, p.seq) for p in problems] == [(seq, seq)], problems
    assert "edited" in problems[0].problem
    assert f"position {seq}" in str(problems[0])


async def test_edited_payload_is_detected(chain: Chain) -> None:
    await admin_execute(
        chain.settings,
        (
            "UPDATE audit_entries SET after = jsonb_set(after, '{name}', '\"Evil\"') WHERE seq = $1",
            (5,),
        ),
    )
    _, problems = await verify(chain.settings)
    assert [p.position for p in problems] == [5], problems


async def test_edit_with_recomputed_hash_breaks_the_next_link(chain: Chain) -> None:
    """An attacker who fixes up the edited entry's own hash is caught by the next one."""
    db = Database(chain.settings)
    try:
        async with db.session(Scope.system()) as session:
            entry = await session.get(AuditEntry, 3)
            assert entry is not None
            entry.action = "tenant.offboard"
            forged = entry_hash(entry.prev_hash, entry)
    finally:
        await db.dispose()
    await admin_execute(
        chain.settings,
        (
            "UPDATE audit_entries SET action = $2, hash = $3 WHERE seq = $1",
            (3, entry.action, forged),
        ),
    )
    _, problems = await verify(chain.settings)
    assert [p.position for p in problems] == [4], problems
    assert "does not link" in problems[0].problem


@pytest.mark.parametrize("seq", [1, 4])
async def test_deleted_entry_is_detected_at_its_position(chain: Chain, seq: int) -> None:
    await admin_execute(chain.settings, delete(seq))
    count, problems = await verify(chain.settings)
    assert count == chain.length - 1
    # The entry now at that position is the one after the gap: reported there, and only there.
    assert {p.position for p in problems} == {seq}, problems
    assert {p.seq for p in problems} == {seq + 1}
    assert any("deleted" in p.problem for p in problems)


@pytest.mark.parametrize("seq", [1, 4])
async def test_reordered_entries_are_detected_at_their_position(chain: Chain, seq: int) -> None:
    await admin_execute(chain.settings, *swap(seq))
    count, problems = await verify(chain.settings)
    assert count == chain.length
    assert problems, "a reorder must not verify"
    positions = {p.position for p in problems}
    # Both moved entries are flagged, and the entry after them no longer links to its new
    # predecessor; nothing before the swap or further along is blamed.
    assert min(positions) == seq, problems
    assert positions == {seq, seq + 1, seq + 2}, problems
    assert any("reordered" in p.problem for p in problems if p.position == seq)
    assert any("edited" in p.problem for p in problems if p.position == seq)


# --- the CLI -------------------------------------------------------------------------------


def run_cli(settings: Settings, home: Path) -> Any:
    env = {
        "STOREOPS_DATABASE_URL": settings.database_url,
        "STOREOPS_ADMIN_DATABASE_URL": settings.admin_database_url,
        "STOREOPS_HOME": str(home),
        "STOREOPS_REDIS_URL": "",
        "STOREOPS_LOG_LEVEL": "WARNING",
    }
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(cli, ["audit", "verify"], env=env)
    finally:
        get_settings.cache_clear()


def test_cli_audit_verify_exit_codes(chain: Chain, tmp_path: Path) -> None:
    intact = run_cli(chain.settings, tmp_path)
    assert intact.exit_code == 0, intact.output
    assert f"intact: {chain.length} entries" in intact.stdout

    asyncio.run(admin_execute(chain.settings, edit_action(3)))
    edited = run_cli(chain.settings, tmp_path)
    assert edited.exit_code == 1, edited.output
    assert "position 3" in edited.stderr
    assert "intact" not in edited.stdout

    asyncio.run(_restore(chain.settings))
    asyncio.run(admin_execute(chain.settings, delete(6)))
    deleted = run_cli(chain.settings, tmp_path)
    assert deleted.exit_code == 1, deleted.output
    assert "position 6" in deleted.stderr

    asyncio.run(_restore(chain.settings))
    assert run_cli(chain.settings, tmp_path).exit_code == 0


# --- writes through the API ----------------------------------------------------------------


async def entries_for(settings: Settings, target_id: UUID | str) -> list[asyncpg.Record]:
    return await admin_fetch(
        settings, "SELECT * FROM audit_entries WHERE target_id = $1 ORDER BY seq", str(target_id)
    )


async def test_api_mutation_appends_one_linked_entry(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    request_id = f"audit-{secrets.token_hex(6)}"
    before = await max_seq(settings)
    res = await client.post(
        f"/api/v1/tenants/{tree.tenant_id}/regions",
        json={"code": "east", "name": "East"},
        headers={**bearer(tree.partner_token), "X-Request-ID": request_id},
    )
    assert res.status_code == 201, res.text
    region_id = res.json()["id"]
    assert await max_seq(settings) == before + 1

    listed = await client.get(
        AUDIT, params={"target_id": region_id}, headers=bearer(tree.partner_token)
    )
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()["items"]
    assert entry["action"] == "region.create"
    assert entry["target_type"] == "region"
    assert entry["request_id"] == request_id
    assert entry["actor_kind"] == "user"
    assert entry["actor"].startswith("user:test-")
    assert entry["partner_id"] == str(tree.partner_id)
    assert entry["tenant_id"] == str(tree.tenant_id)
    assert entry["after"]["code"] == "east"
    assert entry["seq"] == before + 1

    [row] = await entries_for(settings, region_id)
    [prev] = await admin_fetch(settings, "SELECT hash FROM audit_entries WHERE seq = $1", before)
    assert row["prev_hash"] == prev["hash"]
    assert row["hash"] == entry["hash"]


async def test_failed_mutations_append_nothing(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    headers = bearer(tree.partner_token)
    before = await max_seq(settings)

    illegal = await client.post(f"/api/v1/tenants/{tree.tenant_id}/resume", headers=headers)
    assert illegal.status_code == 409, illegal.text
    assert illegal.json()["type"] == "urn:storeops:problem:illegal-transition"
    duplicate = await client.post(
        f"/api/v1/tenants/{tree.tenant_id}/regions",
        json={"code": "north", "name": "North again"},
        headers=headers,
    )
    assert duplicate.status_code == 409, duplicate.text
    stale = await client.patch(
        f"/api/v1/tenants/{tree.tenant_id}",
        json={"name": "Renamed"},
        headers={**headers, "If-Match": '"000000000000-99"'},
    )
    assert stale.status_code == 412, stale.text
    assert await max_seq(settings) == before
    assert [r["action"] for r in await entries_for(settings, tree.tenant_id)] == [
        "tenant.onboard",
        "tenant.activate",
    ]


async def test_entry_commits_and_rolls_back_with_its_change(
    world: World, settings: Settings
) -> None:
    """The entry is written in the caller's transaction: a later failure undoes both."""
    tree = await world.tree()
    before = await max_seq(settings)

    class Boom(RuntimeError):
        pass

    async def create_then_fail(c: Ctx) -> None:
        region = await tenancy.create_region(
            c, tree.tenant_id, ts.RegionCreate(code="doomed", name="Doomed")
        )
        assert region.id is not None
        raise Boom

    with pytest.raises(Boom):
        await world.run(create_then_fail)
    assert await max_seq(settings) == before
    rows = await admin_fetch(
        settings,
        "SELECT count(*) AS n FROM regions WHERE tenant_id = $1 AND code = 'doomed'",
        tree.tenant_id,
    )
    assert rows[0]["n"] == 0


async def test_session_chain_is_linked_and_verifies(app: Litestar, settings: Settings) -> None:
    rows = await admin_fetch(
        settings, "SELECT seq, prev_hash, hash FROM audit_entries ORDER BY seq"
    )
    assert rows, "the session database has entries from its fixtures"
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert rows[0]["prev_hash"] == GENESIS
    for earlier, later in itertools.pairwise(rows):
        assert later["prev_hash"] == earlier["hash"]
    assert len({r["hash"] for r in rows}) == len(rows)

    db: Database = app.state.db
    async with db.session(Scope.system()) as session:
        count, problems = await verify_chain(session)
    assert count == len(rows)
    assert problems == []


# --- reading: scope, filters, pages --------------------------------------------------------


async def audit_items(client: httpx.AsyncClient, token: str, **params: Any) -> list[dict[str, Any]]:
    res = await client.get(AUDIT, params={"limit": 200, **params}, headers=bearer(token))
    assert res.status_code == 200, res.text
    assert res.json()["next_cursor"] is None
    items: list[dict[str, Any]] = res.json()["items"]
    return items


async def test_audit_is_scoped_to_the_callers_subtree(
    client: httpx.AsyncClient, world: World
) -> None:
    a, b = await world.tree(), await world.tree()
    mine = await audit_items(client, a.partner_token)
    assert {e["action"] for e in mine} == {
        "partner.create",
        "tenant.onboard",
        "tenant.activate",
        "region.create",
        "store.create",
    }
    assert {e["partner_id"] for e in mine} == {str(a.partner_id)}
    b_ids = {str(x) for x in (b.partner_id, b.tenant_id, b.region_id, b.store_id)}
    assert not any(e["target_id"] in b_ids for e in mine)
    # Asking for B's entries by filter does not reach them either.
    assert await audit_items(client, a.partner_token, partner_id=str(b.partner_id)) == []
    assert await audit_items(client, a.partner_token, target_id=str(b.tenant_id)) == []

    theirs = await audit_items(client, b.partner_token)
    assert {e["partner_id"] for e in theirs} == {str(b.partner_id)}
    assert not {e["seq"] for e in mine} & {e["seq"] for e in theirs}

    # A retailer admin sees its tenant's entries, not the partner's own.
    retailer = await audit_items(client, a.tenant_token)
    assert {e["tenant_id"] for e in retailer} == {str(a.tenant_id)}
    assert "partner.create" not in {e["action"] for e in retailer}


async def test_audit_filters(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    token = tree.partner_token
    onboard = await audit_items(client, token, action="tenant.onboard")
    assert [(e["action"], e["target_id"]) for e in onboard] == [
        ("tenant.onboard", str(tree.tenant_id))
    ]
    tenant_actions = await audit_items(client, token, action="tenant.*")
    assert [e["action"] for e in tenant_actions] == ["tenant.activate", "tenant.onboard"]
    stores = await audit_items(client, token, target_type="store")
    assert [(e["target_type"], e["target_id"]) for e in stores] == [("store", str(tree.store_id))]
    assert await audit_items(client, token, action="tenant.*", target_type="store") == []
    assert await audit_items(client, token, action="no.such.action") == []


async def test_audit_cursor_pagination(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    headers = bearer(tree.partner_token)
    for code in ("r1", "r2", "r3"):
        res = await client.post(
            f"/api/v1/tenants/{tree.tenant_id}/regions",
            json={"code": code, "name": code},
            headers=headers,
        )
        assert res.status_code == 201, res.text
    everything = await audit_items(client, tree.partner_token)
    assert len(everything) == 8

    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        res = await client.get(AUDIT, params=params, headers=headers)
        assert res.status_code == 200, res.text
        body = res.json()
        assert 1 <= len(body["items"]) <= 3
        seen += [e["seq"] for e in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen, reverse=True), "newest first"
    assert seen == [e["seq"] for e in everything]

    bad = await client.get(AUDIT, params={"cursor": "not-a-seq"}, headers=headers)
    assert bad.status_code == 422, bad.text
    assert bad.json()["type"] == "urn:storeops:problem:invalid-input"
    zero = await client.get(AUDIT, params={"limit": 0}, headers=headers)
    assert zero.status_code == 400, zero.text
