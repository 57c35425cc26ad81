"""A partner with a fleet of tenants that all deploy the partner's own copy of a template
at 1.0.0 (1.1.0 and 2.0.0 published, 1.0.1 yanked), and helpers that play the runtimes:
confirm what they were told to run, and send run and task telemetry."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from control_plane.catalog import service as catalog
from control_plane.context import Ctx
from control_plane.contracts import telemetry, uuid7
from control_plane.contracts.desired_state import DeploymentReport, StatusReport
from control_plane.contracts.telemetry import Batch, Event, Kind
from control_plane.deployments import schemas as ds
from control_plane.deployments import service as deployments
from control_plane.deployments.models import Deployment
from control_plane.deployments.state import current_generation
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.runtimelink import status
from control_plane.telemetry import service as telemetry_service
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy
from tests.conftest import World
from tests.deployments.support import TRANSFER, source, transfer


@dataclass
class Shop:
    id: UUID
    slug: str
    deployment_id: UUID


@dataclass
class Fleet:
    partner_id: UUID
    slug: str
    shops: list[Shop]
    admin: str
    reader: str
    extra: dict[str, Any] = field(default_factory=dict)

    def ids(self) -> list[str]:
        return [str(s.id) for s in self.shops]


async def fleet(world: World, size: int = 5, *, timezone: str = "Europe/Paris") -> Fleet:
    label = secrets.token_hex(4)

    async def build(c: Ctx) -> tuple[UUID, str, list[Shop]]:
        partner = await tenancy.create_partner(
            c, ts.PartnerCreate(slug=f"ro-{label}", name=f"Rollouts {label}", kind="msp")
        )
        first = await catalog.publish(c, source(TRANSFER, partner.slug))
        await catalog.publish(c, source(TRANSFER, partner.slug, "1.1.0"))
        await catalog.publish(c, source(TRANSFER, partner.slug, "2.0.0"))
        await catalog.publish(c, source(TRANSFER, partner.slug, "1.0.1"))
        await catalog.set_status(c, first.template.id, "1.0.1", "yank", "leaks stock")
        shops = []
        for i in range(size):
            zone = "Europe/London" if i == size - 1 else timezone
            tenant = await tenancy.onboard_tenant(
                c,
                partner.id,
                ts.TenantCreate(
                    slug=f"shop{i}-{label}",
                    name=f"Shop {i}",
                    timezone=zone,
                    labels={"ring": "early" if i < 2 else "late"},
                ),
            )
            await tenancy.transition_tenant(c, tenant.id, "activate")
            made, _ = await deployments.create_deployment(c, tenant.id, msgspec_convert(transfer()))
            shops.append(Shop(tenant.id, tenant.slug, made.id))
        return partner.id, partner.slug, shops

    pid, slug, shops = await world.run(build)
    return Fleet(
        partner_id=pid,
        slug=slug,
        shops=shops,
        admin=await world.token(Grant(Role.PARTNER_ADMIN, partner_id=pid)),
        reader=await world.token(Grant(Role.PARTNER_OPERATOR, partner_id=pid)),
    )


def msgspec_convert(body: dict[str, Any]) -> ds.DeploymentCreate:
    return msgspec.convert(body, ds.DeploymentCreate)


def runtime(partner_id: UUID, tenant_id: UUID) -> Principal:
    return Principal(
        subject=f"client:runtime-{tenant_id}",
        kind="client",
        name="runtime",
        grants=(Grant(Role.TENANT_RUNTIME, partner_id=partner_id, tenant_id=tenant_id),),
        home_partner_id=partner_id,
        home_tenant_id=tenant_id,
    )


async def confirm(world: World, f: Fleet, shop: Shop, outcome: str = "applied") -> str:
    """Play the shop's runtime: report its deployment as applied (or failed); returns
    the version it now runs."""

    async def go(c: Ctx) -> str:
        deployment = await c.session.get(Deployment, shop.deployment_id)
        assert deployment is not None
        generation = await current_generation(c.session, shop.id)
        report = StatusReport(
            generation=generation,
            deployments=[
                DeploymentReport(
                    id=deployment.id,
                    status=outcome,  # type: ignore[arg-type]
                    content_hash=deployment.content_hash,
                    reason="boom" if outcome == "failed" else None,
                )
            ],
        )
        await status.report(c, report)
        return deployment.semver

    result: str = await world.run(go, runtime(f.partner_id, shop.id))
    return result


async def version_of(world: World, shop: Shop) -> str:
    async def go(c: Ctx) -> str:
        deployment = await c.session.get(Deployment, shop.deployment_id)
        assert deployment is not None
        return deployment.semver

    result: str = await world.run(go)
    return result


async def runs(
    world: World,
    f: Fleet,
    shop: Shop,
    version: str,
    *,
    ok: int = 0,
    failed: int = 0,
    opened: int = 0,
    breached: int = 0,
    at: datetime | None = None,
) -> None:
    """Telemetry as the runtime sends it: finished runs and tasks of ``version``."""
    when = at or datetime.now(UTC) - timedelta(milliseconds=10)
    common = {"template_id": TRANSFER, "template_version": version}
    made: list[Event] = []
    for outcome, n in (("succeeded", ok), ("failed", failed)):
        made += [
            Event(id=uuid7(), at=when, kind=Kind.RUN_FINISHED, status=outcome, run_id=uuid7(),
                  duration_ms=5, **common)
            for _ in range(n)
        ]  # fmt: skip
    made += [Event(id=uuid7(), at=when, kind=Kind.TASK_OPENED, **common) for _ in range(opened)]
    made += [Event(id=uuid7(), at=when, kind=Kind.TASK_BREACHED, **common) for _ in range(breached)]
    body = telemetry.encode(
        Batch(tenant_id=shop.id, runtime="test", sent_at=datetime.now(UTC), events=made)
    )
    await telemetry_service.ingest(world.app.state.db, runtime(f.partner_id, shop.id), body)


async def beat(world: World, f: Fleet, shop: Shop, at: datetime) -> None:
    """A heartbeat from the shop's runtime at ``at``."""
    event = Event(id=uuid7(), at=at, kind=Kind.HEARTBEAT, data={"version": "test"})
    body = telemetry.encode(
        Batch(tenant_id=shop.id, runtime="test", sent_at=datetime.now(UTC), events=[event])
    )
    await telemetry_service.ingest(world.app.state.db, runtime(f.partner_id, shop.id), body)
