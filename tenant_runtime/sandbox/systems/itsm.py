"""Service desk: store incidents, vendor work orders with their acceptance, completion and
invoice, and investigation cases (loss prevention)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import STORES, vendor
from tenant_runtime.sandbox.errors import Conflict, NotFound
from tenant_runtime.sandbox.registry import itsm
from tenant_runtime.sandbox.world import World, doc, iso, money

TRADING_CRITICAL = (
    "refrigeration",
    "doors_shutters",
    "power",
    "fire_safety",
    "pos_outage",
    "security",
)
SAFETY = ("fire_safety", "security", "power")


def incident(w: World, ticket_id: str) -> dict[str, Any]:
    """The incident ``ticket_id``; one raised elsewhere (a webhook) is made up, stable."""
    found = w.itsm.incidents.get(ticket_id)
    if found is None:
        r = w.rng("incident", ticket_id)
        category = r.choice(("refrigeration", "lighting", "hvac", "doors_shutters", "plumbing"))
        found = _incident(
            w,
            ticket_id,
            r.choice(STORES),
            category,
            f"AST-{r.randint(10000, 99999)}",
            f"{category.replace('_', ' ').title()} fault reported by the store",
            "P3",
        )
        found["opened_at"] = w.stamp(-timedelta(minutes=r.randint(5, 90)))
        w.itsm.incidents[ticket_id] = found
    return found


def _incident(
    w: World,
    ticket_id: str,
    store: str,
    category: str,
    asset_id: str,
    description: str,
    priority: str,
) -> dict[str, Any]:
    text = description.lower()
    return {
        "ticket_id": ticket_id,
        "incident_id": ticket_id,
        "store_id": store,
        "category": category,
        "asset_id": asset_id,
        "description": description,
        "priority": priority,
        "status": "new",
        "opened_at": w.stamp(),
        "safety_risk": category in SAFETY
        or any(k in text for k in ("smoke", "leak", "injur", "spark")),
        "trading_impact": category in TRADING_CRITICAL,
    }


@itsm.write
def create_incident(w: World, b: Body) -> dict[str, Any]:
    """Raise a store incident (fault, cold chain, security, POS pricing)."""
    ticket_id = w.mint("INC", start=1000001)
    found = _incident(
        w,
        ticket_id,
        b.text("store_id"),
        b.text("category"),
        b.text("asset_id", ""),
        b.text("description", b.text("summary", "")),
        b.text("priority", "P3"),
    )
    found.update(
        summary=b.text("summary", ""),
        reported_by=b.text("reported_by", ""),
        photo=b.text("photo", ""),
        readings=b.data.get("readings"),
        failed_items=b.data.get("failed_items"),
        reference=b.text("reference", ""),
    )
    w.itsm.incidents[ticket_id] = found
    return {
        "ticket_id": ticket_id,
        "incident_id": ticket_id,
        "status": "new",
        "priority": found["priority"],
        "opened_at": found["opened_at"],
    }


@itsm.read
def get_incident(w: World, b: Body) -> dict[str, Any]:
    """An incident with its store, asset, category, risk flags and status."""
    return dict(incident(w, b.text("ticket_id")))


def _accepted(w: World, work_order: dict[str, Any]) -> None:
    r = w.rng("eta", work_order["work_order_id"], work_order["vendor_id"])
    eta = iso(w.now() + timedelta(hours=r.randint(1, 6)))
    w.emit(
        "itsm",
        "itsm.work_order.accepted",
        work_order["ticket_id"],
        ticket_id=work_order["ticket_id"],
        work_order_id=work_order["work_order_id"],
        vendor_id=work_order["vendor_id"],
        eta=eta,
    )
    w.emit(
        "itsm",
        "itsm.work_order.completed",
        work_order["ticket_id"],
        ticket_id=work_order["ticket_id"],
        work_order_id=work_order["work_order_id"],
    )


@itsm.write
def dispatch_vendor(w: World, b: Body) -> dict[str, Any]:
    """Send a work order to the vendor; acceptance and completion come back as events."""
    ticket = incident(w, b.text("ticket_id"))
    vendor_id = b.text("vendor_id")
    work_order_id = w.mint("WO", start=300001)
    r = w.rng("costs", work_order_id)
    labour, parts = money(r.uniform(90, 420)), money(r.choice((0.0, r.uniform(20, 650))))
    work_order = {
        "work_order_id": work_order_id,
        "ticket_id": ticket["ticket_id"],
        "vendor_id": vendor_id,
        "priority": b.text("priority", ticket["priority"]),
        "po_number": b.text("po_number", ""),
        "not_to_exceed": b.number("not_to_exceed", default=0.0),
        "status": "dispatched",
        "invoice_id": f"INV-{r.randint(100000, 999999)}",
        "labour": labour,
        "parts": parts,
        "invoice_status": "received",
        "dispatched_at": w.stamp(),
    }
    w.itsm.work_orders[work_order_id] = work_order
    ticket.update(status="dispatched", work_order_id=work_order_id)
    _accepted(w, work_order)
    v = vendor(vendor_id)
    hours = 1 if work_order["priority"] == "P1" else 4
    return {
        "work_order_id": work_order_id,
        "status": "dispatched",
        "vendor_id": vendor_id,
        "vendor_name": v["name"],
        "vendor_escalation_email": v["escalation_email"],
        "response_due": w.stamp(timedelta(hours=hours)),
    }


def _open_work_order(w: World, work_order_id: str) -> dict[str, Any]:
    work_order = doc(w.itsm.work_orders, work_order_id, "work order")
    if work_order["status"] == "closed":
        raise Conflict(f"work order {work_order_id} is closed")
    return work_order


@itsm.write
def reassign_work_order(w: World, b: Body) -> dict[str, Any]:
    """Hand a work order to another vendor (response SLA missed)."""
    work_order = _open_work_order(w, b.text("work_order_id"))
    vendor_id = b.text("vendor_id")
    previous = work_order["vendor_id"]
    work_order.update(
        vendor_id=vendor_id,
        status="dispatched",
        reassigned_from=previous,
        reassign_reason=b.text("reason", ""),
    )
    _accepted(w, work_order)
    return {
        "work_order_id": work_order["work_order_id"],
        "vendor_id": vendor_id,
        "previous_vendor_id": previous,
        "status": "dispatched",
        "vendor_escalation_email": vendor(vendor_id)["escalation_email"],
    }


@itsm.write
def reopen_work_order(w: World, b: Body) -> dict[str, Any]:
    """Send the vendor back: the store did not accept the repair."""
    work_order = _open_work_order(w, b.text("work_order_id"))
    work_order.update(
        status="reopened",
        reopen_reason=b.text("reason", ""),
        failed_items=b.data.get("failed_items"),
    )
    w.emit(
        "itsm",
        "itsm.work_order.completed",
        work_order["ticket_id"],
        ticket_id=work_order["ticket_id"],
        work_order_id=work_order["work_order_id"],
    )
    return {"work_order_id": work_order["work_order_id"], "status": "reopened"}


@itsm.read
def get_work_order_costs(w: World, b: Body) -> dict[str, Any]:
    """The vendor's invoice for a work order: labour, parts, total."""
    work_order = doc(w.itsm.work_orders, b.text("work_order_id"), "work order")
    return {
        "work_order_id": work_order["work_order_id"],
        "invoice_id": work_order["invoice_id"],
        "invoice_status": work_order["invoice_status"],
        "labour": work_order["labour"],
        "parts": work_order["parts"],
        "total": money(work_order["labour"] + work_order["parts"]),
        "currency": "EUR",
    }


