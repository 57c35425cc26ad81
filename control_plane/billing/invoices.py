"""Issued invoices: reading them, crediting them, and reproducing one from the usage it
billed and its price book."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change
from control_plane.billing import WRITE, books, meters, service
from control_plane.billing.invoicing import Late, compose, digest
from control_plane.billing.models import BookKind, Invoice, InvoiceKind, InvoiceUsage, PriceBook
from control_plane.billing.pricing import BookContent, item_for
from control_plane.context import Ctx
from control_plane.errors import InvalidInput, NotFound


async def credit(ctx: Ctx, invoice_id: UUID, amount: int, reason: str) -> Invoice:
    """A credit note against an issued invoice, for at most what is left of it."""
    invoice = await get_invoice(ctx, invoice_id)
    await service.lock(ctx.session)
    if invoice.kind == InvoiceKind.CREDIT_NOTE:
        raise InvalidInput("a credit note cannot be credited; credit the invoice it corrects")
    if invoice.kind == InvoiceKind.RESALE:
        ctx.principal.require(WRITE, partner_id=invoice.partner_id)
    elif not ctx.scope.platform:
        ctx.principal.require("billing:wholesale")
    if not reason.strip():
        raise books.refuse([("reason", "say why the invoice is credited")], "the credit note")
    credited = -int(
        await ctx.session.scalar(
            select(func.coalesce(func.sum(Invoice.total), 0)).where(
                Invoice.credits_invoice_id == invoice.id
            )
        )
        or 0
    )
    left = invoice.total - credited
    if amount <= 0 or amount > left:
        raise books.refuse(
            [("amount", f"{amount} is not between 1 and the {left} minor units left to credit")],
            "the credit note",
        )
    count = await ctx.session.scalar(
        select(func.count()).where(Invoice.credits_invoice_id == invoice.id)
    )
    note = Invoice(
        number=await service.next_number(ctx.session, InvoiceKind.CREDIT_NOTE, invoice.period),
        key=f"credit:{invoice.id}:{int(count or 0) + 1}",
        kind=InvoiceKind.CREDIT_NOTE,
        period=invoice.period,
        partner_id=invoice.partner_id,
        tenant_id=invoice.tenant_id,
        currency=invoice.currency,
        total=-amount,
        lines=[
            {
                "line": 1,
                "type": "credit",
                "period": invoice.period,
                "description": f"Credit on {invoice.number}: {reason.strip()}",
                "quantity": 1,
                "amount": -amount,
            }
        ],
        price_book_id=invoice.price_book_id,
        credits_invoice_id=invoice.id,
        reason=reason.strip(),
        usage_digest=digest({}),
        issued_at=datetime.now(UTC),
        issued_by=ctx.principal.subject,
    )
    ctx.session.add(note)
    await ctx.session.flush()
    await record_change(ctx, "invoice.credit", note)
    return note


async def get_invoice(ctx: Ctx, invoice_id: UUID) -> Invoice:
    found = await ctx.session.scalar(select(Invoice).where(Invoice.id == invoice_id))
    if found is None:
        raise NotFound(f"invoice {invoice_id} does not exist")
    return found


async def list_invoices(
    ctx: Ctx,
    *,
    partner_id: UUID | None = None,
    tenant_id: UUID | None = None,
    period: str | None = None,
    kind: InvoiceKind | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Invoice], str | None]:
    stmt: Select[Any] = select(Invoice)
    if partner_id is not None:
        stmt = stmt.where(Invoice.partner_id == partner_id)
    if tenant_id is not None:
        stmt = stmt.where(Invoice.tenant_id == tenant_id)
    if period is not None:
        meters.period_bounds(period)
        stmt = stmt.where(Invoice.period == period)
    if kind is not None:
        stmt = stmt.where(Invoice.kind == kind)
    return await fetch_page(ctx.session, stmt, Invoice.id, limit=limit, cursor=cursor)


async def usage_rows(ctx: Ctx, invoice: Invoice) -> Sequence[InvoiceUsage]:
    return (
        await ctx.session.scalars(
            select(InvoiceUsage)
            .where(InvoiceUsage.invoice_id == invoice.id)
            .order_by(InvoiceUsage.line, InvoiceUsage.tenant_id, InvoiceUsage.meter)
        )
    ).all()


@dataclass
class Reproduction:
    """An invoice recomputed from what it billed: do the lines and digest match, and how
    much of its period's usage arrived after it was issued (billed later as late lines)."""

    lines_match: bool
    digest_match: bool
    arrived_since: dict[tuple[UUID, str, str], int]

    @property
    def ok(self) -> bool:
        return self.lines_match and self.digest_match


