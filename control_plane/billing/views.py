"""Reads behind the billing API, the partner portal and the CLI: usage so far, drafts,
invoices with their usage rows and documents, each for a buyer the caller can see."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import control_plane.billing as billing
from control_plane.billing import invoices, meters, schemas, service
from control_plane.billing.export import Document
from control_plane.billing.models import Invoice, InvoiceKind, InvoiceUsage, PriceBook, UsageDaily
from control_plane.branding.resolve import brand_of
from control_plane.context import Ctx
from control_plane.contracts.brand import DEFAULT, PLATFORM_NAME
from control_plane.db.session import system_session
from control_plane.errors import InvalidInput
from control_plane.identity.principal import Principal
from control_plane.identity.roles import Level, role_allows
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import Partner, Tenant


def this_period(now: datetime | None = None) -> str:
    return meters.period_of((now or datetime.now(UTC)).date())


@dataclass(frozen=True)
class Buyer:
    """Whose invoice: a partner's wholesale one, or a retailer's resale one."""

    kind: InvoiceKind
    partner_id: UUID
    tenant_id: UUID | None


def _own_node(principal: Principal) -> tuple[UUID | None, UUID | None]:
    """The partner or tenant the caller reads billing at, when its grants name just one."""
    nodes = {
        (g.partner_id, None) if g.level is Level.PARTNER else (g.partner_id, g.tenant_id)
        for g in principal.grants
        if role_allows(g.role, billing.READ) and g.level in (Level.PARTNER, Level.TENANT)
    }
    if len(nodes) != 1:
        raise InvalidInput("give partner_id (its wholesale draft) or tenant_id (its resale draft)")
    return nodes.pop()


async def buyer(ctx: Ctx, partner_id: UUID | None, tenant_id: UUID | None) -> Buyer:
    """The buyer named (by default the caller's own node), visible to the caller: another
    tree's partner or tenant is a 404."""
    if partner_id is None and tenant_id is None:
        partner_id, tenant_id = _own_node(ctx.principal)
    if tenant_id is not None:
        tenant = await tenancy.get_tenant(ctx, tenant_id)
        if partner_id is not None and partner_id != tenant.partner_id:
            raise InvalidInput(f"tenant {tenant_id} is not a retailer of partner {partner_id}")
        return Buyer(InvoiceKind.RESALE, tenant.partner_id, tenant.id)
    assert partner_id is not None
    await tenancy.get_partner(ctx, partner_id)
    return Buyer(InvoiceKind.WHOLESALE, partner_id, None)


async def _check_visible(ctx: Ctx, partner_id: UUID | None, tenant_id: UUID | None) -> None:
    if partner_id is not None:
        await tenancy.get_partner(ctx, partner_id)
    if tenant_id is not None:
        await tenancy.get_tenant(ctx, tenant_id)


# --- price books ----------------------------------------------------------------------------


def book_view(book: PriceBook) -> schemas.PriceBook:
    return msgspec.convert(book, schemas.PriceBook, from_attributes=True)


# --- usage and drafts -----------------------------------------------------------------------


async def usage(
    ctx: Ctx, period: str, partner_id: UUID | None = None, tenant_id: UUID | None = None
) -> schemas.Usage:
    """What is metered for the period so far, as the caller's rows allow."""
    start, end = meters.period_bounds(period)
    await _check_visible(ctx, partner_id, tenant_id)
    totals = await meters.totals(
        ctx.session, start, end, partner_id=partner_id, tenant_id=tenant_id
    )
    latest = select(func.max(UsageDaily.metered_at)).where(
        UsageDaily.day >= start, UsageDaily.day < end
    )
    if partner_id is not None:
        latest = latest.where(UsageDaily.partner_id == partner_id)
    if tenant_id is not None:
        latest = latest.where(UsageDaily.tenant_id == tenant_id)
    rows = [
        schemas.UsageRow(tenant_id=t, meter=m, dimension=d, quantity=q)
        for (t, m, d), q in sorted(totals.items(), key=lambda kv: (str(kv[0][0]), *kv[0][1:]))
    ]
    return schemas.Usage(
        period=period,
        start=start,
        end=end,
        partner_id=partner_id,
        tenant_id=tenant_id,
        metered_at=await ctx.session.scalar(latest),
        rows=rows,
    )


def by_meter(rows: Iterable[schemas.UsageRow]) -> dict[tuple[str, str], int]:
    """Usage summed over tenants, per meter and dimension."""
    summed: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.meter, row.dimension)
        summed[key] = summed.get(key, 0) + row.quantity
    return dict(sorted(summed.items()))


async def draft(
    ctx: Ctx, period: str, partner_id: UUID | None = None, tenant_id: UUID | None = None
) -> schemas.DraftInvoice:
    meters.period_bounds(period)
    who = await buyer(ctx, partner_id, tenant_id)
    # The buyer is the caller's; its price book may be one the caller cannot read by itself
    # (the platform's list for every partner, a partner's list for all of its retailers), so
    # the draft is computed unscoped, for this buyer only.
    async with system_session(ctx.session) as unscoped:
        built = await service.draft(unscoped, who.kind, period, who.partner_id, who.tenant_id)
        book = book_view(built[0]) if built else None
    common: dict[str, Any] = {
        "kind": who.kind.value,
        "period": period,
        "partner_id": who.partner_id,
        "tenant_id": who.tenant_id,
    }
    if built is None:
        whom = "retailer" if who.tenant_id else "partner"
        return schemas.DraftInvoice(
            **common,
            book=None,
            currency=None,
            lines=[],
            total=0,
            note=f"no {who.kind} price book is in effect for {period}: "
            f"closing the period would skip this {whom}",
        )
    lines = built[1]
    assert book is not None
    return schemas.DraftInvoice(
        **common, book=book, currency=book.currency, lines=lines.lines, total=lines.total
    )


