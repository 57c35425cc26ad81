"""Wire schemas for price books, usage, drafts, invoices, credit notes and period close.

Amounts are integer minor units of the invoice's currency (``1250`` EUR is 12.50 EUR);
unit prices are decimal strings in minor units. Invoice lines travel as stored: each has
``line``, ``type`` (usage, minimum, late, credit), ``period``, ``description``,
``quantity`` and ``amount``; usage and late lines add ``meter``, ``dimension``,
``included`` and ``bands`` (quantity and unit price per tier).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec

from control_plane.billing.pricing import Item


class PriceBook(msgspec.Struct, kw_only=True):
    id: UUID
    kind: str
    partner_id: UUID | None
    tenant_id: UUID | None
    name: str
    effective_from: str
    currency: str
    minimum_fee: int
    items: list[Item]
    created_by: str
    created_at: datetime


class UsageRow(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    meter: str
    #: The template category for runs; "" for the other meters.
    dimension: str
    quantity: int


class Usage(msgspec.Struct, kw_only=True):
    """Metered usage of a period so far (``billing.meter`` refreshes the recent days every
    five minutes; closing the period meters it in full)."""

    period: str
    #: First day, and the day after the last.
    start: date
    end: date
    partner_id: UUID | None
    tenant_id: UUID | None
    #: When the freshest of these rows was metered; null when nothing was.
    metered_at: datetime | None
    rows: list[UsageRow]


class DraftInvoice(msgspec.Struct, kw_only=True):
    """What the period's invoice would be if it closed now: wholesale (a partner's) or
    resale (a retailer's). Without a price book in effect ``book`` is null, there are no
    lines, and ``note`` says that closing would skip this buyer."""

    kind: str
    period: str
    partner_id: UUID
    tenant_id: UUID | None
    book: PriceBook | None
    currency: str | None
    lines: list[dict[str, Any]]
    total: int
    note: str | None = None


class Invoice(msgspec.Struct, kw_only=True):
    id: UUID
    number: str
    #: wholesale, resale or credit_note.
    kind: str
    period: str
    #: Wholesale: the partner billed. Resale and its credit notes: the partner billing.
    partner_id: UUID
    #: Resale: the retailer billed.
    tenant_id: UUID | None
    currency: str
    total: int
    price_book_id: UUID | None
    #: A credit note: the invoice it corrects, and why.
    credits_invoice_id: UUID | None
    reason: str | None
    #: SHA-256 of the billed usage rows, in a canonical order.
    usage_digest: str
    issued_at: datetime
    issued_by: str


class InvoiceUsageRow(msgspec.Struct, kw_only=True):
    """A meter total the invoice billed: whose, of which period (an earlier one for late
    usage), and on which line."""

    tenant_id: UUID
    source_period: str
    meter: str
    dimension: str
    quantity: int
    line: int


class InvoiceDetail(Invoice, kw_only=True):
    lines: list[dict[str, Any]]
    usage: list[InvoiceUsageRow]


class CreditNoteCreate(msgspec.Struct, forbid_unknown_fields=True):
    #: In minor units, at most what is left of the invoice after earlier credit notes.
    amount: int
    reason: str


class CloseRequest(msgspec.Struct, forbid_unknown_fields=True):
    #: A month that has ended, written YYYY-MM.
    period: str


class CloseResult(msgspec.Struct, kw_only=True):
    period: str
    issued: list[Invoice]
    #: Invoices of the period that already existed (closing again changes nothing).
    unchanged: int
    #: Buyers not invoiced, and why (no price book in effect).
    skipped: list[str]
