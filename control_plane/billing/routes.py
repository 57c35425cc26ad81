"""``/api/v1/billing``: price books, usage so far, drafts, invoices and their exports,
credit notes, and closing a period (platform only)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.types import ControllerRouterHandler

import control_plane.billing as billing
from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, Limit
from control_plane.api.responses import page
from control_plane.billing import books, export, invoices, schemas, views
from control_plane.billing.models import InvoiceKind
from control_plane.context import Ctx

#: Closing a period: only the platform (``*``) holds it.
CLOSE = "billing:close"
Period = Annotated[
    str | None, QueryParameter(description="a month, YYYY-MM (default: the current one)")
]


class Format(StrEnum):
    JSON = "json"
    #: The lines, one row each.
    CSV = "csv"
    #: The billed usage rows, one row each.
    USAGE_CSV = "usage-csv"
    #: The invoice document in the seller's brand.
    HTML = "html"
    PDF = "pdf"


#: The document is standalone: its styles inline, its logo a data URI.
DOCUMENT_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def _base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


async def invoice_file(ctx: Ctx, invoice_id: UUID, fmt: Format, public_url: str) -> Response[Any]:
    """An invoice in one of its formats (the API and the partner portal serve the same)."""
    if fmt == Format.JSON:
        detail, tag = await views.invoice_detail(ctx, invoice_id)
        return Response(detail, headers={"ETag": tag})
    doc = await views.document(ctx, invoice_id, public_url)
    number = doc.invoice.number
    if fmt == Format.CSV:
        return _attachment(export.lines_csv(doc.invoice), "text/csv", f"{number}.csv")
    if fmt == Format.USAGE_CSV:
        body = export.usage_csv(doc.invoice, doc.tenant_names)
        return _attachment(body, "text/csv", f"{number}-usage.csv")
    if fmt == Format.PDF:
        return _attachment(export.pdf(doc), "application/pdf", f"{number}.pdf")
    return Response(
        export.html(doc),
        media_type="text/html; charset=utf-8",
        headers={**DOCUMENT_HEADERS, "Content-Disposition": f'inline; filename="{number}.html"'},
    )


def _attachment(body: str | bytes, media_type: str, filename: str) -> Response[Any]:
    return Response(
        body,
        media_type=media_type,
        headers={
            **DOCUMENT_HEADERS,
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )


class PriceBookController(Controller):
    path = "/api/v1/billing/price-books"
    tags = ["billing"]
    guards = [requires(billing.READ)]

    @get("/", operation_id="listPriceBooks", description="Price books the caller sees: a "
         "partner its own wholesale prices and its resale books; a retailer its own.")  # fmt: skip
    async def list_(
        self, ctx: CtxDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[schemas.PriceBook]:
        rows, nxt = await books.list_books(ctx, limit=limit, cursor=cursor)
        return page(rows, nxt, schemas.PriceBook, views.book_view)

    @post("/", operation_id="createPriceBook", guards=[requires(billing.WRITE)],
          opt={"idempotent": True},
          description="A price book from effective_from (YYYY-MM) on. Wholesale (platform "
          "only): for one partner, or every partner without partner_id. Resale: a partner's "
          "prices for one retailer (tenant_id) or all of its retailers. Items price a meter "
          "(runs, steps, store_days, api_calls, tenant_days; runs by template category or *) "
          "with unit_price or graduated tiers, after included units; unit prices are "
          "decimal strings in minor units. Books are never edited: a later one replaces "
          "it.")  # fmt: skip
    async def create(
        self, ctx: CtxDep, data: JSONBody[books.PriceBookCreate]
    ) -> Response[schemas.PriceBook]:
        book = await books.create_book(ctx, data)
        return Response(views.book_view(book), status_code=201, headers={"ETag": book.etag})

    @get("/{book_id:uuid}", operation_id="getPriceBook", description="One price book.")
    async def get_(self, ctx: CtxDep, book_id: FromPath[UUID]) -> Response[schemas.PriceBook]:
        book = await books.get_book(ctx, book_id)
        return Response(views.book_view(book), headers={"ETag": book.etag})


class InvoiceController(Controller):
    path = "/api/v1/billing/invoices"
    tags = ["billing"]
    guards = [requires(billing.READ)]

    @get("/", operation_id="listInvoices", description="Issued invoices and credit notes the "
         "caller sees: a partner the wholesale ones it pays and the resale ones it issued; a "
         "retailer the resale ones it received.")  # fmt: skip
    async def list_(
        self,
        ctx: CtxDep,
        partner_id: FromQuery[UUID | None] = None,
        tenant_id: FromQuery[UUID | None] = None,
        period: Period = None,
        kind: FromQuery[InvoiceKind | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Invoice]:
        rows, nxt = await invoices.list_invoices(
            ctx,
            partner_id=partner_id,
            tenant_id=tenant_id,
            period=period,
            kind=kind,
            limit=limit,
            cursor=cursor,
        )
        return page(rows, nxt, schemas.Invoice, views.invoice_view)

    @get("/{invoice_id:uuid}", operation_id="getInvoice", description="One invoice. "
         "?format=json (default: its lines and the usage rows it billed), csv (a row per "
         "line: number, period, line, type, usage_period, description, meter, dimension, "
         "quantity, included, amount_minor, amount, currency), usage-csv (a row per billed "
         "usage total), html (the invoice document in the seller's brand) or pdf (the same "
         "document).")  # fmt: skip
    async def get_(
        self,
        ctx: CtxDep,
        request: Request[Any, Any, Any],
        invoice_id: FromPath[UUID],
        fmt: Annotated[Format, QueryParameter(name="format")] = Format.JSON,
    ) -> Response[Any]:
        return await invoice_file(ctx, invoice_id, fmt, _base(request))

    @post("/{invoice_id:uuid}/credit-notes", operation_id="createCreditNote",
          guards=[requires(billing.WRITE)], opt={"idempotent": True},
          description="Credit part or all of an issued invoice (never changed itself): a "
          "credit note for amount minor units, at most what earlier credit notes left. A "
          "partner credits its resale invoices; wholesale ones only the platform.")  # fmt: skip
    async def credit(
        self, ctx: CtxDep, invoice_id: FromPath[UUID], data: JSONBody[schemas.CreditNoteCreate]
    ) -> Response[schemas.InvoiceDetail]:
        note, tag = await views.credit(ctx, invoice_id, data)
        return Response(note, status_code=201, headers={"ETag": tag})


class BillingController(Controller):
    path = "/api/v1/billing"
    tags = ["billing"]
    guards = [requires(billing.READ)]

    @get("/usage", operation_id="getUsage", description="Usage of a period so far, per "
         "retailer, meter and dimension, as metered (refreshed every five minutes); "
         "partner_id or tenant_id narrow it.")  # fmt: skip
    async def usage(
        self,
        ctx: CtxDep,
        partner_id: FromQuery[UUID | None] = None,
        tenant_id: FromQuery[UUID | None] = None,
        period: Period = None,
    ) -> schemas.Usage:
        return await views.usage(ctx, period or views.this_period(), partner_id, tenant_id)

    @get("/draft", operation_id="getDraftInvoice", description="The invoice the period "
         "would get if it closed now: a partner's wholesale invoice (partner_id), or a "
         "retailer's resale invoice (tenant_id). Without either, the caller's own.")  # fmt: skip
    async def draft(
        self,
        ctx: CtxDep,
        partner_id: FromQuery[UUID | None] = None,
        tenant_id: FromQuery[UUID | None] = None,
        period: Period = None,
    ) -> schemas.DraftInvoice:
        return await views.draft(ctx, period or views.this_period(), partner_id, tenant_id)

    @post("/close", operation_id="closeBillingPeriod", status_code=200,
          guards=[requires(CLOSE)],
          description="Issue the invoices of a period that has ended: one wholesale invoice "
          "per partner and one resale invoice per retailer that has a price book in effect. "
          "Closing again issues nothing and counts the invoices as unchanged.")  # fmt: skip
    async def close(self, ctx: CtxDep, data: JSONBody[schemas.CloseRequest]) -> schemas.CloseResult:
        return await views.close(ctx, data.period)


ROUTES: list[ControllerRouterHandler] = [
    PriceBookController,
    InvoiceController,
    BillingController,
]
