"""Tiers, included quantities, minimums and late usage, checked against amounts worked
out by hand (minor units: cents)."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from control_plane.billing.invoicing import Late, compose
from control_plane.billing.pricing import Band, BookContent, Item, Tier, charge, check_book

RUNS_TIERED = Item(
    meter="runs",
    included=100,
    tiers=[Tier(unit_price="2", up_to=900), Tier(unit_price="1.5")],
)
BOOK = BookContent(
    currency="EUR",
    minimum_fee=5000,
    items=[
        RUNS_TIERED,
        Item(meter="runs", dimension="maintenance", unit_price="5"),
        Item(meter="steps", included=1000, unit_price="0.1"),
        Item(meter="store_days", unit_price="3"),
        Item(
            meter="api_calls", tiers=[Tier(unit_price="0", up_to=10_000), Tier(unit_price="0.01")]
        ),
    ],
)
A, B = uuid4(), uuid4()


def amounts(lines: list[dict[str, object]]) -> dict[tuple[object, ...], object]:
    return {(x["type"], x.get("meter"), x.get("dimension")): x["amount"] for x in lines}


def test_a_month_worked_out_by_hand() -> None:
    usage = {
        (A, "runs", "inventory"): 700,
        (B, "runs", "inventory"): 500,
        (A, "runs", "pricing"): 300,  # no item of its own: pooled with inventory under *
        (A, "runs", "maintenance"): 40,
        (A, "steps", ""): 20_000,
        (B, "steps", ""): 5_005,
        (A, "store_days", ""): 62,
        (A, "api_calls", ""): 12_345,
        (A, "tenant_days", ""): 30,  # not priced in this book: not billed
    }
    draft = compose(BOOK, "2026-10", usage, [])
    assert amounts(draft.lines) == {
        # 1500 runs, 100 included: 900 at 2 + 500 at 1.5 = 1800 + 750
        ("usage", "runs", "*"): 2550,
        ("usage", "runs", "maintenance"): 200,  # 40 at 5
        ("usage", "steps", "*"): 2401,  # (25_005 - 1000) * 0.1 = 2400.5, half up
        ("usage", "store_days", "*"): 186,  # 62 at 3
        ("usage", "api_calls", "*"): 23,  # 10_000 free, 2_345 at 0.01 = 23.45
    }
    assert draft.total == 5360  # over the 5000 minimum: no top-up
    runs = next(x for x in draft.lines if x["meter"] == "runs" and x["dimension"] == "*")
    assert runs["quantity"] == 1500 and runs["included"] == 100
    assert runs["bands"] == [
        {"quantity": 900, "unit_price": "2"},
        {"quantity": 500, "unit_price": "1.5"},
    ]
    # Every billed usage row names its line; tenant_days (unpriced) is not billed.
    assert draft.usage[(B, "2026-10", "runs", "inventory")] == (500, runs["line"])
    assert not any(key[2] == "tenant_days" for key in draft.usage)


def test_the_minimum_tops_up_a_quiet_month() -> None:
    draft = compose(BOOK, "2026-10", {(A, "runs", "inventory"): 50, (A, "store_days", ""): 4}, [])
    assert amounts(draft.lines) == {
        ("usage", "runs", "*"): 0,  # within the 100 included
        ("usage", "store_days", "*"): 12,
        ("minimum", None, None): 4988,
    }
    assert draft.total == 5000
    assert compose(BOOK, "2026-10", {}, []).total == 5000


def test_late_usage_continues_up_the_tiers() -> None:
    # 950 runs were billed for September (850 billable: all in the first tier); 100 more
    # arrived after it closed: 50 finish the first tier at 2, 50 start the second at 1.5.
    late = Late(
        period="2026-09",
        book=BOOK,
        unbilled={(A, "runs", "inventory"): 100},
        billed={(A, "runs", "inventory"): 950},
    )
    draft = compose(BOOK, "2026-10", {(A, "store_days", ""): 2000}, [late])
    line = draft.lines[-1]
    assert (line["type"], line["period"], line["amount"]) == ("late", "2026-09", 175)
    assert line["bands"] == [
        {"quantity": 50, "unit_price": "2"},
        {"quantity": 50, "unit_price": "1.5"},
    ]
    assert "late usage of 2026-09" in str(line["description"])
    assert draft.total == 6000 + 175  # no second minimum for September
    assert draft.usage[(A, "2026-09", "runs", "inventory")] == (100, line["line"])


def test_charge_rounds_once_per_line() -> None:
    item = Item(meter="steps", unit_price="0.333")
    assert charge(item, 3) == (1, [Band(3, Decimal("0.333"))])  # 0.999 -> 1
    assert charge(item, 1) == (0, [Band(1, Decimal("0.333"))])  # 0.333 -> 0
    assert charge(item, 0) == (0, [])


@pytest.mark.parametrize(
    ("book", "message"),
    [
        (BookContent(currency="euro", items=[Item(meter="runs", unit_price="1")]),
         "'euro' is not an ISO 4217 code"),
        (BookContent(currency="EUR", items=[Item(meter="hours", unit_price="1")]),
         "'hours' is not a meter"),
        (BookContent(currency="EUR", items=[Item(meter="runs", unit_price="-1")]),
         "must be a finite number of minor units, 0 or more"),
        (BookContent(currency="EUR", items=[Item(meter="runs", unit_price="1.0000001")]),
         "more than 6 decimal places"),
        (BookContent(currency="EUR", items=[Item(meter="runs", unit_price="ten")]),
         "'ten' is not a decimal number"),
        (BookContent(currency="EUR", items=[Item(meter="runs")]), "give either unit_price or tiers"),
        (BookContent(currency="EUR", items=[Item(meter="runs", tiers=[Tier("1", up_to=5)])]),
         "the last tier has no up_to"),
        (BookContent(currency="EUR", items=[Item(meter="runs", tiers=[Tier("1"), Tier("2")])]),
         "every tier but the last needs up_to"),
        (BookContent(currency="EUR", items=[Item(meter="steps", dimension="x", unit_price="1")]),
         "only runs have dimensions"),
        (BookContent(currency="EUR", items=[Item(meter="runs", unit_price="1")] * 2),
         "runs/* is priced twice"),
    ],
)  # fmt: skip
def test_bad_books_are_refused(book: BookContent, message: str) -> None:
    assert any(message in m for _, m in check_book(book)), check_book(book)
