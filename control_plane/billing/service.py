"""Period close: metering again, then one invoice per buyer and period.

Closing a period (``storeops billing close --period 2026-11``, or ``POST
/api/v1/billing/close``) meters the period again from the raw events, then issues for it
one wholesale invoice per partner (the platform's price book for that partner) and one
resale invoice per retailer (its partner's resale book). An invoice is keyed by kind,
buyer and period: closing twice finds them and changes nothing. Issued invoices are never
changed (on PostgreSQL the application role cannot); a correction is a credit note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.audit.service import record_change
from control_plane.billing import books, meters
from control_plane.billing.invoicing import Draft, Late, compose, digest
from control_plane.billing.models import BookKind, Invoice, InvoiceKind, InvoiceUsage, PriceBook
from control_plane.context import Ctx
from control_plane.db.session import session_scope, system_session
from control_plane.errors import InvalidInput
from control_plane.tenancy.models import Partner, Tenant, TenantStatus

#: Late usage is looked for this many periods back (raw events outlive no more anyway).
LATE_PERIODS = 2
_CLOSE_LOCK = 0x5701_B111


async def remeter(
    session: AsyncSession, period: str, now: datetime, partner_id: UUID | None = None
) -> None:
    """Meter the period and the ones late usage is looked for in, from the raw events still
    kept (days before the retention horizon keep what was metered then)."""
    start, end = meters.period_bounds(period)
    for _ in range(LATE_PERIODS):
        start = meters.period_bounds(meters.previous_period(meters.period_of(start)))[0]
    await meters.meter_span(session, start, end, now=now, partner_id=partner_id)


async def billed(
    session: AsyncSession, kind: str, buyer: Any, period: str
) -> dict[tuple[UUID, str, str], int]:
    column = InvoiceUsage.partner_id if kind == InvoiceKind.WHOLESALE else InvoiceUsage.tenant_id
    rows = await session.execute(
        select(InvoiceUsage.tenant_id, InvoiceUsage.meter, InvoiceUsage.dimension,
               func.sum(InvoiceUsage.quantity))
        .where(InvoiceUsage.kind == kind, column == buyer, InvoiceUsage.source_period == period)
        .group_by(InvoiceUsage.tenant_id, InvoiceUsage.meter, InvoiceUsage.dimension)
    )  # fmt: skip
    return {(t, m, d): int(q) for t, m, d, q in rows}


async def _late(
    session: AsyncSession, kind: InvoiceKind, period: str, partner_id: UUID, tenant_id: UUID | None
) -> list[Late]:
    """Usage of the earlier invoiced periods that those invoices did not bill."""
    found: list[Late] = []
    earlier = period
    for _ in range(LATE_PERIODS):
        earlier = meters.previous_period(earlier)
        if await session.scalar(select(Invoice.id).where(Invoice.key == _key(kind, partner_id, tenant_id, earlier))) is None:  # fmt: skip
            continue
        book = await books.book_for(session, BookKind(kind), earlier, partner_id, tenant_id)
        if book is None:
            continue
        start, end = meters.period_bounds(earlier)
        now = await meters.totals(session, start, end, partner_id=partner_id, tenant_id=tenant_id)
        done = await billed(session, kind, tenant_id or partner_id, earlier)
        unbilled = {k: q - done.get(k, 0) for k, q in now.items() if q > done.get(k, 0)}
        if unbilled:
            found.append(Late(earlier, books.content(book), unbilled, done))
    return found


def _key(kind: str, partner_id: UUID, tenant_id: UUID | None, period: str) -> str:
    buyer = tenant_id if kind == InvoiceKind.RESALE else partner_id
    return f"{kind}:{buyer}:{period}"


async def draft(
    session: AsyncSession,
    kind: InvoiceKind,
    period: str,
    partner_id: UUID,
    tenant_id: UUID | None,
) -> tuple[PriceBook, Draft] | None:
    """The invoice ``period`` would get now (None without a price book)."""
    book = await books.book_for(session, BookKind(kind), period, partner_id, tenant_id)
    if book is None:
        return None
    start, end = meters.period_bounds(period)
    usage = await meters.totals(session, start, end, partner_id=partner_id, tenant_id=tenant_id)
    late = await _late(session, kind, period, partner_id, tenant_id)
    return book, compose(books.content(book), period, usage, late)


# --- close ----------------------------------------------------------------------------------


@dataclass
class CloseReport:
    period: str
    issued: list[Invoice] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)


async def close(
    ctx: Ctx, period: str, *, now: datetime | None = None, partner_id: UUID | None = None
) -> CloseReport:
    """Issue the period's invoices that do not exist yet (see the module notes), for every
    partner or only ``partner_id`` (and its retailers)."""
    now = now or datetime.now(UTC)
    start, end = meters.period_bounds(period)
    if now < datetime.combine(end, datetime.min.time(), UTC):
        raise InvalidInput(
            f"period {period} is still open until {end.isoformat()}T00:00:00Z; close it after"
        )
    if not ctx.scope.platform:
        ctx.principal.require("billing:close")
    session = ctx.session
    await lock(session)
    await remeter(session, period, now, partner_id)
    report = CloseReport(period)
    chosen = select(Partner).order_by(Partner.slug)
    if partner_id is not None:
        chosen = chosen.where(Partner.id == partner_id)
    partners = (await session.scalars(chosen)).all()
    for partner in partners:
        await _issue(ctx, report, InvoiceKind.WHOLESALE, period, partner, None, now)
        tenants = await session.scalars(
            select(Tenant)
            .where(Tenant.partner_id == partner.id, Tenant.created_at < _moment(end))
            .order_by(Tenant.slug)
        )
        for tenant in tenants:
            if tenant.status == TenantStatus.OFFBOARDED and tenant.updated_at < _moment(start):
                continue
            await _issue(ctx, report, InvoiceKind.RESALE, period, partner, tenant, now)
    return report


def _moment(day: Any) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


async def _issue(
    ctx: Ctx,
    report: CloseReport,
    kind: InvoiceKind,
    period: str,
    partner: Partner,
    tenant: Tenant | None,
    now: datetime,
) -> None:
    session = ctx.session
    key = _key(kind, partner.id, tenant.id if tenant else None, period)
    if await session.scalar(select(Invoice.id).where(Invoice.key == key)) is not None:
        report.unchanged += 1
        return
    built = await draft(session, kind, period, partner.id, tenant.id if tenant else None)
    if built is None:
        who = f"retailer {tenant.slug}" if tenant else f"partner {partner.slug}"
        report.skipped.append(f"{who}: no {kind} price book in effect for {period}")
        return
    book, lines = built
    invoice = Invoice(
        number=await next_number(session, kind, period),
        key=key,
        kind=kind,
        period=period,
        partner_id=partner.id,
        tenant_id=tenant.id if tenant else None,
        currency=book.currency,
        total=lines.total,
        lines=lines.lines,
        price_book_id=book.id,
        usage_digest=digest(lines.usage),
        issued_at=now,
        issued_by=ctx.principal.subject,
    )
    session.add(invoice)
    await session.flush()
    session.add_all(
        InvoiceUsage(
            invoice_id=invoice.id,
            tenant_id=t,
            source_period=p,
            meter=m,
            dimension=d,
            partner_id=partner.id,
            kind=kind,
            quantity=q,
            line=line,
        )
        for (t, p, m, d), (q, line) in lines.usage.items()
    )
    await session.flush()
    await record_change(ctx, "invoice.issue", invoice)
    report.issued.append(invoice)


_PREFIX = {InvoiceKind.WHOLESALE: "W", InvoiceKind.RESALE: "R", InvoiceKind.CREDIT_NOTE: "C"}


async def lock(session: AsyncSession) -> None:
    """Serialise whatever numbers invoices (closes, credit notes) on PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CLOSE_LOCK})


async def next_number(session: AsyncSession, kind: InvoiceKind, period: str) -> str:
    """The next number of ``kind`` in ``period``, counted across every partner (numbers
    are unique platform-wide); call it under :func:`lock`. A platform session counts its
    own uncommitted invoices too (a close issues many); any other session issues one
    invoice per transaction, so the committed ones, read unscoped, are all there are."""
    stmt = select(func.count()).where(Invoice.kind == kind, Invoice.period == period)
    if session_scope(session.sync_session).platform:
        count = await session.scalar(stmt)
    else:
        async with system_session(session) as everyone:
            count = await everyone.scalar(stmt)
    return f"{_PREFIX[kind]}-{period}-{int(count or 0) + 1:05d}"
