"""ERP pricing: store markdowns against a markdown budget, and price events (permanent
changes, promotions) with their validation, store list and deployment status."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import ITEMS, STORES, item, shelf_price, stock, store_profile
from tenant_runtime.sandbox.errors import InvalidInput
from tenant_runtime.sandbox.registry import erp
from tenant_runtime.sandbox.systems.erp_stock import CURRENCY
from tenant_runtime.sandbox.world import World, doc, iso, money

PRICE_CHANGE_STATUSES = ("approved", "rejected", "scheduled", "deployed", "rolled_back")


def markdown_budget(w: World, store: str) -> float:
    if store not in w.erp.markdown_budget:
        w.erp.markdown_budget[store] = float(
            w.rng("markdown-budget", store).choice((600, 800, 1200))
        )
    return w.erp.markdown_budget[store]


@erp.read
def validate_markdown(w: World, b: Body) -> dict[str, Any]:
    """Current price, cost, stock on hand and markdown budget for a proposed markdown."""
    store, sku = b.text("store_id"), b.text("sku")
    quantity, new_price = b.integer("quantity", minimum=1), b.number("new_price", minimum=0)
    it, current = item(w, sku), shelf_price(w, store, sku)
    on_hand = stock(w, store, sku).on_hand
    errors, warnings = [], []
    if new_price >= current:
        errors.append(f"new price {new_price} is not below the current price {current}")
    if quantity > on_hand:
        warnings.append(f"{quantity} units requested but {on_hand} on hand")
    if new_price < it.unit_cost:
        warnings.append(f"new price {new_price} is below cost {it.unit_cost}")
    value = money((current - new_price) * quantity)
    return {
        "valid": not errors,
        "errors": errors,
        "warnings": warnings,
        "store_id": store,
        "sku": sku,
        "current_price": current,
        "unit_cost": it.unit_cost,
        "on_hand": on_hand,
        "markdown_value": value,
        "discount_pct": round((current - new_price) * 100 / current, 2) if current else 0.0,
        "budget_remaining": money(markdown_budget(w, store)),
        "currency": CURRENCY,
    }


@erp.write
def create_markdown(w: World, b: Body) -> dict[str, Any]:
    """Create a markdown price event: the store's price changes and the budget is used."""
    store, sku = b.text("store_id"), b.text("sku")
    price, quantity = b.number("price", minimum=0), b.integer("quantity", minimum=1)
    current = shelf_price(w, store, sku)
    if price >= current:
        raise InvalidInput(
            f"price {price} is not below the current price {current} of {sku}", field="price"
        )
    value = money((current - price) * quantity)
    markdown_id = w.mint("MD")
    w.erp.store_prices.setdefault(store, {})[sku] = price
    w.erp.markdown_budget[store] = markdown_budget(w, store) - value
    w.erp.markdowns[markdown_id] = {
        "markdown_id": markdown_id,
        "store_id": store,
        "sku": sku,
        "price": price,
        "previous_price": current,
        "quantity": quantity,
        "value": value,
        "reason": b.text("reason", ""),
        "reference": b.text("reference", ""),
        "status": "active",
        "created_at": w.stamp(),
    }
    return {
        "markdown_id": markdown_id,
        "status": "active",
        "sku": sku,
        "price": price,
        "previous_price": current,
        "quantity": quantity,
        "value": value,
        "currency": CURRENCY,
    }


@erp.write
def cancel_markdown(w: World, b: Body) -> dict[str, Any]:
    """Cancel a markdown: its price is withdrawn and its value returns to the budget."""
    markdown = doc(w.erp.markdowns, b.text("markdown_id"), "markdown")
    if markdown["status"] == "cancelled":
        return {
            "markdown_id": markdown["markdown_id"],
            "status": "cancelled",
            "already_cancelled": True,
        }
    prices = w.erp.store_prices.setdefault(markdown["store_id"], {})
    if prices.get(markdown["sku"]) == markdown["price"]:
        prices[markdown["sku"]] = markdown["previous_price"]
    w.erp.markdown_budget[markdown["store_id"]] += markdown["value"]
    markdown.update(status="cancelled", cancelled_at=w.stamp())
    return {
        "markdown_id": markdown["markdown_id"],
        "status": "cancelled",
        "already_cancelled": False,
        "price": prices[markdown["sku"]],
    }


_EVENT_NAMES = (
    "Summer barbecue",
    "Back to school",
    "Weekend multi-buy",
    "Price lock",
    "Festive favourites",
    "Spring clean",
)


def price_change(w: World, change_id: str) -> dict[str, Any]:
    """The price event (made up, stable, the first time an id is asked for)."""
    found = w.erp.price_changes.get(change_id)
    if found is None:
        r = w.rng("price-change", change_id)
        kind = r.choice(("temporary_promotion", "temporary_promotion", "permanent_price_change"))
        start = (w.now() + timedelta(days=r.randint(2, 5))).replace(hour=0, minute=0, second=0)
        items = []
        for sku in sorted(r.sample(sorted(ITEMS), r.randint(3, 6))):
            it = item(w, sku)
            promo = money(max(it.price * (1 - r.uniform(0.1, 0.35)), it.unit_cost * 1.08))
            items.append(
                {
                    "sku": sku,
                    "description": it.description,
                    "regular_price": it.price,
                    "promo_price": promo,
                    "unit_cost": it.unit_cost,
                }
            )
        found = {
            "change_id": change_id,
            "name": f"{r.choice(_EVENT_NAMES)} {change_id}",
            "type": kind,
            "status": "approved",
            "zones": sorted(r.sample(("Z1", "Z2", "Z3"), 2)),
            "effective_from": iso(start),
            "effective_to": iso(start + timedelta(days=7))
            if kind != "permanent_price_change"
            else "",
            "items": items,
            "excluded_store_ids": [],
            "history": [],
        }
        w.erp.price_changes[change_id] = found
    return found