@itsm.write
def dispute_invoice(w: World, b: Body) -> dict[str, Any]:
    """Dispute a vendor invoice of a work order."""
    work_order = doc(w.itsm.work_orders, b.text("work_order_id"), "work order")
    invoice_id = b.text("invoice_id")
    if invoice_id != work_order["invoice_id"]:
        raise NotFound(
            f"invoice {invoice_id} is not on work order {work_order['work_order_id']} "
            f"(its invoice is {work_order['invoice_id']})"
        )
    work_order.update(invoice_status="disputed", dispute_reason=b.text("reason", ""))
    return {
        "work_order_id": work_order["work_order_id"],
        "invoice_id": invoice_id,
        "invoice_status": "disputed",
    }


@itsm.write
def resolve_incident(w: World, b: Body) -> dict[str, Any]:
    """Resolve an incident with its resolution and cost; its work order is closed."""
    ticket = incident(w, b.text("ticket_id"))
    if ticket["status"] != "resolved":
        ticket.update(
            status="resolved",
            resolution=b.text("resolution", ""),
            cost=b.number("cost", default=0.0),
            resolved_at=w.stamp(),
        )
        work_order = w.itsm.work_orders.get(ticket.get("work_order_id") or "")
        if work_order:
            work_order["status"] = "closed"
    return {
        "ticket_id": ticket["ticket_id"],
        "status": "resolved",
        "resolved_at": ticket["resolved_at"],
    }


@itsm.write
def create_case(w: World, b: Body) -> dict[str, Any]:
    """Open an investigation case in a queue (e.g. loss prevention)."""
    case_id = w.mint("CASE")
    w.itsm.cases[case_id] = {
        "case_id": case_id,
        "queue": b.text("queue"),
        "store_id": b.text("store_id"),
        "region": b.text("region", ""),
        "title": b.text("title"),
        "count_id": b.text("count_id", ""),
        "category": b.text("category", ""),
        "variance_lines": b.data.get("variance_lines"),
        "reference": b.text("reference", ""),
        "status": "open",
        "opened_at": w.stamp(),
    }
    return {"case_id": case_id, "queue": b.text("queue"), "status": "open"}
