"""ERP inventory: stock positions, transfers, cycle counts, replenishment holds and
stock adjustments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import ITEMS, dc_available, is_dc, item, region, stock, supplier
from tenant_runtime.sandbox.errors import Conflict, InvalidInput, NotFound
from tenant_runtime.sandbox.registry import erp
from tenant_runtime.sandbox.world import World, doc, iso, money

CURRENCY = "EUR"


def available_at(w: World, location: str, sku: str) -> int:
    """Free units at a store (on hand less allocated) or a DC."""
    if is_dc(location):
        return dc_available(w, location, sku)
    level = stock(w, location, sku)
    return max(level.on_hand - level.allocated, 0)


@erp.read
def validate_transfer(w: World, b: Body) -> dict[str, Any]:
    """Check a stock transfer: the SKU, the units free at the source, the value at cost."""
    sku, quantity = b.text("sku"), b.integer("quantity", minimum=1)
    source, destination = b.text("from_location"), b.text("to_store")
    it = item(w, sku)
    available = available_at(w, source, sku)
    reasons = []
    if source == destination:
        reasons.append("from_location and to_store are the same location")
    if available < quantity:
        reasons.append(f"only {available} unit(s) of {sku} are free at {source}")
    return {
        "valid": not reasons,
        "reasons": reasons,
        "sku": sku,
        "description": it.description,
        "quantity": quantity,
        "from_location": source,
        "to_store": destination,
        "available": available,
        "unit_cost": it.unit_cost,
        "transfer_value": money(quantity * it.unit_cost),
        "currency": CURRENCY,
    }


@erp.write
def create_transfer_order(w: World, b: Body) -> dict[str, Any]:
    """Create a transfer order; with a source and destination the units are allocated."""
    sku, quantity = b.text("sku"), b.integer("quantity", minimum=1)
    source, destination = b.text("from_location", ""), b.text("to_store", "")
    item(w, sku)
    if source and available_at(w, source, sku) < quantity:
        raise Conflict(
            f"only {available_at(w, source, sku)} unit(s) of {sku} are free at {source}; "
            f"{quantity} requested"
        )
    order_id = w.mint("TO")
    _move(w, source, destination, sku, quantity)
    w.erp.transfer_orders[order_id] = {
        "order_id": order_id,
        "sku": sku,
        "quantity": quantity,
        "from_location": source,
        "to_store": destination,
        "reference": b.text("reference", ""),
        "status": "open",
        "created_at": w.stamp(),
    }
    return {"order_id": order_id, "status": "open", "sku": sku, "quantity": quantity}


@erp.write
def cancel_transfer_order(w: World, b: Body) -> dict[str, Any]:
    """Cancel an open transfer order and release what it allocated."""
    order = doc(w.erp.transfer_orders, b.text("order_id"), "transfer order")
    if order["status"] == "cancelled":
        return {"order_id": order["order_id"], "status": "cancelled", "already_cancelled": True}
    if order["status"] == "shipped":
        raise Conflict(f"transfer order {order['order_id']} has shipped and cannot be cancelled")
    _move(w, order["from_location"], order["to_store"], order["sku"], order["quantity"], sign=-1)
    order.update(status="cancelled", cancelled_at=w.stamp())
    return {"order_id": order["order_id"], "status": "cancelled", "already_cancelled": False}


def _move(w: World, source: str, destination: str, sku: str, qty: int, sign: int = 1) -> None:
    """Allocate at the source and put in transit to the destination (sign -1 undoes it)."""
    if is_dc(source):
        w.wms.dc_stock.setdefault(source, {})[sku] = dc_available(w, source, sku) - sign * qty
    elif source:
        stock(w, source, sku).allocated += sign * qty
    if destination and not is_dc(destination):
        stock(w, destination, sku).in_transit += sign * qty


@erp.read
def get_stock_position(w: World, b: Body) -> dict[str, Any]:
    """The SKU's full position at a store, with its replenishment and sourcing data."""
    store, sku = b.text("store_id"), b.text("sku")
    it, level = item(w, sku), stock(w, store, sku)
    vendor = supplier(it.supplier_id)
    return {
        "store_id": store,
        "sku": sku,
        "description": it.description,
        "on_hand": level.on_hand,
        "allocated": level.allocated,
        "on_order": level.on_order,
        "in_transit": level.in_transit,
        "reorder_point": level.reorder_point,
        "order_up_to": level.order_up_to,
        "pack_size": it.pack_size,
        "sourcing": it.sourcing,
        "dc_id": it.dc_id,
        "supplier_id": it.supplier_id,
        "supplier_name": vendor["name"],
        "supplier_contact_email": vendor["contact_email"],
        "unit_cost": it.unit_cost,
        "currency": CURRENCY,
    }


def cycle_count(w: World, count_id: str, store: str) -> dict[str, Any]:
    """The submitted count (made up, stable, the first time a count id is asked for)."""
    found = w.erp.counts.get(count_id)
    if found is None:
        found = _generate_count(w, count_id, store)
        w.erp.counts[count_id] = found
    if found["store_id"] != store:
        raise NotFound(f"count {count_id!r} belongs to store {found['store_id']}, not {store}")
    return found


