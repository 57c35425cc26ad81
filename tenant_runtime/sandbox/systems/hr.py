"""Workforce management / HR: shifts and their cover, colleagues' hours and contracts,
working-time rules, overtime with pay codes, agency requests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import AGENCIES, ROLES, STORES, person
from tenant_runtime.sandbox.errors import Conflict, InvalidInput
from tenant_runtime.sandbox.registry import hr
from tenant_runtime.sandbox.world import World, iso, monday

OVERTIME_PAY_CODE = "OT150"


def shift(w: World, shift_id: str) -> dict[str, Any]:
    found = w.hr.shifts.get(shift_id)
    if found is None:
        r = w.rng("shift", shift_id)
        start = (w.now() + timedelta(hours=r.randint(3, 30))).replace(minute=0, second=0)
        hours = r.choice((4, 6, 8, 8))
        found = {
            "shift_id": shift_id,
            "store_id": r.choice(STORES),
            "role": r.choice(ROLES),
            "start": iso(start),
            "end": iso(start + timedelta(hours=hours)),
            "hours": hours,
            "status": "open",
            "assigned_employee_id": None,
        }
        w.hr.shifts[shift_id] = found
    return found


def employee(
    w: World, employee_id: str, store: str | None = None, role: str | None = None
) -> dict[str, Any]:
    found = w.hr.employees.get(employee_id)
    if found is None:
        r = w.rng("employee", employee_id)
        first, last = person(w, "employee", employee_id)
        contract = float(r.choice((16, 24, 32, 40, 40)))
        found = {
            "employee_id": employee_id,
            "name": f"{first} {last}",
            "store_id": store or r.choice(STORES),
            "role": role or r.choice(ROLES),
            "contract_hours": contract,
            "is_minor": r.random() < 0.06,
            "worked_hours": float(r.randint(0, int(contract * 0.7))),
            "scheduled_hours": float(r.randint(int(contract * 0.2), int(contract * 0.6))),
            "approved_overtime_hours": 0.0,
        }
        w.hr.employees[employee_id] = found
    return found


def _week_hours(e: dict[str, Any]) -> float:
    return float(e["worked_hours"] + e["scheduled_hours"])


@hr.read
def get_shift(w: World, b: Body) -> dict[str, Any]:
    """A rostered shift: store, role, start and end, hours, who (if anyone) works it."""
    return dict(shift(w, b.text("shift_id")))


@hr.read
def find_cover_candidates(w: World, b: Body) -> dict[str, Any]:
    """Qualified colleagues with hours headroom, own store first, then nearby stores."""
    s = shift(w, b.text("shift_id"))
    role = b.text("role", s["role"])
    nearby = b.flag("include_nearby_stores", default=True)
    r = w.rng("candidates", s["shift_id"])
    candidates, seen = [], set()
    for n in range(0 if r.random() < 0.08 else r.randint(2, 6)):
        own = n < 2 or not nearby
        e = employee(
            w,
            f"E-{r.randint(1000, 9999)}",
            store=s["store_id"] if own else r.choice(STORES),
            role=role,
        )
        if e["employee_id"] in seen or e["employee_id"] == s["assigned_employee_id"]:
            continue
        if e["role"] != role:
            continue
        seen.add(e["employee_id"])
        candidates.append(
            {
                "employee_id": e["employee_id"],
                "name": e["name"],
                "store_id": e["store_id"],
                "own_store": e["store_id"] == s["store_id"],
                "role": role,
                "weekly_hours": _week_hours(e),
                "headroom_hours": max(e["contract_hours"] - _week_hours(e), 0.0),
            }
        )
    candidates.sort(key=lambda c: (not c["own_store"], -c["headroom_hours"]))
    return {"shift_id": s["shift_id"], "role": role, "candidates": candidates}


@hr.write
def offer_shift(w: World, b: Body) -> dict[str, Any]:
    """Offer an open shift in the colleague app; the first acceptance comes back as an event."""
    s = shift(w, b.text("shift_id"))
    limit = b.integer("limit", default=5, minimum=1)
    offered = b.strings("employee_ids")[:limit]
    if not offered:
        raise InvalidInput("employee_ids must name at least one colleague", field="employee_ids")
    if s["status"] != "open":
        raise Conflict(f"shift {s['shift_id']} is {s['status']}, not open")
    offer_id = w.mint("OFR")
    expires = w.stamp(timedelta(hours=2))
    w.hr.offers[offer_id] = {
        "offer_id": offer_id,
        "shift_id": s["shift_id"],
        "offered_to": offered,
        "expires_at": expires,
    }
    taker = employee(w, offered[0], store=s["store_id"], role=s["role"])
    w.emit(
        "hr",
        "hr.shift.offer_accepted",
        s["shift_id"],
        shift_id=s["shift_id"],
        employee_id=taker["employee_id"],
        employee_name=taker["name"],
    )
    return {
        "offer_id": offer_id,
        "shift_id": s["shift_id"],
        "offered_to": offered,
        "expires_at": expires,
    }


@hr.write
def assign_shift(w: World, b: Body) -> dict[str, Any]:
    """Put a colleague on a shift; their scheduled hours grow by the shift's hours."""
    s = shift(w, b.text("shift_id"))
    e = employee(w, b.text("employee_id"), store=s["store_id"], role=s["role"])
    if s["assigned_employee_id"] == e["employee_id"]:
        return {
            "shift_id": s["shift_id"],
            "employee_id": e["employee_id"],
            "status": "assigned",
            "already_assigned": True,
        }
    if s["assigned_employee_id"]:
        raise Conflict(f"shift {s['shift_id']} is already assigned to {s['assigned_employee_id']}")
    e["scheduled_hours"] += s["hours"]
    s.update(status="assigned", assigned_employee_id=e["employee_id"])
    return {
        "shift_id": s["shift_id"],
        "employee_id": e["employee_id"],
        "status": "assigned",
        "already_assigned": False,
    }


