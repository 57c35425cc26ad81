"""ERP purchasing: purchase requests and orders (emergency and replenishment) with their
transmission to suppliers, store purchasing budgets and weekly labour budgets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body, Line
from tenant_runtime.sandbox.data import item, stock, supplier
from tenant_runtime.sandbox.errors import Conflict, InvalidInput
from tenant_runtime.sandbox.registry import erp
from tenant_runtime.sandbox.systems.erp_stock import CURRENCY
from tenant_runtime.sandbox.world import World, doc, monday, money


def purchase_budget(w: World, store: str) -> float:
    if store not in w.erp.purchase_budget:
        w.erp.purchase_budget[store] = float(
            w.rng("purchase-budget", store).choice((2500, 4000, 6000))
        )
    return w.erp.purchase_budget[store]


def _priced(w: World, lines: list[Line]) -> list[dict[str, Any]]:
    priced = []
    for line in lines:
        if line.unit_price is not None:
            price = line.unit_price
        elif line.sku:
            price = item(w, line.sku).unit_cost
        else:
            raise InvalidInput(
                f"line {line.description!r} is a non-stock line: give its unit_price"
            )
        priced.append(
            {
                "sku": line.sku,
                "description": line.description
                or (item(w, line.sku).description if line.sku else ""),
                "quantity": line.quantity,
                "unit_price": price,
                "value": money(price * line.quantity),
            }
        )
    return priced


@erp.read
def validate_purchase_request(w: World, b: Body) -> dict[str, Any]:
    """Supplier status, priced lines and the store's remaining purchasing budget."""
    store, supplier_id = b.text("store_id"), b.text("supplier_id")
    lines = _priced(w, b.lines())
    vendor_data = supplier(supplier_id)
    total = money(sum(line["value"] for line in lines))
    budget = purchase_budget(w, store)
    warnings = [] if total <= budget else [f"total {total} exceeds the remaining budget {budget}"]
    if not vendor_data["approved"]:
        warnings.append(f"supplier {supplier_id} is not on the approved vendor list")
    return {
        "valid": True,
        "warnings": warnings,
        "store_id": store,
        "category": b.text("category", ""),
        "supplier_id": supplier_id,
        "supplier_name": vendor_data["name"],
        "supplier_approved": vendor_data["approved"],
        "lines": lines,
        "total_value": total,
        "budget_remaining": money(budget),
        "currency": CURRENCY,
    }


@erp.write
def create_purchase_order(w: World, b: Body) -> dict[str, Any]:
    """Raise a PO from ``lines`` (emergency buys) or one ``sku`` and ``quantity``."""
    supplier_id, ship_to = b.text("supplier_id"), b.text("ship_to")
    lines = b.lines() if b.has("lines") else [Line(b.text("sku"), b.integer("quantity", minimum=1))]
    priced = _priced(w, lines)
    value = money(sum(line["value"] for line in priced))
    not_to_exceed = b.number("not_to_exceed", default=0.0, minimum=0)
    if not_to_exceed and value > not_to_exceed + 0.005:
        raise InvalidInput(
            f"the lines total {value}, more than not_to_exceed {not_to_exceed}: "
            "lower the quantities or raise the limit",
            field="not_to_exceed",
        )
    priority = b.text("priority", "normal")
    po_number = w.mint("PO", start=4500001)
    for line in priced:
        if line["sku"]:
            stock(w, ship_to, line["sku"]).on_order += line["quantity"]
    if priority == "emergency":
        w.erp.purchase_budget[ship_to] = purchase_budget(w, ship_to) - value
    quantity = sum(line["quantity"] for line in priced)
    w.erp.purchase_orders[po_number] = {
        "po_number": po_number,
        "supplier_id": supplier_id,
        "ship_to": ship_to,
        "priority": priority,
        "lines": priced,
        "quantity": quantity,
        "value": value,
        "not_to_exceed": not_to_exceed,
        "reason": b.text("reason", ""),
        "reference": b.text("reference", ""),
        "status": "created",
        "created_at": w.stamp(),
    }
    return {
        "po_number": po_number,
        "status": "created",
        "supplier_id": supplier_id,
        "ship_to": ship_to,
        "quantity": quantity,
        "value": value,
        "currency": CURRENCY,
    }


