"""ERP facilities: the asset register, not-to-exceed service POs, maintenance cost and
waste postings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import vendor
from tenant_runtime.sandbox.errors import Conflict, NotFound
from tenant_runtime.sandbox.registry import erp
from tenant_runtime.sandbox.systems.erp_stock import CURRENCY
from tenant_runtime.sandbox.world import World, doc

_ASSET_KINDS = (
    ("refrigeration", "Multideck chiller", "FAC-COOL"),
    ("refrigeration", "Walk-in freezer", "FAC-COOL"),
    ("doors_shutters", "Automatic entrance door", "FAC-DOORS"),
    ("hvac", "Rooftop air handling unit", "FAC-GENERAL"),
    ("lighting", "Sales floor LED lighting circuit", "FAC-GENERAL"),
    ("pos_outage", "Self-checkout lane", "FAC-POS"),
    ("bakery", "Bake-off oven", "FAC-GENERAL"),
)


@erp.read
def get_asset(w: World, b: Body) -> dict[str, Any]:
    """The asset register entry: warranty, service contract, vendor and cost centre."""
    asset_id, store = b.text("asset_id", ""), b.text("store_id")
    if not asset_id:
        raise NotFound(
            "no asset_id given: the asset is not in the register (tags look like AST-12345)"
        )
    asset = w.erp.assets.get(asset_id)
    if asset is None:
        r = w.rng("asset", asset_id)
        category, description, vendor_id = r.choice(_ASSET_KINDS)
        warranty_until = (w.now() + timedelta(days=r.randint(-700, 400))).date()
        asset = {
            "asset_id": asset_id,
            "store_id": store,
            "category": category,
            "description": description,
            "manufacturer": r.choice(("Carrier", "Hussmann", "Epta", "Dormakaba", "NCR")),
            "installed_on": (w.now() - timedelta(days=r.randint(400, 3000))).date().isoformat(),
            "warranty_until": warranty_until.isoformat(),
            "under_warranty": warranty_until > w.now().date(),
            "under_contract": r.random() < 0.4,
            "service_vendor_id": vendor_id,
            "cost_center": f"CC-{store}-FAC",
        }
        w.erp.assets[asset_id] = asset
    if asset["store_id"] != store:
        raise NotFound(f"asset {asset_id} is registered at store {asset['store_id']}, not {store}")
    return {**asset, "service_vendor_name": vendor(asset["service_vendor_id"])["name"]}


@erp.write
def create_service_po(w: World, b: Body) -> dict[str, Any]:
    """A not-to-exceed service PO for out-of-contract facilities work."""
    not_to_exceed = b.number("not_to_exceed", minimum=0)
    po_number = w.mint("SPO", start=7700001)
    w.erp.service_pos[po_number] = {
        "po_number": po_number,
        "vendor_id": b.text("vendor_id"),
        "store_id": b.text("store_id"),
        "cost_center": b.text("cost_center"),
        "ticket_id": b.text("ticket_id", ""),
        "not_to_exceed": not_to_exceed,
        "reference": b.text("reference", ""),
        "status": "open",
        "created_at": w.stamp(),
    }
    return {
        "po_number": po_number,
        "status": "open",
        "not_to_exceed": not_to_exceed,
        "currency": CURRENCY,
    }


@erp.write
def cancel_service_po(w: World, b: Body) -> dict[str, Any]:
    """Cancel a service PO no cost has been posted against."""
    po = doc(w.erp.service_pos, b.text("po_number"), "service PO")
    if po["status"] == "cancelled":
        return {"po_number": po["po_number"], "status": "cancelled", "already_cancelled": True}
    if po["status"] == "invoiced":
        raise Conflict(f"service PO {po['po_number']} has costs posted against it")
    po.update(status="cancelled", cancel_reason=b.text("reason", ""), cancelled_at=w.stamp())
    return {"po_number": po["po_number"], "status": "cancelled", "already_cancelled": False}


@erp.write
def post_maintenance_cost(w: World, b: Body) -> dict[str, Any]:
    """Post a repair invoice to a cost centre; an invoice is posted once only."""
    invoice_id, amount = b.text("invoice_id"), b.number("amount", minimum=0)
    for posting in w.erp.cost_postings.values():
        if posting["invoice_id"] == invoice_id:
            raise Conflict(
                f"invoice {invoice_id} is already posted as {posting['posting_id']}",
                posting_id=posting["posting_id"],
            )
    po_number = b.text("po_number", "")
    if po_number:
        doc(w.erp.service_pos, po_number, "service PO")["status"] = "invoiced"
    posting_id = w.mint("FI", start=9000001)
    w.erp.cost_postings[posting_id] = {
        "posting_id": posting_id,
        "invoice_id": invoice_id,
        "amount": amount,
        "cost_center": b.text("cost_center"),
        "asset_id": b.text("asset_id", ""),
        "po_number": po_number,
        "labour": b.number("labour", default=0.0),
        "parts": b.number("parts", default=0.0),
        "reference": b.text("reference", ""),
        "posted_at": w.stamp(),
    }
    return {
        "posting_id": posting_id,
        "invoice_id": invoice_id,
        "amount": amount,
        "cost_center": b.text("cost_center"),
        "currency": CURRENCY,
    }


@erp.write
def post_waste_adjustment(w: World, b: Body) -> dict[str, Any]:
    """Write off discarded product at a store with a reason code."""
    value = b.number("value", minimum=0)
    adjustment_id = w.mint("ADJ")
    w.erp.adjustments[adjustment_id] = {
        "adjustment_id": adjustment_id,
        "store_id": b.text("store_id"),
        "reason_code": b.text("reason_code"),
        "value": value,
        "incident_id": b.text("incident_id", ""),
        "reference": b.text("reference", ""),
        "posted_at": w.stamp(),
    }
    return {
        "adjustment_id": adjustment_id,
        "value": value,
        "reason_code": b.text("reason_code"),
        "currency": CURRENCY,
    }
