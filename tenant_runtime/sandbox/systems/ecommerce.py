"""eCommerce platform: web orders, zero-value replacements picked by the fulfilling store,
line refunds, delivery promises, store availability and store-level online prices."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body, Line
from tenant_runtime.sandbox.data import ITEMS, STORES, item, stock
from tenant_runtime.sandbox.errors import Conflict, InvalidInput, NotFound
from tenant_runtime.sandbox.registry import ecommerce
from tenant_runtime.sandbox.world import World, doc, iso, money

#: Units held back from online availability per SKU and store (shrink, display stock).
SAFETY_STOCK = 2


def order(w: World, order_id: str) -> dict[str, Any]:
    """The web order ``order_id`` (made up, stable, the first time it is asked for)."""
    found = w.ecommerce.orders.get(order_id)
    if found is None:
        r = w.rng("web-order", order_id)
        placed = w.now() - timedelta(days=r.randint(1, 6), hours=r.randint(0, 12))
        lines: list[dict[str, Any]] = []
        for n, sku in enumerate(sorted(r.sample(sorted(ITEMS), r.randint(1, 4))), start=1):
            it = item(w, sku)
            lines.append(
                {
                    "line_id": str(n),
                    "sku": sku,
                    "description": it.description,
                    "quantity": r.randint(1, 3),
                    "unit_price": it.price,
                    "refunded_quantity": 0,
                }
            )
        promised = placed + timedelta(days=1)
        found = {
            "order_id": order_id,
            "customer_id": f"CUST-{r.randint(10000, 99999)}",
            "fulfilling_store": r.choice(STORES),
            "status": "delivered",
            "kind": "customer",
            "placed_at": iso(placed),
            "promised_delivery": iso(promised),
            "delivered_at": iso(promised + timedelta(hours=r.choice((0, 0, 3, 26)))),
            "lines": lines,
            "total": money(sum(i["quantity"] * i["unit_price"] for i in lines)),
        }
        w.ecommerce.orders[order_id] = found
    return found


@ecommerce.read
def get_order(w: World, b: Body) -> dict[str, Any]:
    """A web order: customer, fulfilling store, promise vs actual delivery, lines."""
    return dict(order(w, b.text("order_id")))


def _sellable(w: World, store: str, sku: str) -> int:
    level = stock(w, store, sku)
    return max(level.on_hand - level.allocated - SAFETY_STOCK, 0)


def _stock_lines(w: World, store: str, lines: list[Line]) -> list[dict[str, Any]]:
    return [
        {
            "sku": line.sku,
            "quantity": line.quantity,
            "available_units": _sellable(w, store, line.sku),
            "available": bool(line.sku) and _sellable(w, store, line.sku) >= line.quantity,
        }
        for line in lines
    ]


@ecommerce.read
def check_store_stock(w: World, b: Body) -> dict[str, Any]:
    """Can the store pick these lines now (on hand less allocated and safety stock)?"""
    store = b.text("store_id")
    lines = _stock_lines(w, store, b.lines())
    return {
        "store_id": store,
        "all_available": all(line["available"] for line in lines),
        "lines": lines,
    }


@ecommerce.write
def create_replacement_order(w: World, b: Body) -> dict[str, Any]:
    """A zero-value replacement picked by a store; the units are allocated at once."""
    original = order(w, b.text("original_order_id"))
    store = b.text("store_id")
    lines = _stock_lines(w, store, b.lines())
    short = [line["sku"] or "?" for line in lines if not line["available"]]
    if short:
        raise Conflict(f"store {store} cannot pick {', '.join(short)} now", unavailable=short)
    for line in lines:
        stock(w, store, line["sku"]).allocated += line["quantity"]
    order_id = w.mint("WEB-R")
    w.ecommerce.orders[order_id] = {
        "order_id": order_id,
        "kind": "replacement",
        "original_order_id": original["order_id"],
        "customer_id": original["customer_id"],
        "fulfilling_store": store,
        "status": "created",
        "lines": [
            {"sku": line["sku"], "quantity": line["quantity"], "unit_price": 0.0} for line in lines
        ],
        "delivery": b.text("delivery", "next_available_slot"),
        "reason": b.text("reason", ""),
        "reference": b.text("reference", ""),
        "pick_by": w.stamp(timedelta(hours=4)),
        "total": 0.0,
    }
    w.emit("ecommerce", "ecommerce.order.picked", order_id, order_id=order_id, store_id=store)
    return {
        "order_id": order_id,
        "status": "created",
        "pick_by": w.stamp(timedelta(hours=4)),
        "total": 0.0,
    }


@ecommerce.write
def cancel_replacement_order(w: World, b: Body) -> dict[str, Any]:
    """Cancel a replacement that was not picked in time; its units are released."""
    replacement = doc(w.ecommerce.orders, b.text("order_id"), "order")
    if replacement.get("kind") != "replacement":
        raise Conflict(f"order {replacement['order_id']} is a customer order, not a replacement")
    if replacement["status"] == "cancelled":
        return {
            "order_id": replacement["order_id"],
            "status": "cancelled",
            "already_cancelled": True,
        }
    for line in replacement["lines"]:
        stock(w, replacement["fulfilling_store"], line["sku"]).allocated -= line["quantity"]
    replacement.update(status="cancelled", cancel_reason=b.text("reason", ""))
    return {"order_id": replacement["order_id"], "status": "cancelled", "already_cancelled": False}


@ecommerce.write
def refund_order_lines(w: World, b: Body) -> dict[str, Any]:
    """Refund order lines; a unit is refunded once, whatever the request."""
    found = order(w, b.text("order_id"))
    by_sku = {line["sku"]: line for line in found["lines"]}
    wanted = b.lines()
    unknown = [line.sku for line in wanted if line.sku not in by_sku]
    if unknown:
        raise InvalidInput(
            f"SKU(s) {', '.join(unknown)} are not on order {found['order_id']}; "
            f"its SKUs are {', '.join(by_sku)}",
            field="lines",
        )
    for line in wanted:
        ordered = by_sku[line.sku]
        left = ordered["quantity"] - ordered["refunded_quantity"]
        if line.quantity > left:
            raise Conflict(
                f"{line.sku}: {line.quantity} to refund but only {left} unrefunded "
                f"on order {found['order_id']}"
            )
    amount = 0.0
    for line in wanted:
        by_sku[line.sku]["refunded_quantity"] += line.quantity
        amount += line.quantity * by_sku[line.sku]["unit_price"]
    refund_id = w.mint("WRF")
    w.ecommerce.refunds[refund_id] = {
        "refund_id": refund_id,
        "order_id": found["order_id"],
        "amount": money(amount),
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in wanted],
        "reason": b.text("reason", ""),
        "status": "succeeded",
        "at": w.stamp(),
    }
    return {
        "refund_id": refund_id,
        "order_id": found["order_id"],
        "amount": money(amount),
        "status": "succeeded",
        "currency": "EUR",
    }


@ecommerce.write
def update_delivery_promise(w: World, b: Body) -> dict[str, Any]:
    """Move the delivery promise of open web orders waiting for a SKU at a store."""
    sku, store, eta = b.text("sku"), b.text("store"), b.text("eta")
    promise_id = w.mint("DP")
    updated = w.rng("promise", sku, store).randint(0, 6)
    w.ecommerce.delivery_promises[promise_id] = {
        "sku": sku,
        "store": store,
        "eta": eta,
        "orders_updated": updated,
    }
    return {"sku": sku, "store": store, "eta": eta, "orders_updated": updated}


@ecommerce.write
def update_store_availability(w: World, b: Body) -> dict[str, Any]:
    """Refresh the online availability of SKUs at a store from current stock."""
    store = b.text("store_id")
    skus = [
        {"sku": sku, "available_to_sell": _sellable(w, store, sku)} for sku in b.strings("skus")
    ]
    update_id = w.mint("AV")
    w.ecommerce.availability_updates[update_id] = {"store_id": store, "skus": skus, "at": w.stamp()}
    return {"store_id": store, "skus": skus, "updated_at": w.stamp()}


@ecommerce.write
def publish_store_prices(w: World, b: Body) -> dict[str, Any]:
    """Publish a price event's prices for one store's online assortment."""
    store, change_id = b.text("store_id"), b.text("change_id")
    items = b.objects("items")
    w.ecommerce.store_prices.setdefault(store, {})[change_id] = {
        "items": items,
        "effective_from": b.text("effective_from", ""),
        "effective_to": b.text("effective_to", ""),
        "status": "published",
        "at": w.stamp(),
    }
    return {"store_id": store, "change_id": change_id, "status": "published", "items": len(items)}


@ecommerce.write
def revert_store_prices(w: World, b: Body) -> dict[str, Any]:
    """Withdraw a price event's online prices for one store."""
    store, change_id = b.text("store_id"), b.text("change_id")
    published = w.ecommerce.store_prices.get(store, {}).get(change_id)
    if published is None:
        raise NotFound(f"price change {change_id} was never published for store {store}")
    published.update(status="reverted", reverted_at=w.stamp())
    return {"store_id": store, "change_id": change_id, "status": "reverted"}


@ecommerce.write
def suppress_store_promotion(w: World, b: Body) -> dict[str, Any]:
    """Hide a promotion online for stores that did not launch it."""
    change_id, store_ids = b.text("change_id"), b.strings("store_ids")
    entry = w.ecommerce.promotion_suppressions.setdefault(
        change_id, {"change_id": change_id, "store_ids": []}
    )
    entry.update(store_ids=sorted(set(entry["store_ids"]) | set(store_ids)), at=w.stamp())
    return {"change_id": change_id, "suppressed_store_ids": entry["store_ids"]}
