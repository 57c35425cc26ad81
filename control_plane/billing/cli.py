"""``storeops billing ...``: close a period, list invoices and usage, create price books.
Runs as the platform (like the rest of the CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import click
import msgspec

from control_plane.billing import books, invoices, schemas, views
from control_plane.billing.models import Invoice
from control_plane.billing.money import money
from control_plane.cli import _partner_id, _tenant_id, console, handle_errors, main, run, table
from control_plane.config import Settings
from control_plane.context import Ctx


@main.group()
def billing() -> None:
    """Usage metering, price books, period close and invoices."""


@billing.command("close")
@click.option("--period", required=True, help="the month to close, YYYY-MM (it must have ended)")
@click.pass_obj
@handle_errors
def billing_close(settings: Settings, period: str) -> None:
    """Issue the period's invoices that do not exist yet; closing again issues none."""

    async def go(c: Ctx) -> schemas.CloseResult:
        return await views.close(c, period)

    result = run(settings, go)
    for invoice in result.issued:
        console.print(
            f"issued {invoice.number} ({invoice.kind}) {money(invoice.total, invoice.currency)}",
            highlight=False,
        )
    console.print(f"{len(result.issued)} issued, {result.unchanged} unchanged")
    for reason in result.skipped:
        console.print(f"skipped {reason}", highlight=False)


async def _all_invoices(c: Ctx, period: str | None, partner_id: UUID | None) -> list[Invoice]:
    """Every invoice (of the period, of the partner), page after page."""
    found: list[Invoice] = []
    cursor: str | None = None
    while True:
        rows, cursor = await invoices.list_invoices(
            c, partner_id=partner_id, period=period, limit=200, cursor=cursor
        )
        found += rows
        if cursor is None:
            return found


@billing.command("invoices")
@click.option("--period", default=None, help="only this month, YYYY-MM")
@click.option("--partner", "partner_ref", default=None, help="partner id or slug")
@click.pass_obj
@handle_errors
def billing_invoices(settings: Settings, period: str | None, partner_ref: str | None) -> None:
    """List issued invoices and credit notes."""

    async def go(c: Ctx) -> list[tuple[str, ...]]:
        partner_id = await _partner_id(c, partner_ref) if partner_ref else None
        found = await _all_invoices(c, period, partner_id)
        names = await views.buyer_names(c.session, found)
        return [
            (i.number, i.kind, i.period, names[i.id], money(i.total, i.currency),
             f"{i.issued_at:%Y-%m-%d}")
            for i in found
        ]  # fmt: skip

    table("Invoices", ["number", "kind", "period", "buyer", "total", "issued"], run(settings, go))


@billing.command("verify")
@click.option("--period", required=True, help="the month whose invoices to check, YYYY-MM")
@click.pass_obj
@handle_errors
def billing_verify(settings: Settings, period: str) -> None:
    """Recompute each invoice of --period from the usage it billed and its price book, and
    report usage of the period that arrived after it (billed later, as late lines)."""

    async def go(c: Ctx) -> list[tuple[str, bool, int]]:
        checked: list[tuple[str, bool, int]] = []
        for invoice in await _all_invoices(c, period, None):
            again = await invoices.reproduce(c, invoice)
            checked.append((invoice.number, again.ok, sum(again.arrived_since.values())))
        return checked

    checked = run(settings, go)
    for number, ok, late in checked:
        note = f"; {late} unit(s) of usage arrived since" if late else ""
        console.print(f"{number}: {'reproduced' if ok else 'DIFFERS'}{note}", highlight=False)
    if not all(ok for _, ok, _ in checked):
        raise ValueError("some invoices differ from what they billed; see above")
    console.print(f"{len(checked)} invoice(s) reproduced exactly")


@billing.group("book")
def book() -> None:
    """Price books."""


async def _resolve_refs(c: Ctx, document: dict[str, Any]) -> dict[str, Any]:
    """The book's partner and tenant may be given by slug on the command line."""
    resolved = dict(document)
    if isinstance(resolved.get("partner_id"), str):
        resolved["partner_id"] = str(await _partner_id(c, resolved["partner_id"]))
    if isinstance(resolved.get("tenant_id"), str):
        resolved["tenant_id"] = str(await _tenant_id(c, resolved["tenant_id"]))
    return resolved


@book.command("create")
@click.argument("book_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@handle_errors
def book_create(settings: Settings, book_file: Path) -> None:
    """Create the price book in BOOK_FILE (JSON, the API's PriceBookCreate fields;
    partner_id and tenant_id may be slugs)."""
    try:
        document = json.loads(book_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{book_file} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{book_file} must hold a JSON object of price book fields")

    async def go(c: Ctx) -> tuple[UUID, str]:
        data = msgspec.convert(await _resolve_refs(c, document), books.PriceBookCreate)
        created = await books.create_book(c, data)
        return (
            created.id,
            f"{created.kind} price book {created.name!r} from {created.effective_from}",
        )

    book_id, what = run(settings, go)
    console.print(f"created {what}: {book_id}", highlight=False)


@billing.command("usage")
@click.option("--period", default=None, help="a month, YYYY-MM (default: the current one)")
@click.option("--partner", "partner_ref", default=None, help="partner id or slug")
@click.pass_obj
@handle_errors
def billing_usage(settings: Settings, period: str | None, partner_ref: str | None) -> None:
    """Usage metered so far, per retailer, meter and dimension."""

    async def go(c: Ctx) -> tuple[schemas.Usage, dict[UUID, str]]:
        partner_id = await _partner_id(c, partner_ref) if partner_ref else None
        found = await views.usage(c, period or views.this_period(), partner_id)
        return found, await views.tenant_names(c.session, {r.tenant_id for r in found.rows})

    found, names = run(settings, go)
    rows = [
        (names.get(r.tenant_id, str(r.tenant_id)), r.meter, r.dimension, f"{r.quantity:,}")
        for r in found.rows
    ]
    metered = f"{found.metered_at:%Y-%m-%d %H:%M} UTC" if found.metered_at else "never"
    table(f"Usage {found.period} (metered {metered})", ["retailer", "meter", "dimension",
          "quantity"], rows)  # fmt: skip
