"""Invoice exports: CSV of the lines and of the billed usage, and the invoice document in
the seller's brand, as HTML and as PDF with the same content. Amounts are formatted from
integer minor units with Decimal, never float."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any
from uuid import UUID

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from jinja2 import Environment, FileSystemLoader, select_autoescape

from control_plane.billing.models import InvoiceKind
from control_plane.billing.money import exponent, major, money
from control_plane.billing.schemas import InvoiceDetail
from control_plane.contracts.brand import Brand, branding_templates, stylesheet


def unit_price(raw: str, currency: str) -> str:
    """A unit price (a decimal string of minor units) in major units: "0.5" EUR -> 0.005."""
    return f"{Decimal(raw).scaleb(-exponent(currency)).normalize():f} {currency}"


@dataclass(frozen=True)
class Document:
    """An invoice and what its document shows besides: whose brand, the parties' names."""

    invoice: InvoiceDetail
    brand: Brand
    seller: str
    buyer: str
    tenant_names: Mapping[UUID, str]
    #: A credit note: the number of the invoice it corrects.
    credits_number: str | None

    @property
    def title(self) -> str:
        return "Credit note" if self.invoice.kind == InvoiceKind.CREDIT_NOTE else "Invoice"

    @property
    def total(self) -> str:
        return money(self.invoice.total, self.invoice.currency)


@dataclass(frozen=True)
class Row:
    """One invoice line as the document shows it."""

    line: int
    period: str
    description: str
    #: How the amount came about: units used, included, and each tier's units and price.
    detail: str
    amount: str


def _detail(line: Mapping[str, Any], currency: str) -> str:
    if line.get("type") not in ("usage", "late"):
        return ""
    parts = [f"{line['quantity']:,} used"]
    if line["type"] == "usage" and line.get("included"):
        parts.append(f"{line['included']:,} included")
    parts += [
        f"{band['quantity']:,} at {unit_price(band['unit_price'], currency)}"
        for band in line.get("bands", [])
    ]
    return "; ".join(parts)


def rows(invoice: InvoiceDetail) -> list[Row]:
    return [
        Row(
            line=line["line"],
            period=line["period"],
            description=line["description"][:1].upper() + line["description"][1:],
            detail=_detail(line, invoice.currency),
            amount=money(line["amount"], invoice.currency),
        )
        for line in invoice.lines
    ]


# --- CSV ------------------------------------------------------------------------------------

LINE_COLUMNS = (
    "number", "period", "line", "type", "usage_period", "description", "meter", "dimension",
    "quantity", "included", "amount_minor", "amount", "currency",
)  # fmt: skip
USAGE_COLUMNS = (
    "number", "tenant_id", "tenant", "source_period", "meter", "dimension", "quantity", "line",
)  # fmt: skip


def _cell(text: str) -> str:
    """Free text (a credit note's reason, a retailer's name) a spreadsheet will not run as a
    formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def lines_csv(invoice: InvoiceDetail) -> str:
    """One row per line; ``period`` is the invoice's, ``usage_period`` the line's own (an
    earlier one for late usage); ``amount`` is in major units of ``currency``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LINE_COLUMNS)
    for line in invoice.lines:
        writer.writerow([
            invoice.number, invoice.period, line["line"], line["type"], line["period"],
            _cell(line["description"]), line.get("meter", ""), line.get("dimension", ""),
            line["quantity"], line.get("included", ""), line["amount"],
            major(line["amount"], invoice.currency), invoice.currency,
        ])  # fmt: skip
    return out.getvalue()


