"""Turning metered usage into invoice lines with a price book. Pure: usage in, lines out.

Usage of the period itself is billed in ``usage`` lines (one per priced item), topped up to
the book's minimum fee. Usage of an earlier, already invoiced period that arrived after it
was closed (the late-arrival rule) is billed on the next invoice in ``late`` lines, priced
by that period's book as if it had arrived on time: up the tiers from where that period's
billed quantity stopped, with no second minimum.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from control_plane.billing.money import money
from control_plane.billing.pricing import METERS, BookContent, charge, group, item_for

#: (tenant, meter, dimension) -> quantity.
Usage = Mapping[tuple[UUID, str, str], int]


@dataclass
class Late:
    """An earlier period's usage that was not billed yet, and what was."""

    period: str
    book: BookContent
    unbilled: dict[tuple[UUID, str, str], int]
    billed: dict[tuple[UUID, str, str], int]


@dataclass
class Draft:
    lines: list[dict[str, Any]] = field(default_factory=list)
    #: (tenant, source period, meter, dimension) -> (quantity, line number).
    usage: dict[tuple[UUID, str, str, str], tuple[int, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(int(line["amount"]) for line in self.lines)


def describe(meter: str, dimension: str) -> str:
    what = METERS[meter].split(" (")[0]
    return f"{what}: {dimension}" if dimension not in ("", "*") else what


def _lines_for(
    draft: Draft,
    book: BookContent,
    usage: Usage,
    *,
    kind: str,
    period: str,
    already: Usage | None = None,
) -> int:
    """Append one line per priced item with usage; returns their sum."""
    grouped = group(book, _by_meter(usage))
    before = group(book, _by_meter(already or {}))
    subtotal = 0
    for (meter, dimension), quantity in sorted(grouped.items()):
        if quantity <= 0:
            continue
        item = item_for(book, meter, dimension)
        assert item is not None
        amount, bands = charge(item, quantity, before.get((meter, dimension), 0))
        number = len(draft.lines) + 1
        draft.lines.append(
            {
                "line": number,
                "type": kind,
                "period": period,
                "meter": meter,
                "dimension": dimension,
                "description": describe(meter, dimension)
                + (f" (late usage of {period})" if kind == "late" else ""),
                "quantity": quantity,
                "included": item.included,
                "bands": [{"quantity": b.quantity, "unit_price": str(b.unit_price)} for b in bands],
                "amount": amount,
            }
        )
        subtotal += amount
        for (tenant, m, d), q in usage.items():
            owner = item_for(book, m, d)
            if owner is not None and (owner.meter, owner.dimension) == (meter, dimension) and q:
                draft.usage[(tenant, period, m, d)] = (q, number)
    return subtotal


def _by_meter(usage: Usage) -> dict[tuple[str, str], int]:
    """Usage summed over tenants, per (meter, dimension)."""
    out: dict[tuple[str, str], int] = {}
    for (_, meter, dimension), quantity in usage.items():
        out[(meter, dimension)] = out.get((meter, dimension), 0) + quantity
    return out


def compose(book: BookContent, period: str, usage: Usage, late: list[Late]) -> Draft:
    """An invoice's lines: the period's usage, its minimum, then late usage by period."""
    draft = Draft()
    subtotal = _lines_for(draft, book, usage, kind="usage", period=period)
    if subtotal < book.minimum_fee:
        draft.lines.append(
            {
                "line": len(draft.lines) + 1,
                "type": "minimum",
                "period": period,
                "description": f"Minimum monthly fee of {money(book.minimum_fee, book.currency)}",
                "quantity": 1,
                "amount": book.minimum_fee - subtotal,
            }
        )
    for earlier in late:
        _lines_for(
            draft,
            earlier.book,
            earlier.unbilled,
            kind="late",
            period=earlier.period,
            already=earlier.billed,
        )
    return draft


def digest(usage: Mapping[tuple[UUID, str, str, str], tuple[int, int]]) -> str:
    """SHA-256 of the billed usage rows, in a canonical order."""
    rows = sorted([str(t), p, m, d, q, line] for (t, p, m, d), (q, line) in usage.items())
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()
