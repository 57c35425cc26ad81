"""Price books: what the platform charges each partner (wholesale) and what each partner
charges its retailers (resale). Books are never edited: a new book with a later
``effective_from`` replaces one, and a period already invoiced keeps its prices."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import msgspec
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change
from control_plane.billing import WRITE, meters
from control_plane.billing.models import BookKind, Invoice, InvoiceKind, PriceBook
from control_plane.billing.pricing import BookContent, Item, check_book
from control_plane.context import Ctx
from control_plane.db.session import system_session
from control_plane.errors import InvalidInput, NotFound
from control_plane.tenancy.models import Partner, Tenant


class PriceBookCreate(msgspec.Struct, forbid_unknown_fields=True):
    kind: BookKind
    name: str
    effective_from: str
    currency: str
    items: list[Item]
    minimum_fee: int = 0
    #: Wholesale: the partner these prices are for (none: every partner). Resale: the
    #: partner selling (required).
    partner_id: UUID | None = None
    #: Resale only: one retailer (none: all of the partner's retailers).
    tenant_id: UUID | None = None


def refuse(problems: list[tuple[str, str]], what: str) -> InvalidInput:
    detail = "; ".join(f"{f}: {m}" for f, m in problems)
    return InvalidInput(
        f"{what} is refused: {detail}", errors=[{"field": f, "message": m} for f, m in problems]
    )


def content(book: PriceBook) -> BookContent:
    return msgspec.convert(
        {"currency": book.currency, "items": book.items, "minimum_fee": book.minimum_fee},
        BookContent,
    )


# --- price books ----------------------------------------------------------------------------


async def create_book(ctx: Ctx, data: PriceBookCreate) -> PriceBook:
    meters.period_bounds(data.effective_from)
    body = BookContent(currency=data.currency, items=data.items, minimum_fee=data.minimum_fee)
    problems = check_book(body)
    if not data.name.strip() or len(data.name) > 200:
        problems.append(("name", "give a name of 1 to 200 characters"))
    if data.kind == BookKind.RESALE and data.partner_id is None:
        problems.append(("partner_id", "a resale book belongs to the partner selling"))
    if data.kind == BookKind.WHOLESALE and data.tenant_id is not None:
        problems.append(("tenant_id", "wholesale books price partners, not retailers"))
    # What the caller cannot see is a 404 before any question of permission.
    if data.tenant_id is not None:
        tenant = await ctx.session.scalar(select(Tenant).where(Tenant.id == data.tenant_id))
        if tenant is None:
            raise NotFound(f"tenant {data.tenant_id} does not exist")
        if tenant.partner_id != data.partner_id:
            problems.append(("tenant_id", f"tenant {tenant.slug} is not this partner's"))
    elif data.partner_id is not None and (
        await ctx.session.scalar(select(Partner.id).where(Partner.id == data.partner_id)) is None
    ):
        raise NotFound(f"partner {data.partner_id} does not exist")
    if data.kind == BookKind.RESALE and data.partner_id is not None:
        ctx.principal.require(WRITE, partner_id=data.partner_id)
    elif data.kind == BookKind.WHOLESALE and not ctx.scope.platform:
        ctx.principal.require("billing:wholesale")
    if data.partner_id is not None and all(field != "currency" for field, _ in problems):
        # The book in effect before this one, whoever may see it.
        async with system_session(ctx.session) as everyone:
            earlier = await book_for(
                everyone, data.kind, data.effective_from, data.partner_id, data.tenant_id
            )
        if earlier is not None and earlier.currency != data.currency:
            problems.append(
                (
                    "currency",
                    f"the book it follows ({earlier.name!r}) is in {earlier.currency}; keep it, "
                    "since an invoice also bills late usage priced by the earlier book",
                )
            )
    closed = None if problems else await _last_closed(ctx.session, data)
    if closed is not None and data.effective_from <= closed:
        problems.append(
            (
                "effective_from",
                f"{closed} is invoiced already with the prices then in effect; "
                "a new book may start after it",
            )
        )
    if problems:
        raise refuse(problems, "the price book")
    book = PriceBook(
        kind=data.kind,
        partner_id=data.partner_id,
        tenant_id=data.tenant_id,
        name=data.name.strip(),
        effective_from=data.effective_from,
        currency=data.currency,
        minimum_fee=data.minimum_fee,
        items=msgspec.to_builtins(data.items),
        created_by=ctx.principal.subject,
    )
    ctx.session.add(book)
    await ctx.session.flush()
    await record_change(ctx, "price_book.create", book)
    return book


async def _last_closed(session: AsyncSession, data: PriceBookCreate) -> str | None:
    """The latest period already invoiced under the prices ``data`` would change."""
    kind = InvoiceKind.WHOLESALE if data.kind == BookKind.WHOLESALE else InvoiceKind.RESALE
    stmt = select(func.max(Invoice.period)).where(Invoice.kind == kind)
    if data.partner_id is not None:
        stmt = stmt.where(Invoice.partner_id == data.partner_id)
    if data.tenant_id is not None:
        stmt = stmt.where(Invoice.tenant_id == data.tenant_id)
    async with system_session(session) as everyone:
        found: str | None = await everyone.scalar(stmt)
    return found


async def list_books(
    ctx: Ctx, *, limit: int, cursor: str | None
) -> tuple[Sequence[PriceBook], str | None]:
    return await fetch_page(
        ctx.session, select(PriceBook), PriceBook.id, limit=limit, cursor=cursor
    )


async def get_book(ctx: Ctx, book_id: UUID) -> PriceBook:
    found = await ctx.session.scalar(select(PriceBook).where(PriceBook.id == book_id))
    if found is None:
        raise NotFound(f"price book {book_id} does not exist")
    return found


async def book_for(
    session: AsyncSession, kind: BookKind, period: str, partner_id: UUID, tenant_id: UUID | None
) -> PriceBook | None:
    """The book in effect for ``period``: the most specific, then the latest."""
    if kind == BookKind.WHOLESALE:
        target = or_(PriceBook.partner_id == partner_id, PriceBook.partner_id.is_(None))
        specific = PriceBook.partner_id.is_(None)
    else:
        target = (PriceBook.partner_id == partner_id) & or_(
            PriceBook.tenant_id == tenant_id, PriceBook.tenant_id.is_(None)
        )
        specific = PriceBook.tenant_id.is_(None)
    return await session.scalar(
        select(PriceBook)
        .where(PriceBook.kind == kind, PriceBook.effective_from <= period, target)
        .order_by(specific, PriceBook.effective_from.desc(), PriceBook.created_at.desc())
        .limit(1)
    )