def _generate_count(w: World, count_id: str, store: str) -> dict[str, Any]:
    r = w.rng("count", count_id)
    skus = sorted(r.sample(sorted(ITEMS), r.randint(3, 5)))
    lines: list[dict[str, Any]] = []
    book_value = 0.0
    for position, sku in enumerate(skus):
        it, book = item(w, sku), stock(w, store, sku).on_hand
        book_value += book * it.unit_cost
        variance = r.choice((-6, -4, -3, -2, -1, 0, 0, 1, 2)) if position else r.randint(-5, -1)
        variance = max(variance, -book) if book else max(variance, 0)
        if variance:
            lines.append(
                {
                    "sku": sku,
                    "book_qty": book,
                    "counted_qty": book + variance,
                    "variance_qty": variance,
                    "unit_cost": it.unit_cost,
                    "variance_value": money(variance * it.unit_cost),
                }
            )
    if not lines:  # every sku had zero book stock: record one found unit
        first = item(w, skus[0])
        lines.append(
            {
                "sku": skus[0],
                "book_qty": 0,
                "counted_qty": 1,
                "variance_qty": 1,
                "unit_cost": first.unit_cost,
                "variance_value": first.unit_cost,
            }
        )
    worst = max(lines, key=lambda line: abs(line["variance_value"]))
    submitted = w.now() - timedelta(minutes=r.randint(20, 90))
    return {
        "count_id": count_id,
        "store_id": store,
        "region_code": region(w, store),
        "category": item(w, worst["sku"]).category,
        "status": "submitted",
        "snapshot_at": iso(submitted - timedelta(hours=r.randint(2, 5))),
        "submitted_at": iso(submitted),
        "skus": skus,
        "variance_skus": [line["sku"] for line in lines],
        "variance_lines": lines,
        "book_value": money(book_value),
        "abs_variance_value": money(sum(abs(line["variance_value"]) for line in lines)),
        "net_variance_value": money(sum(line["variance_value"] for line in lines)),
        "currency": CURRENCY,
    }


@erp.read
def get_cycle_count(w: World, b: Body) -> dict[str, Any]:
    """A submitted cycle count with book quantities, variances and their value at cost."""
    return dict(cycle_count(w, b.text("count_id"), b.text("store_id")))


@erp.read
def get_open_inventory_documents(w: World, b: Body) -> dict[str, Any]:
    """Receipts not yet booked and transfers in transit for the SKUs: what timing explains."""
    store, skus = b.text("store_id"), b.strings("skus")
    as_of = b.text("as_of", "")
    documents = [
        {
            "type": "transfer_in",
            "document_id": order["order_id"],
            "sku": order["sku"],
            "quantity": order["quantity"],
            "value": money(order["quantity"] * item(w, order["sku"]).unit_cost),
        }
        for order in w.erp.transfer_orders.values()
        if order["to_store"] == store and order["sku"] in skus and order["status"] != "cancelled"
    ]
    for sku in skus:
        r = w.rng("open-receipt", store, sku)
        if r.random() < 0.35:
            quantity = r.randint(1, 3)
            documents.append(
                {
                    "type": "receipt_unbooked",
                    "document_id": f"GR-{r.randint(400000, 499999)}",
                    "sku": sku,
                    "quantity": quantity,
                    "value": money(quantity * item(w, sku).unit_cost),
                }
            )
    return {
        "store_id": store,
        "as_of": as_of,
        "documents": documents,
        "explained_value": money(sum(d["value"] for d in documents)),
        "currency": CURRENCY,
    }


@erp.write
def place_replenishment_hold(w: World, b: Body) -> dict[str, Any]:
    """Stop automatic replenishment of SKUs at a store until the hold is released."""
    store, skus = b.text("store_id"), b.strings("skus")
    if not skus:
        raise InvalidInput("field 'skus' must list at least one SKU to hold", field="skus")
    hold_id = w.mint("HOLD")
    w.erp.holds[hold_id] = {
        "hold_id": hold_id,
        "store_id": store,
        "skus": skus,
        "status": "active",
        "reason": b.text("reason", ""),
        "reference": b.text("reference", ""),
        "placed_at": w.stamp(),
    }
    return {"hold_id": hold_id, "status": "active", "store_id": store, "skus": skus}


@erp.write
def release_replenishment_hold(w: World, b: Body) -> dict[str, Any]:
    """Release a replenishment hold (releasing a released hold changes nothing)."""
    hold = doc(w.erp.holds, b.text("hold_id"), "replenishment hold")
    store = b.text("store_id", hold["store_id"])
    if hold["store_id"] != store:
        raise NotFound(f"hold {hold['hold_id']} belongs to store {hold['store_id']}, not {store}")
    already = hold["status"] == "released"
    if not already:
        hold.update(status="released", released_at=w.stamp())
    return {"hold_id": hold["hold_id"], "status": "released", "already_released": already}


@erp.write
def post_inventory_adjustment(w: World, b: Body) -> dict[str, Any]:
    """Post a count's variances to perpetual stock with a root-cause reason code (once)."""
    store = b.text("store_id")
    count = cycle_count(w, b.text("count_id"), store)
    reason_code = b.text("reason_code")
    if count["status"] == "adjusted":
        raise Conflict(
            f"count {count['count_id']} was already adjusted by {count['adjustment_id']}",
            adjustment_id=count["adjustment_id"],
        )
    adjustment_id = w.mint("ADJ")
    for line in count["variance_lines"]:
        stock(w, store, line["sku"]).on_hand += line["variance_qty"]
    count.update(status="adjusted", adjustment_id=adjustment_id)
    w.erp.adjustments[adjustment_id] = {
        "adjustment_id": adjustment_id,
        "count_id": count["count_id"],
        "store_id": store,
        "reason_code": reason_code,
        "value": count["net_variance_value"],
        "reference": b.text("reference", ""),
        "posted_at": w.stamp(),
    }
    return {
        "adjustment_id": adjustment_id,
        "count_id": count["count_id"],
        "reason_code": reason_code,
        "lines": len(count["variance_lines"]),
        "value": count["net_variance_value"],
        "currency": CURRENCY,
    }