@erp.read
def get_price_change(w: World, b: Body) -> dict[str, Any]:
    """An approved price event: name, type, zones, dates and items with old and new prices."""
    change = price_change(w, b.text("change_id"))
    return {k: v for k, v in change.items() if k != "history"}


@erp.read
def validate_price_change(w: World, b: Body) -> dict[str, Any]:
    """Below-cost, overlap and date checks; deepest discount and thinnest margin."""
    change_id = b.text("change_id")
    change = price_change(w, change_id)
    items = b.objects("items", required=False) or change["items"]
    effective_from = b.text("effective_from", change["effective_from"])
    errors: list[str] = []
    discounts, margins = [], []
    for index, raw in enumerate(items):
        line = Body(raw)
        sku = line.text("sku")
        it = item(w, sku)
        regular = line.number("regular_price", default=it.price)
        new = line.number("promo_price", default=line.number("price", default=regular))
        cost = line.number("unit_cost", default=it.unit_cost)
        if new < cost:
            errors.append(f"items[{index}] {sku}: price {new} is below cost {cost}")
        discounts.append((regular - new) * 100 / regular if regular else 0.0)
        margins.append((new - cost) * 100 / new if new else -100.0)
    if _parse(effective_from) < w.now():
        errors.append(f"effective_from {effective_from} is in the past")
    skus = {str(raw.get("sku")) for raw in items}
    for other in w.erp.price_changes.values():
        if (
            other["change_id"] != change_id
            and other["status"] == "deployed"
            and skus & {i["sku"] for i in other["items"]}
        ):
            errors.append(f"overlaps deployed price change {other['change_id']} on shared SKUs")
    return {
        "change_id": change_id,
        "valid": not errors,
        "errors": errors,
        "items_checked": len(items),
        "max_discount_pct": round(max(discounts, default=0.0), 2),
        "min_margin_pct": round(min(margins, default=0.0), 2),
    }


def _parse(stamp: str) -> datetime:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"effective_from must be an ISO timestamp, not {stamp!r}") from None


@erp.write
def reject_price_change(w: World, b: Body) -> dict[str, Any]:
    """Send a price event back to pricing with the reasons."""
    change = price_change(w, b.text("change_id"))
    reasons = b.strings("reasons", required=False)
    change["history"].append({"status": "rejected", "at": w.stamp(), "reasons": reasons})
    change["status"] = "rejected"
    return {"change_id": change["change_id"], "status": "rejected", "reasons": reasons}


def change_stores(w: World, change: dict[str, Any]) -> list[dict[str, Any]]:
    stores = [store_profile(w, s) for s in STORES]
    inside = [s for s in stores if s["zone"] in change["zones"]]
    return inside if len(inside) >= 2 else stores[:4]


@erp.read
def get_price_change_stores(w: World, b: Body) -> dict[str, Any]:
    """The stores of the event's price zones, with their online flag and manager."""
    change = price_change(w, b.text("change_id"))
    stores = [s for s in change_stores(w, change) if s["id"] not in change["excluded_store_ids"]]
    return {"change_id": change["change_id"], "zones": change["zones"], "stores": stores}


@erp.write
def exclude_stores_from_price_change(w: World, b: Body) -> dict[str, Any]:
    """Take stores out of a price event (they keep their current prices)."""
    change = price_change(w, b.text("change_id"))
    store_ids = b.strings("store_ids")
    known = {s["id"] for s in change_stores(w, change)}
    unknown = [s for s in store_ids if s not in known]
    if unknown:
        raise InvalidInput(
            f"store(s) {', '.join(unknown)} are not in price change {change['change_id']}; "
            f"its stores are {', '.join(sorted(known))}",
            field="store_ids",
        )
    excluded = sorted(set(change["excluded_store_ids"]) | set(store_ids))
    change["excluded_store_ids"] = excluded
    change["history"].append({"status": "stores_excluded", "at": w.stamp(), "store_ids": store_ids})
    return {"change_id": change["change_id"], "excluded_store_ids": excluded}


@erp.write
def set_price_change_status(w: World, b: Body) -> dict[str, Any]:
    """Record the event's deployment outcome (deployed, rolled_back...)."""
    change = price_change(w, b.text("change_id"))
    status = b.text("status")
    if status not in PRICE_CHANGE_STATUSES:
        raise InvalidInput(
            f"status {status!r} is not one of {', '.join(PRICE_CHANGE_STATUSES)}", field="status"
        )
    excluded = b.strings("excluded_store_ids", required=False)
    if excluded:
        change["excluded_store_ids"] = sorted(set(change["excluded_store_ids"]) | set(excluded))
    change["status"] = status
    change["history"].append({"status": status, "at": w.stamp()})
    return {
        "change_id": change["change_id"],
        "status": status,
        "excluded_store_ids": change["excluded_store_ids"],
        "updated_at": w.stamp(),
    }