# --- invoices -------------------------------------------------------------------------------


def invoice_view(invoice: Invoice) -> schemas.Invoice:
    return msgspec.convert(invoice, schemas.Invoice, from_attributes=True)


def detail_view(invoice: Invoice, rows: Sequence[InvoiceUsage]) -> schemas.InvoiceDetail:
    summary = msgspec.structs.asdict(invoice_view(invoice))
    return schemas.InvoiceDetail(
        **summary,
        lines=invoice.lines,
        usage=[msgspec.convert(r, schemas.InvoiceUsageRow, from_attributes=True) for r in rows],
    )


async def invoice_detail(ctx: Ctx, invoice_id: UUID) -> tuple[schemas.InvoiceDetail, str]:
    """The invoice with its lines and usage rows, and its ETag."""
    invoice = await invoices.get_invoice(ctx, invoice_id)
    return detail_view(invoice, await invoices.usage_rows(ctx, invoice)), invoice.etag


async def credit(
    ctx: Ctx, invoice_id: UUID, data: schemas.CreditNoteCreate
) -> tuple[schemas.InvoiceDetail, str]:
    note = await invoices.credit(ctx, invoice_id, data.amount, data.reason)
    return detail_view(note, []), note.etag


async def close(ctx: Ctx, period: str) -> schemas.CloseResult:
    report = await service.close(ctx, period)
    return schemas.CloseResult(
        period=report.period,
        issued=[invoice_view(i) for i in report.issued],
        unchanged=report.unchanged,
        skipped=report.skipped,
    )


async def tenant_names(session: AsyncSession, ids: Iterable[UUID | None]) -> dict[UUID, str]:
    return await _names(session, Tenant, ids)


async def buyer_names(session: AsyncSession, rows: Iterable[Invoice]) -> dict[UUID, str]:
    """Each invoice's buyer by name: its retailer, else its partner (keyed by that id)."""
    listed = list(rows)
    tenants = await _names(session, Tenant, (i.tenant_id for i in listed if i.tenant_id))
    partners = await _names(session, Partner, (i.partner_id for i in listed if not i.tenant_id))
    return {
        i.id: tenants.get(i.tenant_id, "") if i.tenant_id else partners.get(i.partner_id, "")
        for i in listed
    }


async def _names(
    session: AsyncSession, model: type[Tenant] | type[Partner], ids: Iterable[UUID | None]
) -> dict[UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.execute(select(model.id, model.name).where(model.id.in_(wanted)))
    return {found: name for found, name in rows}


async def document(ctx: Ctx, invoice_id: UUID, public_url: str) -> Document:
    """The invoice and what its document shows: the seller's brand (the partner's for
    resale invoices and their credit notes, the platform's for wholesale ones) and the
    parties' names."""
    invoice, _ = await invoice_detail(ctx, invoice_id)
    credited = (
        (await invoices.get_invoice(ctx, invoice.credits_invoice_id)).number
        if invoice.credits_invoice_id
        else None
    )
    # A retailer sees its invoice but not its partner's row, theme or logo.
    async with system_session(ctx.session) as unscoped:
        partner = await unscoped.get_one(Partner, invoice.partner_id)
        names = await tenant_names(
            unscoped, [invoice.tenant_id, *(r.tenant_id for r in invoice.usage)]
        )
        if invoice.tenant_id is None:
            brand, seller, buyer_name = DEFAULT, PLATFORM_NAME, partner.name
        else:
            brand = await brand_of(unscoped, partner.id, None, public_url, inline=True)
            seller, buyer_name = partner.name, names[invoice.tenant_id]
    return Document(
        invoice=invoice,
        brand=brand,
        seller=seller,
        buyer=buyer_name,
        tenant_names=names,
        credits_number=credited,
    )


# --- the partner portal ---------------------------------------------------------------------


@dataclass(frozen=True)
class PartnerBilling:
    """The portal's invoices page: this period so far, and the partner's invoices."""

    usage: schemas.Usage
    draft: schemas.DraftInvoice
    #: Wholesale invoices (and their credit notes) the partner pays.
    payable: list[schemas.Invoice]
    #: Resale invoices (and their credit notes) the partner issued to its retailers.
    issued: list[schemas.Invoice]
    tenant_names: dict[UUID, str]
    next_cursor: str | None


async def partner_billing(
    ctx: Ctx, partner_id: UUID, *, limit: int, cursor: str | None
) -> PartnerBilling:
    period = this_period()
    rows, nxt = await invoices.list_invoices(ctx, partner_id=partner_id, limit=limit, cursor=cursor)
    views = [invoice_view(r) for r in rows]
    issued = [i for i in views if i.tenant_id is not None]
    return PartnerBilling(
        usage=await usage(ctx, period, partner_id),
        draft=await draft(ctx, period, partner_id),
        payable=[i for i in views if i.tenant_id is None],
        issued=issued,
        tenant_names=await tenant_names(ctx.session, (i.tenant_id for i in issued)),
        next_cursor=nxt,
    )
