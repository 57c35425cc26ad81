"""Warehouse management: DC availability, warehouse review of ERP transfer orders, and
DC-to-store replenishment orders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import dc_available, is_dc, item
from tenant_runtime.sandbox.errors import Conflict, InvalidInput
from tenant_runtime.sandbox.registry import wms
from tenant_runtime.sandbox.world import World, doc


@wms.read
def get_dc_availability(w: World, b: Body) -> dict[str, Any]:
    """Free units of a SKU at a distribution centre and its next inbound receipt."""
    dc, sku = b.text("dc_id"), b.text("sku")
    if not is_dc(dc):
        raise InvalidInput(
            f"dc_id {dc!r} is not a distribution centre (ids look like DC-NORTH)", field="dc_id"
        )
    item(w, sku)
    r = w.rng("dc-inbound", dc, sku)
    return {
        "dc_id": dc,
        "sku": sku,
        "available_units": dc_available(w, dc, sku),
        "next_receipt_date": (w.now() + timedelta(days=r.randint(2, 9))).date().isoformat(),
    }


@wms.write
def review_transfer(w: World, b: Body) -> dict[str, Any]:
    """Warehouse review of a transfer order: released to a pick wave, then shipped."""
    order = doc(w.erp.transfer_orders, b.text("order_id"), "transfer order")
    if order["status"] == "cancelled":
        raise Conflict(f"transfer order {order['order_id']} is cancelled")
    review = w.wms.transfer_reviews.get(order["order_id"])
    if review is None:
        eta = (w.now() + timedelta(days=1)).replace(hour=10, minute=0)
        review = {
            "order_id": order["order_id"],
            "status": "released",
            "pick_wave": w.mint("WAVE"),
            "eta": eta.isoformat().replace("+00:00", "Z"),
            "reviewed_at": w.stamp(),
        }
        w.wms.transfer_reviews[order["order_id"]] = review
        order["status"] = "released"
        w.emit(
            "wms",
            "wms.transfer.shipped",
            order["order_id"],
            order_id=order["order_id"],
            eta=review["eta"],
        )
    return dict(review)


@wms.write
def create_store_order(w: World, b: Body) -> dict[str, Any]:
    """Replenish a store from a DC: the units are allocated at the DC at once."""
    dc, store, sku = b.text("dc_id"), b.text("store_id"), b.text("sku")
    quantity = b.integer("quantity", minimum=1)
    available = dc_available(w, dc, sku)
    if available < quantity:
        raise Conflict(
            f"only {available} unit(s) of {sku} free at {dc}; {quantity} requested",
            available_units=available,
        )
    w.wms.dc_stock[dc][sku] = available - quantity
    order_id = w.mint("SO")
    delivery = (w.now() + timedelta(days=1 if w.now().hour < 14 else 2)).date().isoformat()
    w.wms.store_orders[order_id] = {
        "order_id": order_id,
        "dc_id": dc,
        "store_id": store,
        "sku": sku,
        "quantity": quantity,
        "delivery_date": delivery,
        "reference": b.text("reference", ""),
        "status": "allocated",
    }
    return {
        "order_id": order_id,
        "status": "allocated",
        "dc_id": dc,
        "store_id": store,
        "sku": sku,
        "quantity": quantity,
        "delivery_date": delivery,
    }
