"""Seeding a fleet for the NOC tests: partners, tenants with regions, and their telemetry
ingested through the real telemetry service (as each tenant's runtime would send it)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.contracts import telemetry, uuid7
from control_plane.contracts.telemetry import Batch, Event, Kind
from control_plane.db import Database
from control_plane.identity import schemas as ids
from control_plane.identity import service as identity
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.runner import run_as
from control_plane.telemetry import service as telemetry_service
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy

REGIONS = ("north", "south", "east", "west")
#: Every fifth tenant is degraded (failing runs), every seventh down, every eleventh silent.
PASSWORD = "noc-console-password-1"


@dataclass
class SeededTenant:
    id: UUID
    partner_id: UUID
    partner_slug: str
    slug: str
    name: str
    region: str
    expected: str


@dataclass
class SeededFleet:
    label: str
    partners: list[tuple[UUID, str]] = field(default_factory=list)
    tenants: list[SeededTenant] = field(default_factory=list)

    def of_partner(self, slug: str) -> list[SeededTenant]:
        return [t for t in self.tenants if t.partner_slug == slug]


def expected_status(index: int) -> str:
    if index % 11 == 10:
        return "unknown"
    if index % 7 == 6:
        return "down"
    if index % 5 == 4:
        return "degraded"
    return "healthy"


def ev(kind: Kind, at: datetime, **fields: Any) -> Event:
    return Event(id=uuid7(), at=at, kind=kind, **fields)


def telemetry_for(index: int, now: datetime, *, hours: int = 6) -> list[Event]:
    """A plausible recent history, shaped so the tenant lands in ``expected_status``."""
    status = expected_status(index)
    if status == "unknown":
        return []
    events: list[Event] = []
    template = ("stock-transfer-approval", "price-sync")[index % 2]
    for h in range(hours):
        at = now - timedelta(hours=h, minutes=7)
        for k in range(3 + index % 4):
            events.append(
                ev(
                    Kind.RUN_FINISHED,
                    at + timedelta(seconds=k),
                    template_id=template,
                    status="succeeded",
                    duration_ms=400 + 250 * k + 30 * h,
                )
            )
        events.append(ev(Kind.TASK_OPENED, at, template_id=template))
        events.append(ev(Kind.TASK_OPENED, at, template_id=template))
        events.append(ev(Kind.TASK_DECIDED, at, template_id=template, status="approved"))
        if (index + h) % 3 == 0:
            events.append(ev(Kind.TASK_BREACHED, at, template_id=template))
    if status == "degraded":
        for k in range(6):
            events.append(
                ev(
                    Kind.RUN_FINISHED,
                    now - timedelta(minutes=3, seconds=k),
                    template_id=template,
                    status="failed",
                    duration_ms=90_000,
                )
            )
    beat_at = now - timedelta(minutes=20) if status == "down" else now - timedelta(seconds=5)
    events.append(
        ev(
            Kind.HEARTBEAT,
            beat_at,
            data={"queue_depth": index % 9, "oldest_pending_s": 1, "dead_letters": index % 4},
        )
    )
    return events


def runtime_principal(tenant_id: UUID, partner_id: UUID) -> Principal:
    return Principal(
        subject=f"client:runtime-{tenant_id.hex[:8]}",
        kind="client",
        name="runtime",
        grants=(Grant(Role.TENANT_RUNTIME, partner_id=partner_id, tenant_id=tenant_id),),
        home_partner_id=partner_id,
        home_tenant_id=tenant_id,
    )


async def send(db: Database, tenant_id: UUID, partner_id: UUID, events: list[Event]) -> None:
    if not events:
        return
    body = telemetry.encode(
        Batch(tenant_id=tenant_id, runtime="rt-1", sent_at=datetime.now(UTC), events=events)
    )
    await telemetry_service.ingest(db, runtime_principal(tenant_id, partner_id), body)


async def seed_fleet(
    settings: Settings, db: Database, tenants: int, partners: int, label: str | None = None
) -> SeededFleet:
    label = label or secrets.token_hex(3)
    fleet = SeededFleet(label=label)

    async def build(c: Ctx) -> None:
        for p in range(partners):
            partner = await tenancy.create_partner(
                c,
                ts.PartnerCreate(
                    slug=f"msp-{label}-{p}", name=f"MSP {label.upper()} {p}", kind="msp"
                ),
            )
            fleet.partners.append((partner.id, partner.slug))
        for i in range(tenants):
            partner_id, partner_slug = fleet.partners[i % partners]
            tenant = await tenancy.onboard_tenant(
                c,
                partner_id,
                ts.TenantCreate(
                    slug=f"shop-{label}-{i}", name=f"Retailer {i:03d} {label}", timezone="UTC"
                ),
            )
            await tenancy.transition_tenant(c, tenant.id, "activate")
            region = REGIONS[i % len(REGIONS)]
            await tenancy.create_region(c, tenant.id, ts.RegionCreate(code=region, name=region))
            fleet.tenants.append(
                SeededTenant(
                    tenant.id,
                    partner_id,
                    partner_slug,
                    tenant.slug,
                    tenant.name,
                    region,
                    expected_status(i),
                )
            )

    await run_as(settings, build, db=db)
    now = datetime.now(UTC)
    for i, t in enumerate(fleet.tenants):
        await send(db, t.id, t.partner_id, telemetry_for(i, now))
    return fleet


async def create_user(settings: Settings, db: Database, email: str, *grants: ids.GrantSpec) -> None:
    async def make(c: Ctx) -> None:
        await identity.create_user(
            c, ids.UserCreate(email=email, name=email, password=PASSWORD, grants=list(grants))
        )

    await run_as(settings, make, db=db)


async def open_alert(
    settings: Settings, db: Database, tenant: SeededTenant, *, rule: str = "heartbeat_age"
) -> UUID:
    """An open alert at ``tenant``, as the evaluator leaves one (a factory: evaluating
    rules needs their for-duration to pass)."""
    from control_plane.alerts.models import Alert

    now = datetime.now(UTC)

    async def make(c: Ctx) -> UUID:
        alert = Alert(
            partner_id=tenant.partner_id,
            tenant_id=tenant.id,
            rule_key=rule,
            rule_name="Runtime heartbeat is late",
            metric=rule,
            comparator=">",
            threshold=120.0,
            severity="critical",
            state="open",
            value=1200.0,
            reason=f"{tenant.name}: last heartbeat 1200s ago (limit 120s)",
            first_seen_at=now - timedelta(minutes=12),
            last_seen_at=now,
            opened_at=now - timedelta(minutes=10),
        )
        c.session.add(alert)
        await c.session.flush()
        return alert.id

    alert_id: UUID = await run_as(settings, make, db=db)
    return alert_id