async def reproduce(ctx: Ctx, invoice: Invoice) -> Reproduction:
    """Recompute ``invoice`` from its usage rows and its price book, and compare its
    period's billed usage with the metered usage now."""
    session = ctx.session
    rows = await usage_rows(ctx, invoice)
    current = {(r.tenant_id, r.meter, r.dimension): r.quantity
               for r in rows if r.source_period == invoice.period}  # fmt: skip
    late: list[Late] = []
    if invoice.kind != InvoiceKind.CREDIT_NOTE and invoice.price_book_id is not None:
        kind = InvoiceKind(invoice.kind)
        for source in sorted({r.source_period for r in rows} - {invoice.period}, reverse=True):
            then = await books.book_for(
                session, BookKind(kind), source, invoice.partner_id, invoice.tenant_id
            )
            assert then is not None
            before = await _billed_before(session, invoice, source)
            unbilled = {(r.tenant_id, r.meter, r.dimension): r.quantity
                        for r in rows if r.source_period == source}  # fmt: skip
            late.append(Late(source, books.content(then), unbilled, before))
        book = books.content(await session.get_one(PriceBook, invoice.price_book_id))
        again = compose(book, invoice.period, current, late)
        lines_match, digest_match = (
            again.lines == invoice.lines,
            digest(again.usage) == invoice.usage_digest,
        )
        since = await _arrived_since(session, invoice, book)
    else:
        lines_match, digest_match, since = True, digest({}) == invoice.usage_digest, {}
    return Reproduction(lines_match, digest_match, since)


async def _arrived_since(
    session: AsyncSession, invoice: Invoice, book: BookContent
) -> dict[tuple[UUID, str, str], int]:
    """Priced usage of the invoice's period metered now beyond what any invoice billed."""
    start, end = meters.period_bounds(invoice.period)
    now = await meters.totals(
        session, start, end, partner_id=invoice.partner_id, tenant_id=invoice.tenant_id
    )
    done = await service.billed(
        session, invoice.kind, invoice.tenant_id or invoice.partner_id, invoice.period
    )
    return {
        (t, m, d): q - done.get((t, m, d), 0)
        for (t, m, d), q in now.items()
        if q > done.get((t, m, d), 0) and item_for(book, m, d) is not None
    }


async def _billed_before(
    session: AsyncSession, invoice: Invoice, source: str
) -> dict[tuple[UUID, str, str], int]:
    """What invoices issued before ``invoice`` billed of ``source``."""
    buyer = (
        InvoiceUsage.tenant_id if invoice.kind == InvoiceKind.RESALE else InvoiceUsage.partner_id
    )
    rows = await session.execute(
        select(InvoiceUsage.tenant_id, InvoiceUsage.meter, InvoiceUsage.dimension,
               func.sum(InvoiceUsage.quantity))
        .join(Invoice, Invoice.id == InvoiceUsage.invoice_id)
        .where(InvoiceUsage.kind == invoice.kind,
               buyer == (invoice.tenant_id or invoice.partner_id),
               InvoiceUsage.source_period == source,
               Invoice.issued_at < invoice.issued_at)
        .group_by(InvoiceUsage.tenant_id, InvoiceUsage.meter, InvoiceUsage.dimension)
    )  # fmt: skip
    return {(t, m, d): int(q) for t, m, d, q in rows}