def usage_csv(invoice: InvoiceDetail, names: Mapping[UUID, str]) -> str:
    """One row per meter total the invoice billed, with the line that billed it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(USAGE_COLUMNS)
    for row in invoice.usage:
        writer.writerow([
            invoice.number, row.tenant_id, _cell(names.get(row.tenant_id, "")),
            row.source_period, row.meter, row.dimension, row.quantity, row.line,
        ])  # fmt: skip
    return out.getvalue()


# --- HTML -----------------------------------------------------------------------------------


@cache
def _templates() -> Environment:
    """The pages' templates folder, read without the web layer (which imports billing)."""
    return Environment(
        loader=FileSystemLoader(str(branding_templates())),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def html(doc: Document) -> str:
    """A standalone page: styles inline, the logo as a data URI, nothing loaded from elsewhere."""
    logo = doc.brand.logo
    return (
        _templates()
        .get_template("invoice/document.html")
        .render(
            doc=doc,
            invoice=doc.invoice,
            rows=rows(doc.invoice),
            brand=doc.brand,
            brand_css=stylesheet(doc.brand),
            logo=f"data:{logo.media_type};base64,{logo.data}" if logo and logo.data else None,
        )
    )


# --- PDF ------------------------------------------------------------------------------------

#: Logos the PDF embeds (an SVG logo shows in the HTML document only).
_RASTER = frozenset({"image/png", "image/jpeg", "image/webp"})


def _latin(text: str) -> str:
    """The PDF's built-in fonts cover Latin-1; other characters print as '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _pdf_heading(out: FPDF, doc: Document) -> None:
    logo = doc.brand.logo
    if logo and logo.data and logo.media_type in _RASTER:
        out.image(io.BytesIO(logo.content()), h=14, keep_aspect_ratio=True)
        out.ln(2)
    out.set_text_color(*_rgb(doc.brand.colors.primary))
    out.set_font("Helvetica", "B", 18)
    out.cell(h=10, text=_latin(doc.brand.product_name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    out.set_text_color(0, 0, 0)
    out.ln(2)
    out.set_font("Helvetica", "B", 14)
    title = _latin(f"{doc.title} {doc.invoice.number}")
    out.cell(h=8, text=title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    out.set_font("Helvetica", "", 10)
    facts = [
        f"Period: {doc.invoice.period}",
        f"Issued: {doc.invoice.issued_at:%Y-%m-%d}",
        f"Seller: {doc.seller}",
        f"Buyer: {doc.buyer}",
    ]
    if doc.credits_number:
        facts.append(f"Credits invoice {doc.credits_number}: {doc.invoice.reason or ''}")
    for fact in facts:
        out.cell(h=5, text=_latin(fact), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    out.ln(4)


def _pdf_lines(out: FPDF, doc: Document) -> None:
    with out.table(
        col_widths=(8, 14, 56, 22), text_align=("RIGHT", "LEFT", "LEFT", "RIGHT")
    ) as table:
        table.row(["#", "Period", "Description", "Amount"])
        for row in rows(doc.invoice):
            text = row.description + (f"\n{row.detail}" if row.detail else "")
            table.row([str(row.line), row.period, _latin(text), row.amount])
    out.set_font("Helvetica", "B", 11)
    out.cell(w=0, h=8, text=f"Total {doc.total}", align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    out.ln(4)


def _pdf_usage(out: FPDF, doc: Document) -> None:
    out.set_font("Helvetica", "B", 11)
    out.cell(h=7, text="Billed usage", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    out.set_font("Helvetica", "", 8)
    out.multi_cell(w=0, text=f"SHA-256 of the billed usage rows: {doc.invoice.usage_digest}")
    out.ln(2)
    if not doc.invoice.usage:
        return
    with out.table(col_widths=(40, 14, 18, 18, 14, 8), text_align="LEFT") as table:
        table.row(["Retailer", "Period", "Meter", "Dimension", "Quantity", "Line"])
        for used in doc.invoice.usage:
            name = doc.tenant_names.get(used.tenant_id, str(used.tenant_id))
            table.row([
                _latin(name), used.source_period, used.meter, used.dimension,
                f"{used.quantity:,}", str(used.line),
            ])  # fmt: skip


def pdf(doc: Document) -> bytes:
    out = FPDF(format="A4")
    out.set_title(_latin(f"{doc.title} {doc.invoice.number}"))
    out.set_author(_latin(doc.seller))
    out.set_creation_date(doc.invoice.issued_at)
    out.add_page()
    _pdf_heading(out, doc)
    out.set_font("Helvetica", "", 9)
    _pdf_lines(out, doc)
    _pdf_usage(out, doc)
    return bytes(out.output())
