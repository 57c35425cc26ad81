"""CRM: customer profiles and consent, loyalty balances and their transactions, return
history, service cases and the interaction log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import item, person
from tenant_runtime.sandbox.errors import InvalidInput, NotFound
from tenant_runtime.sandbox.registry import crm
from tenant_runtime.sandbox.world import World, money

TIERS = ("standard", "standard", "silver", "silver", "gold", "platinum")


def customer(w: World, customer_id: str) -> dict[str, Any]:
    """The customer ``customer_id`` (made up, stable, the first time it is asked for)."""
    if not customer_id:
        raise NotFound("no customer_id given: the customer is anonymous")
    found = w.crm.customers.get(customer_id)
    if found is None:
        r = w.rng("customer", customer_id)
        first, last = person(w, "customer", customer_id)
        found = {
            "customer_id": customer_id,
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}@mail.example".lower(),
            "mobile": f"+44 7700 900{r.randint(0, 999):03d}",
            "contact_preference": r.choice(("email", "email", "sms")),
            "marketing_consent": r.random() < 0.7,
            "marketing_suppressed_until": None,
            "loyalty_tier": r.choice(TIERS),
            "loyalty_points": r.randint(0, 12000),
            "lifetime_value": money(r.uniform(80, 9000)),
            "gestures_90d": r.choice((0, 0, 0, 1, 2, 4)),
            "returns_90d_count": r.choice((0, 0, 1, 1, 2, 3, 7)),
            "fraud_flag": r.random() < 0.04,
        }
        w.crm.customers[customer_id] = found
    return found


@crm.read
def get_customer(w: World, b: Body) -> dict[str, Any]:
    """Profile, loyalty tier and balance, recent goodwill gestures, contact preference."""
    return dict(customer(w, b.text("customer_id")))


@crm.read
def get_return_profile(w: World, b: Body) -> dict[str, Any]:
    """Return history and risk signals of a customer."""
    c = customer(w, b.text("customer_id"))
    return {
        key: c[key]
        for key in (
            "customer_id",
            "loyalty_tier",
            "returns_90d_count",
            "fraud_flag",
            "lifetime_value",
        )
    }


@crm.write
def award_loyalty_points(w: World, b: Body) -> dict[str, Any]:
    """Credit goodwill points; the gesture counts towards the customer's recent gestures."""
    c = customer(w, b.text("customer_id"))
    points = b.integer("points", minimum=0)
    transaction_id = w.mint("LT")
    c["loyalty_points"] += points
    c["gestures_90d"] += 1
    w.crm.loyalty_transactions[transaction_id] = {
        "transaction_id": transaction_id,
        "customer_id": c["customer_id"],
        "points": points,
        "reason": b.text("reason", ""),
        "order_id": b.text("order_id", ""),
        "reference": b.text("reference", ""),
        "at": w.stamp(),
    }
    return {
        "transaction_id": transaction_id,
        "customer_id": c["customer_id"],
        "points": points,
        "balance": c["loyalty_points"],
    }


@crm.write
def reverse_loyalty_points(w: World, b: Body) -> dict[str, Any]:
    """Take back the points earned on returned lines (one point per currency unit)."""
    c = customer(w, b.text("customer_id"))
    sale = w.erp.sales.get(b.text("original_sale", ""))
    prices = {line["sku"]: line["unit_price"] for line in sale["lines"]} if sale else {}
    earned = sum(
        int(line.quantity * (line.unit_price or prices.get(line.sku) or item(w, line.sku).price))
        for line in b.lines()
        if line.sku
    )
    reversed_points = min(earned, c["loyalty_points"])
    c["loyalty_points"] -= reversed_points
    transaction_id = w.mint("LT")
    w.crm.loyalty_transactions[transaction_id] = {
        "transaction_id": transaction_id,
        "customer_id": c["customer_id"],
        "points": -reversed_points,
        "reason": "return",
        "reference": b.text("reference", ""),
        "at": w.stamp(),
    }
    return {
        "transaction_id": transaction_id,
        "customer_id": c["customer_id"],
        "points_reversed": reversed_points,
        "balance": c["loyalty_points"],
    }


@crm.write
def suppress_marketing(w: World, b: Body) -> dict[str, Any]:
    """Pause promotional campaigns for a customer for some days."""
    c = customer(w, b.text("customer_id"))
    days = b.integer("days", minimum=0)
    if days > 90:
        raise InvalidInput(f"days must be at most 90, not {days}", field="days")
    until = w.stamp(timedelta(days=days))
    c["marketing_suppressed_until"] = until
    return {
        "customer_id": c["customer_id"],
        "suppressed_until": until,
        "reason": b.text("reason", ""),
    }


@crm.write
def close_case(w: World, b: Body) -> dict[str, Any]:
    """Close the customer's case (one is opened and closed when no case id is given)."""
    c = customer(w, b.text("customer_id"))
    case_id = b.text("case_id", "")
    case = w.crm.cases.get(case_id) if case_id else None
    if case is None:
        case_id = case_id or w.mint("CASE")
        case = {
            "case_id": case_id,
            "customer_id": c["customer_id"],
            "order_id": b.text("order_id", ""),
            "opened_at": w.stamp(),
        }
        w.crm.cases[case_id] = case
    already = case.get("status") == "closed"
    if not already:
        case.update(
            status="closed",
            resolution=b.text("resolution", ""),
            reference=b.text("reference", ""),
            closed_at=w.stamp(),
        )
    return {
        "case_id": case_id,
        "status": "closed",
        "resolution": case["resolution"],
        "already_closed": already,
    }


@crm.write
def log_interaction(w: World, b: Body) -> dict[str, Any]:
    """Append to the customer's interaction history (anonymous when no customer)."""
    customer_id = b.text("customer_id", "")
    if customer_id:
        customer(w, customer_id)
    interaction_id = w.mint("INT")
    w.crm.interactions[interaction_id] = {
        "interaction_id": interaction_id,
        "customer_id": customer_id,
        "type": b.text("type"),
        "outcome": b.text("outcome"),
        "amount": b.number("amount", default=0.0),
        "reference": b.text("reference", ""),
        "at": w.stamp(),
    }
    return {"interaction_id": interaction_id, "customer_id": customer_id, "logged_at": w.stamp()}
