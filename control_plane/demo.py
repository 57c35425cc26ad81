"""Demo data: a platform admin, two white-label MSPs, three retailers with regions and stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import msgspec
from sqlalchemy import select

from control_plane.billing import books
from control_plane.context import Ctx
from control_plane.identity import schemas as ids
from control_plane.identity import service as identity
from control_plane.identity.roles import Role
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import Partner

DEMO_PASSWORD = "storeops-demo"  # noqa: S105 - demo-only, printed to the operator

WEEKDAYS = {d: [("08:00", "21:00")] for d in ("mon", "tue", "wed", "thu", "fri")}
RETAIL_HOURS = {**WEEKDAYS, "sat": [("09:00", "20:00")], "sun": [("10:00", "17:00")]}

PARTNERS: list[dict[str, Any]] = [
    {
        "slug": "northwind",
        "name": "Northwind Managed Services",
        "kind": "msp",
        "settings": {
            "quotas": {"runs_per_day": 50_000},
        },
        "tenants": [
            {
                "slug": "freshmart",
                "name": "FreshMart Groceries",
                "timezone": "Europe/London",
                "regions": {"north": ["FM-LEEDS-01", "FM-YORK-02"], "south": ["FM-BRIGHTON-03"]},
            },
            {
                "slug": "urbanthreads",
                "name": "Urban Threads",
                "timezone": "Europe/Paris",
                "regions": {"idf": ["UT-PARIS-01", "UT-PARIS-02"], "sud": ["UT-LYON-03"]},
            },
        ],
    },
    {
        "slug": "bluepeak",
        "name": "Bluepeak Retail Cloud",
        "kind": "msp",
        "settings": {
            "allowed_templates": [
                "stock-transfer-approval",
                "maintenance-incident",
                "returns-refund-approval",
                "store-opening-closing-checklist",
            ],
            "plan": "premium",
        },
        "tenants": [
            {
                "slug": "harborhardware",
                "name": "Harbor Hardware",
                "timezone": "America/New_York",
                "regions": {"northeast": ["HH-BOS-01", "HH-NYC-02"], "midwest": ["HH-CHI-03"]},
            },
        ],
    },
]


@dataclass
class DemoLogin:
    email: str
    role: str
    where: str


@dataclass
class DemoResult:
    created: bool
    logins: list[DemoLogin] = field(default_factory=list)
    client_id: str | None = None
    client_secret: str | None = None


async def seed(ctx: Ctx) -> DemoResult:
    """Create the demo tree once; a second call finds it and changes nothing."""
    if await ctx.session.scalar(select(Partner).where(Partner.slug == "northwind")):
        return DemoResult(created=False)
    result = DemoResult(created=True)

    async def user(email: str, name: str, grant: ids.GrantSpec, where: str) -> None:
        await identity.create_user(
            ctx, ids.UserCreate(email=email, name=name, password=DEMO_PASSWORD, grants=[grant])
        )
        result.logins.append(DemoLogin(email, grant.role.value, where))

    await user(
        "admin@storeops.local",
        "Platform Admin",
        ids.GrantSpec(role=Role.PLATFORM_ADMIN),
        "platform",
    )
    await user(
        "noc@storeops.local", "NOC Operator", ids.GrantSpec(role=Role.NOC_OPERATOR), "platform"
    )
    for spec in PARTNERS:
        partner = await tenancy.create_partner(
            ctx,
            ts.PartnerCreate(
                slug=spec["slug"],
                name=spec["name"],
                kind=spec["kind"],
                settings=ts.PolicySettings(**spec["settings"]),
            ),
        )
        await user(
            f"admin@{partner.slug}.example",
            f"{partner.name} admin",
            ids.GrantSpec(role=Role.PARTNER_ADMIN, partner_id=partner.id),
            partner.slug,
        )
        for t in spec["tenants"]:
            tenant = await tenancy.onboard_tenant(
                ctx,
                partner.id,
                ts.TenantCreate(
                    slug=t["slug"],
                    name=t["name"],
                    timezone=t["timezone"],
                ),
            )
            await tenancy.transition_tenant(ctx, tenant.id, "activate", reason="demo")
            await user(
                f"admin@{tenant.slug}.example",
                f"{tenant.name} admin",
                ids.GrantSpec(role=Role.RETAILER_ADMIN, tenant_id=tenant.id),
                tenant.slug,
            )
            for code, store_codes in t["regions"].items():
                region = await tenancy.create_region(
                    ctx, tenant.id, ts.RegionCreate(code=code, name=code.title())
                )
                stores = [
                    await tenancy.create_store(
                        ctx,
                        tenant.id,
                        ts.StoreCreate(
                            code=store_code,
                            name=store_code.replace("-", " ").title(),
                            region_id=region.id,
                            opening_hours=RETAIL_HOURS,
                            holidays=["2026-12-25", "2027-01-01"],
                        ),
                    )
                    for store_code in store_codes
                ]
                if tenant.slug == "freshmart" and code == "north":
                    await user(
                        "north@freshmart.example",
                        "North region manager",
                        ids.GrantSpec(role=Role.REGIONAL_MANAGER, region_id=region.id),
                        f"{tenant.slug}/{code}",
                    )
                    await user(
                        "leeds@freshmart.example",
                        "Leeds store manager",
                        ids.GrantSpec(role=Role.STORE_MANAGER, store_id=stores[0].id),
                        f"{tenant.slug}/{stores[0].code}",
                    )
        await _price_books(ctx, partner.id)
        if partner.slug == "northwind":
            client, _, secret = await identity.create_client(
                ctx,
                ids.ClientCreate(
                    name="Northwind automation",
                    grants=[ids.GrantSpec(role=Role.PARTNER_ADMIN, partner_id=partner.id)],
                ),
            )
            result.client_id, result.client_secret = client.client_id, secret
    return result


#: What the platform charges a demo partner, and what the partner charges its retailers
#: (in euro cents): the partner's margin is the difference.
WHOLESALE = [
    {"meter": "runs", "included": 500, "tiers": [{"up_to": 9500, "unit_price": "1"},
                                                 {"unit_price": "0.5"}]},
    {"meter": "steps", "unit_price": "0.05"},
    {"meter": "store_days", "unit_price": "2"},
]  # fmt: skip
RESALE = [
    {"meter": "runs", "included": 200, "unit_price": "3"},
    {"meter": "runs", "dimension": "maintenance", "unit_price": "5"},
    {"meter": "store_days", "unit_price": "6"},
    {"meter": "api_calls", "included": 10_000, "unit_price": "0.01"},
]


async def _price_books(ctx: Ctx, partner_id: Any) -> None:
    """A wholesale and a resale price book from this month on."""
    period = f"{date.today():%Y-%m}"
    for kind, items, minimum in (("wholesale", WHOLESALE, 10_000), ("resale", RESALE, 4_900)):
        await books.create_book(
            ctx,
            msgspec.convert(
                {"kind": kind, "name": f"Demo {kind}", "effective_from": period,
                 "currency": "EUR", "minimum_fee": minimum, "partner_id": str(partner_id),
                 "items": items},
                books.PriceBookCreate,
            ),
        )  # fmt: skip
