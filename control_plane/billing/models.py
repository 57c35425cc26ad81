"""Metered usage per tenant and day, price books, invoices (and credit notes), and the
usage each invoice line billed."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from control_plane.db import Base, Entity, JSONType, Scoped

_TENANT_SCOPE: dict[str, str] = {"partner": "partner_id", "tenant": "tenant_id"}


class BookKind(StrEnum):
    #: The platform bills a partner.
    WHOLESALE = "wholesale"
    #: A partner bills one of its retailers.
    RESALE = "resale"


class InvoiceKind(StrEnum):
    WHOLESALE = "wholesale"
    RESALE = "resale"
    CREDIT_NOTE = "credit_note"


class UsageDaily(Scoped, Base):
    """One meter's quantity for a tenant on a UTC day, recomputed from the raw telemetry
    events (which the ingest stores once each) whenever the day is metered again."""

    __tablename__ = "usage_daily"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date(), primary_key=True)
    meter: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The template category for runs; "" otherwise.
    dimension: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    quantity: Mapped[int] = mapped_column(BigInteger())
    metered_at: Mapped[datetime]


class PriceBook(Entity, Scoped, Base):
    """Prices from ``effective_from`` (a period, YYYY-MM) on. Wholesale: the platform's
    prices for one partner (``partner_id``) or, with none, for every partner. Resale: a
    partner's prices for one retailer (``tenant_id``) or for all of its retailers.
    Books are never edited: a new book with a later ``effective_from`` replaces one."""

    __tablename__ = "price_books"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    kind: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[UUID | None] = mapped_column(ForeignKey("partners.id"), index=True)
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[str] = mapped_column(String(7))
    currency: Mapped[str] = mapped_column(String(3))
    minimum_fee: Mapped[int] = mapped_column(BigInteger())
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_by: Mapped[str] = mapped_column(String(200))


class Invoice(Entity, Scoped, Base):
    """An issued invoice or credit note: immutable once written. ``lines`` hold each
    line's meter, quantity, bands and amount; ``invoice_usage`` rows the meter totals it
    billed, per tenant and source period."""

    __tablename__ = "invoices"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE
    __table_args__ = (Index("ix_invoices_period", "period", "kind"),)

    number: Mapped[str] = mapped_column(String(40), unique=True)
    #: What makes closing twice a no-op: kind, seller/buyer and period.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))
    #: Wholesale: the partner billed. Resale and its credit notes: the partner billing.
    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    #: Resale: the retailer billed.
    tenant_id: Mapped[UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger())
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    price_book_id: Mapped[UUID | None] = mapped_column(ForeignKey("price_books.id"))
    #: A credit note: the invoice it corrects, and why.
    credits_invoice_id: Mapped[UUID | None] = mapped_column(ForeignKey("invoices.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    #: SHA-256 of the billed usage rows: recomputing it proves what the invoice billed.
    usage_digest: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    issued_by: Mapped[str] = mapped_column(String(200))


class InvoiceUsage(Scoped, Base):
    """A meter total an invoice billed: which tenant, which period it was used in (an
    earlier one for late usage), which meter, how much."""

    __tablename__ = "invoice_usage"
    __scope_columns__: ClassVar[dict[str, str]] = _TENANT_SCOPE

    invoice_id: Mapped[UUID] = mapped_column(ForeignKey("invoices.id"), primary_key=True)
    tenant_id: Mapped[UUID] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    source_period: Mapped[str] = mapped_column(String(7), primary_key=True)
    meter: Mapped[str] = mapped_column(String(32), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(64), primary_key=True)
    partner_id: Mapped[UUID] = mapped_column(ForeignKey("partners.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(BigInteger())
    line: Mapped[int] = mapped_column(Integer())