@erp.write
def cancel_purchase_order(w: World, b: Body) -> dict[str, Any]:
    """Cancel a PO that has not been received; the supplier is told if it was sent."""
    po = doc(w.erp.purchase_orders, b.text("po_number"), "purchase order")
    if po["status"] == "cancelled":
        return {"po_number": po["po_number"], "status": "cancelled", "already_cancelled": True}
    if po["status"] == "received":
        raise Conflict(
            f"purchase order {po['po_number']} has been received; return the goods instead"
        )
    for line in po["lines"]:
        if line["sku"]:
            stock(w, po["ship_to"], line["sku"]).on_order -= line["quantity"]
    if po["priority"] == "emergency":
        w.erp.purchase_budget[po["ship_to"]] = purchase_budget(w, po["ship_to"]) + po["value"]
    notified = po["status"] == "transmitted"
    po.update(status="cancelled", cancel_reason=b.text("reason", ""), cancelled_at=w.stamp())
    return {
        "po_number": po["po_number"],
        "status": "cancelled",
        "already_cancelled": False,
        "supplier_notified": notified,
    }


@erp.write
def transmit_purchase_order(w: World, b: Body) -> dict[str, Any]:
    """Send the PO to the supplier (EDI 850 for approved suppliers, email otherwise)."""
    po = doc(w.erp.purchase_orders, b.text("po_number"), "purchase order")
    if po["status"] == "cancelled":
        raise Conflict(f"purchase order {po['po_number']} is cancelled and cannot be sent")
    channel = "edi_850" if supplier(po["supplier_id"])["approved"] else "email"
    if po["status"] != "transmitted":
        po.update(status="transmitted", channel=channel, transmitted_at=w.stamp())
        r = w.rng("confirmation", po["po_number"])
        confirmed = po["quantity"] if r.random() < 0.8 else max(po["quantity"] - r.randint(1, 3), 0)
        delivery = (w.now() + timedelta(days=1 if po["priority"] == "emergency" else 3)).date()
        w.emit(
            "erp",
            "erp.purchase_order.confirmed",
            po["po_number"],
            po_number=po["po_number"],
            confirmed_quantity=confirmed,
            delivery_date=delivery.isoformat(),
        )
        if po["priority"] == "emergency":
            w.emit(
                "erp",
                "erp.goods_receipt.posted",
                po["po_number"],
                po_number=po["po_number"],
                receipt_id=f"GR-{po['po_number'][3:]}",
            )
    return {
        "po_number": po["po_number"],
        "status": "transmitted",
        "channel": channel,
        "transmitted_at": po["transmitted_at"],
    }


@erp.read
def get_labour_budget(w: World, b: Body) -> dict[str, Any]:
    """Budgeted and scheduled labour hours of a store for the week of ``week_of``."""
    store = b.text("store_id")
    week = monday(b.text("week_of", ""), w.now())
    entry = labour_entry(w, store, week)
    return {
        "store_id": store,
        "week_of": week,
        "budget_hours": entry["budget_hours"],
        "scheduled_hours": entry["scheduled_hours"],
        "headroom_hours": round(entry["budget_hours"] - entry["scheduled_hours"], 2),
        "hourly_cost": 17.5,
        "currency": CURRENCY,
    }


def labour_entry(w: World, store: str, week: str) -> dict[str, float]:
    key = f"{store}/{week}"
    if key not in w.erp.labour:
        r = w.rng("labour", key)
        budget = float(r.choice((420, 560, 640, 780)))
        w.erp.labour[key] = {"budget_hours": budget, "scheduled_hours": budget - r.randint(-6, 36)}
    return w.erp.labour[key]
