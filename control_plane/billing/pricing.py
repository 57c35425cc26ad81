"""Price books and the arithmetic of an invoice line. Pure: quantities in, integer minor
units out. Unit prices are Decimals in minor units (``"0.5"``: half a cent per step);
each line's amount is rounded once, half up, to whole minor units; never a float.

A line bills ``max(0, quantity - included)`` through graduated tiers: the first
``up_to`` units at the first tier's price, the next ones at the next tier's, and so on
(the last tier has no ``up_to``). An invoice whose period lines come to less than the
book's ``minimum_fee`` gets a top-up line to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec

#: What usage is metered in, and what a price book may price.
METERS = {
    "runs": "workflow runs started (dimension: the template's category)",
    "steps": "workflow steps executed",
    "store_days": "stores active on a day (one per store per day with activity)",
    "api_calls": "calls to the runtime's API",
    "tenant_days": "days a retailer's runtime reported anything",
}
ANY = "*"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_DIMENSION = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]{0,63})$")


class Tier(msgspec.Struct, forbid_unknown_fields=True):
    #: Units in this tier (after the previous tiers); omitted on the last tier.
    unit_price: str
    up_to: Annotated[int, msgspec.Meta(ge=1)] | None = None


class Item(msgspec.Struct, forbid_unknown_fields=True):
    meter: str
    #: A category for ``runs`` (``inventory``), or ``*`` for any not priced on its own.
    dimension: str = ANY
    included: Annotated[int, msgspec.Meta(ge=0)] = 0
    #: Either ``unit_price`` alone or ``tiers``.
    unit_price: str | None = None
    tiers: list[Tier] | None = None


class BookContent(msgspec.Struct, forbid_unknown_fields=True):
    currency: str
    items: Annotated[list[Item], msgspec.Meta(min_length=1, max_length=100)]
    #: In minor units; the period's lines are topped up to it.
    minimum_fee: Annotated[int, msgspec.Meta(ge=0)] = 0


def _price(field: str, raw: str, problems: list[tuple[str, str]]) -> Decimal | None:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        problems.append((field, f"{raw!r} is not a decimal number"))
        return None
    if not value.is_finite() or value < 0:
        problems.append((field, f"{raw!r} must be a finite number of minor units, 0 or more"))
        return None
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        problems.append((field, f"{raw!r} has more than 6 decimal places"))
        return None
    return value


def check_book(book: BookContent) -> list[tuple[str, str]]:
    """Every problem of a price book, as (field, message)."""
    problems: list[tuple[str, str]] = []
    if not _CURRENCY.match(book.currency):
        problems.append(("currency", f"{book.currency!r} is not an ISO 4217 code like EUR"))
    seen: set[tuple[str, str]] = set()
    for i, item in enumerate(book.items):
        where = f"items[{i}]"
        if item.meter not in METERS:
            problems.append((f"{where}.meter", f"{item.meter!r} is not a meter; use one of "
                             + ", ".join(METERS)))  # fmt: skip
        if not _DIMENSION.match(item.dimension):
            problems.append((f"{where}.dimension", f"{item.dimension!r} is not a dimension"))
        if item.dimension != ANY and item.meter != "runs":
            problems.append((f"{where}.dimension", f"only runs have dimensions, not {item.meter}"))
        if (item.meter, item.dimension) in seen:
            problems.append((where, f"{item.meter}/{item.dimension} is priced twice"))
        seen.add((item.meter, item.dimension))
        if (item.unit_price is None) == (item.tiers is None):
            problems.append((where, "give either unit_price or tiers"))
            continue
        if item.unit_price is not None:
            _price(f"{where}.unit_price", item.unit_price, problems)
            continue
        tiers = item.tiers or []
        if not tiers:
            problems.append((f"{where}.tiers", "needs at least one tier"))
        for j, tier in enumerate(tiers):
            _price(f"{where}.tiers[{j}].unit_price", tier.unit_price, problems)
            last = j == len(tiers) - 1
            if last and tier.up_to is not None:
                problems.append((f"{where}.tiers[{j}]", "the last tier has no up_to"))
            if not last and tier.up_to is None:
                problems.append((f"{where}.tiers[{j}]", "every tier but the last needs up_to"))
    return problems


@dataclass(frozen=True)
class Band:
    """One tier's share of a line: how many units at what price."""

    quantity: int
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity


def bands(item: Item, billable: int) -> list[Band]:
    """``billable`` units split across the item's tiers (one band for a flat price)."""
    if item.unit_price is not None:
        return [Band(billable, Decimal(item.unit_price))] if billable else []
    out: list[Band] = []
    left = billable
    for tier in item.tiers or []:
        if left <= 0:
            break
        take = left if tier.up_to is None else min(left, tier.up_to)
        out.append(Band(take, Decimal(tier.unit_price)))
        left -= take
    return out


def round_minor(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def charge(item: Item, quantity: int, already: int = 0) -> tuple[int, list[Band]]:
    """The amount (minor units) for ``quantity`` units when ``already`` units of the same
    period were billed before (late usage continues up the tiers where they stopped), and
    the bands of the new units."""
    before = bands(item, max(0, already - item.included))
    after = bands(item, max(0, already + quantity - item.included))
    total = sum((b.amount for b in after), Decimal(0)) - sum((b.amount for b in before), Decimal(0))
    return round_minor(total), _difference(after, before)


def _difference(after: list[Band], before: list[Band]) -> list[Band]:
    out = []
    for i, band in enumerate(after):
        prior = before[i].quantity if i < len(before) else 0
        if band.quantity > prior:
            out.append(Band(band.quantity - prior, band.unit_price))
    return out


def item_for(book: BookContent, meter: str, dimension: str) -> Item | None:
    """The item pricing (meter, dimension): its own, else the meter's ``*`` item."""
    exact = next((i for i in book.items if i.meter == meter and i.dimension == dimension), None)
    return exact or next((i for i in book.items if i.meter == meter and i.dimension == ANY), None)


def group(book: BookContent, totals: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Quantities per priced item: dimensions without their own item pool into ``*``
    (so its included units and tiers apply to their sum). Unpriced meters drop out."""
    out: dict[tuple[str, str], int] = {}
    for (meter, dimension), quantity in totals.items():
        item = item_for(book, meter, dimension)
        if item is None:
            continue
        key = (item.meter, item.dimension)
        out[key] = out.get(key, 0) + quantity
    return out


def parse_book(raw: Any) -> BookContent:
    return msgspec.convert(raw, BookContent)


def total(amounts: Iterable[int]) -> int:
    return sum(amounts, 0)