@hr.write
def unassign_shift(w: World, b: Body) -> dict[str, Any]:
    """Take a colleague off a shift, which is open again."""
    s = shift(w, b.text("shift_id"))
    employee_id = b.text("employee_id")
    if s["assigned_employee_id"] != employee_id:
        return {
            "shift_id": s["shift_id"],
            "employee_id": employee_id,
            "status": s["status"],
            "already_unassigned": True,
        }
    employee(w, employee_id)["scheduled_hours"] -= s["hours"]
    s.update(status="open", assigned_employee_id=None, unassign_reason=b.text("reason", ""))
    return {
        "shift_id": s["shift_id"],
        "employee_id": employee_id,
        "status": "open",
        "already_unassigned": False,
    }


@hr.read
def check_working_time(w: World, b: Body) -> dict[str, Any]:
    """Weekly maximum, minors' limits and overtime for a colleague working a shift."""
    s = shift(w, b.text("shift_id"))
    e = employee(w, b.text("employee_id"))
    maximum = b.number("max_weekly_hours", default=48.0, minimum=1)
    week = _week_hours(e) + (0 if s["assigned_employee_id"] == e["employee_id"] else s["hours"])
    violations = []
    if week > maximum:
        violations.append(f"{week:g} h this week exceeds the maximum of {maximum:g} h")
    end = datetime.fromisoformat(s["end"].replace("Z", "+00:00"))
    if e["is_minor"] and (s["hours"] > 8 or end.hour >= 22 or end.hour < 6):
        violations.append("young worker: no shifts over 8 h or ending after 22:00")
    return {
        "employee_id": e["employee_id"],
        "shift_id": s["shift_id"],
        "weekly_hours": week,
        "contract_hours": e["contract_hours"],
        "overtime_hours": max(week - e["contract_hours"], 0.0),
        "violations": violations,
        "rest_period_ok": not violations,
    }


@hr.read
def get_employee_hours(w: World, b: Body) -> dict[str, Any]:
    """Hours worked and scheduled this week, contract hours, minor status."""
    e = employee(w, b.text("employee_id"))
    return {
        "employee_id": e["employee_id"],
        "week_of": monday(b.text("week_of", ""), w.now()),
        "store_id": e["store_id"],
        "contract_hours": e["contract_hours"],
        "worked_hours": e["worked_hours"],
        "scheduled_hours": e["scheduled_hours"],
        "approved_overtime_hours": e["approved_overtime_hours"],
        "is_minor": e["is_minor"],
    }


@hr.write
def approve_overtime(w: World, b: Body) -> dict[str, Any]:
    """Record approved overtime with its pay code (never for young workers)."""
    e = employee(w, b.text("employee_id"))
    hours = b.number("hours", minimum=0)
    if e["is_minor"]:
        raise Conflict(f"{e['employee_id']} is a young worker: overtime is not permitted")
    approval_id = w.mint("OT")
    e["approved_overtime_hours"] += hours
    w.hr.overtime[approval_id] = {
        "approval_id": approval_id,
        "employee_id": e["employee_id"],
        "hours": hours,
        "status": "approved",
        "pay_code": OVERTIME_PAY_CODE,
        "shift_id": b.text("shift_id", ""),
        "reference": b.text("reference", ""),
        "at": w.stamp(),
    }
    return {
        "approval_id": approval_id,
        "employee_id": e["employee_id"],
        "hours": hours,
        "status": "approved",
        "pay_code": OVERTIME_PAY_CODE,
    }


@hr.write
def reject_overtime(w: World, b: Body) -> dict[str, Any]:
    """Record a refused overtime request with the reason."""
    e = employee(w, b.text("employee_id"))
    record_id = w.mint("OT")
    w.hr.overtime[record_id] = {
        "approval_id": record_id,
        "employee_id": e["employee_id"],
        "hours": b.number("hours", default=0.0),
        "status": "rejected",
        "reason": b.text("reason"),
        "reference": b.text("reference", ""),
        "at": w.stamp(),
    }
    return {"approval_id": record_id, "employee_id": e["employee_id"], "status": "rejected"}


@hr.write
def request_agency_worker(w: World, b: Body) -> dict[str, Any]:
    """Book agency cover for a shift nobody took."""
    s = shift(w, b.text("shift_id"))
    r = w.rng("agency", s["shift_id"])
    request_id = w.mint("AGY")
    agency = r.choice(AGENCIES)
    rate = round(r.uniform(21.0, 27.0), 2)
    w.hr.agency_requests[request_id] = {
        "request_id": request_id,
        "shift_id": s["shift_id"],
        "agency_name": agency,
        "role": b.text("role", s["role"]),
        "approved_by": b.text("approved_by", ""),
        "hourly_rate": rate,
        "status": "requested",
    }
    s["status"] = "agency_requested"
    return {
        "request_id": request_id,
        "shift_id": s["shift_id"],
        "agency_name": agency,
        "hourly_rate": rate,
        "status": "requested",
    }
