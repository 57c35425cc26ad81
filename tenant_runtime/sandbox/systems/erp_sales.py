"""ERP sales and returns: original sales by receipt or order number, return orders with
their credit note and stock disposition."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import ITEMS, STORES, item, stock
from tenant_runtime.sandbox.errors import Conflict, InvalidInput, NotFound
from tenant_runtime.sandbox.registry import erp
from tenant_runtime.sandbox.systems.erp_stock import CURRENCY
from tenant_runtime.sandbox.systems.payments import transaction
from tenant_runtime.sandbox.world import World, doc, money

DISPOSITIONS = ("restock", "damaged_write_off", "return_to_vendor")


def sale(w: World, receipt_id: str, order_id: str) -> dict[str, Any]:
    """The sale of a receipt or web order (made up, stable, the first time it is asked for)."""
    for found in w.erp.sales.values():
        if (receipt_id and found["receipt_id"] == receipt_id) or (
            order_id and found["order_id"] == order_id
        ):
            return found
    r = w.rng("sale", receipt_id or order_id)
    lines: list[dict[str, Any]] = []
    for n, sku in enumerate(sorted(r.sample(sorted(ITEMS), r.randint(1, 3))), start=1):
        it = item(w, sku)
        lines.append(
            {
                "line_id": str(n),
                "sku": sku,
                "description": it.description,
                "quantity": r.randint(1, 2),
                "unit_price": it.price,
                "final_sale": r.random() < 0.05,
            }
        )
    total = money(sum(line["quantity"] * line["unit_price"] for line in lines))
    transaction_id = w.mint("TX", start=88000001)
    purchased = w.stamp(-timedelta(days=r.randint(1, 45), hours=r.randint(0, 10)))
    tender = f"PAY-{r.randint(10**9, 10**10 - 1)}"
    transaction(w, tender, amount=total, captured_at=purchased)
    found = {
        "transaction_id": transaction_id,
        "receipt_id": receipt_id,
        "order_id": order_id,
        "store_id": r.choice(STORES) if receipt_id else "",
        "channel": "store" if receipt_id else "online",
        "customer_id": "" if r.random() < 0.15 else f"CUST-{r.randint(10000, 99999)}",
        "purchased_at": purchased,
        "lines": lines,
        "final_sale_lines": [line["line_id"] for line in lines if line["final_sale"]],
        "total": total,
        "currency": CURRENCY,
        "tender_type": "card",
        "tender_reference": tender,
    }
    w.erp.sales[transaction_id] = found
    return found


@erp.read
def get_sales_transaction(w: World, b: Body) -> dict[str, Any]:
    """The original sale of a receipt or web order: lines, customer, tender, date."""
    receipt_id, order_id = b.text("receipt_id", ""), b.text("order_id", "")
    if not receipt_id and not order_id:
        raise NotFound("no receipt_id or order_id given: there is no sale to find (receiptless)")
    return dict(sale(w, receipt_id, order_id))


@erp.write
def create_return_order(w: World, b: Body) -> dict[str, Any]:
    """Book a return: credit note, and a stock receipt with its disposition."""
    return_id, store = b.text("return_id"), b.text("store_id")
    disposition = b.text("disposition")
    if disposition not in DISPOSITIONS:
        raise InvalidInput(
            f"disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}",
            field="disposition",
        )
    original = b.text("original_sale", "")
    if original:
        doc(w.erp.sales, original, "sales transaction")
    for existing in w.erp.return_orders.values():
        if existing["return_id"] == return_id and existing["status"] == "booked":
            raise Conflict(
                f"return {return_id} is already booked as {existing['return_order_id']}",
                return_order_id=existing["return_order_id"],
            )
    lines = [line for line in b.lines() if line.sku]
    if disposition == "restock":
        for line in lines:
            stock(w, store, line.sku).on_hand += line.quantity
    return_order_id = w.mint("RO")
    credit_note_id = w.mint("CN")
    amount = b.number("amount", minimum=0)
    w.erp.return_orders[return_order_id] = {
        "return_order_id": return_order_id,
        "return_id": return_id,
        "store_id": store,
        "credit_note_id": credit_note_id,
        "original_sale": original,
        "amount": amount,
        "disposition": disposition,
        "approved_by": b.text("approved_by", ""),
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in lines],
        "reference": b.text("reference", ""),
        "status": "booked",
        "created_at": w.stamp(),
    }
    return {
        "return_order_id": return_order_id,
        "credit_note_id": credit_note_id,
        "status": "booked",
        "amount": amount,
        "disposition": disposition,
        "currency": CURRENCY,
    }


@erp.write
def cancel_return_order(w: World, b: Body) -> dict[str, Any]:
    """Cancel a return order: the credit note is voided and restocked units taken back."""
    order = doc(w.erp.return_orders, b.text("return_order_id"), "return order")
    if order["status"] == "cancelled":
        return {
            "return_order_id": order["return_order_id"],
            "status": "cancelled",
            "already_cancelled": True,
        }
    if order["disposition"] == "restock":
        for line in order["lines"]:
            stock(w, order["store_id"], line["sku"]).on_hand -= line["quantity"]
    order.update(status="cancelled", cancel_reason=b.text("reason", ""), cancelled_at=w.stamp())
    return {
        "return_order_id": order["return_order_id"],
        "status": "cancelled",
        "already_cancelled": False,
    }
