"""What each report figure counts, once in SQL (PostgreSQL aggregates the events where
they are) and once in Python (the embedded SQLite store, and tests), from the same rules.

Every figure comes from ``task.*`` and ``run.finished`` events: tasks carry ``task_kind``,
``category``, ``via``, ``within_sla`` and a checklist's item counts in ``data``; runs carry
the figures their template declares (``metrics:``) in ``data.metrics``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from control_plane.reports.schemas import (
    ApprovalTurnaround,
    Checklists,
    Durations,
    Figures,
    Incidents,
    PromotionDeployment,
    Ratio,
    ReturnApprovals,
    SlaFigures,
    StockAdjustment,
)

#: The event kinds a report reads.
KINDS = ("task.opened", "task.decided", "task.breached", "task.escalated", "run.finished")
#: The percentiles of every duration figure.
QUANTILES = (0.5, 0.95)

# --- the rules, in SQL (PostgreSQL, jsonb) -----------------------------------------------

# Each event's fields are read out of ``data`` once, into the columns below (only for the
# kinds that carry them), and the aggregates filter on those: evaluating the JSON
# operators once per row rather than once per aggregate makes the query ~2x faster.


def _json_number(expr: str) -> str:
    """A JSON number as numeric; anything else (a template's odd figure) as null."""
    return f"CASE WHEN jsonb_typeof({expr}) = 'number' THEN ({expr})::text::numeric END"


def _when(kind: str, expr: str) -> str:
    return f"CASE WHEN kind = '{kind}' THEN {expr} END"


_M = "data->'metrics'"
_TRUE = "'true'::jsonb"
#: Column of the inner select -> how it is read from an event.
SQL_FIELDS: dict[str, str] = {
    "within_sla": _when("task.decided", "data->'within_sla'"),
    "task_kind": _when("task.decided", "data->>'task_kind'"),
    "via": _when("task.decided", "data->>'via'"),
    "category": _when("task.decided", "data->>'category'"),
    "items_total": _when("task.decided", _json_number("data->'items_total'")),
    "items_completed": _when("task.decided", _json_number("data->'items_completed'")),
    "incident": _when("run.finished", f"{_M}->'incident_resolved' = {_TRUE}"),
    "incident_ok": _when("run.finished", f"{_M}->'resolved_within_sla' = {_TRUE}"),
    "targeted": _when("run.finished", _json_number(f"{_M}->'stores_targeted'")),
    "synced": _when("run.finished", _json_number(f"{_M}->'stores_synced_before_launch'")),
    "launched": _when("run.finished", f"{_M}->'promotion_launched' = {_TRUE}"),
    "stock": _when("run.finished", f"{_M}->'stock_case_closed' = {_TRUE}"),
    "adjusted": _when("run.finished", f"{_M}->'stock_adjusted' = {_TRUE}"),
    "adjusted_value": _when("run.finished", _json_number(f"{_M}->'adjusted_value'")),
}

_DECIDED = "kind = 'task.decided'"
_APPROVAL = "task_kind = 'approval'"
_HUMAN = f"{_APPROVAL} AND via = 'human'"
_RETURN = f"{_HUMAN} AND category = 'returns'"
_CHECKLIST = "task_kind = 'checklist'"
_PROMOTION = "targeted IS NOT NULL"
_DURATIONS = "array_agg(duration_ms)"

#: Column -> aggregate: counts and sums, and (``*_pct``) the durations behind a percentile,
#: which are taken in Python (:func:`percentiles`) once a group's partials are merged.
SQL_COLUMNS: dict[str, str] = {
    "tasks_opened": "count(*) FILTER (WHERE kind = 'task.opened')",
    "tasks_decided": f"count(*) FILTER (WHERE {_DECIDED})",
    "sla_tasks": "count(within_sla)",
    "sla_met": f"count(*) FILTER (WHERE within_sla = {_TRUE})",
    "breaches": "count(*) FILTER (WHERE kind = 'task.breached')",
    "escalations": "count(*) FILTER (WHERE kind = 'task.escalated')",
    "approvals": f"count(duration_ms) FILTER (WHERE {_HUMAN})",
    "approval_pct": f"{_DURATIONS} FILTER (WHERE {_HUMAN} AND duration_ms IS NOT NULL)",
    "approved": f"count(*) FILTER (WHERE {_HUMAN} AND status = 'approved')",
    "rejected": f"count(*) FILTER (WHERE {_HUMAN} AND status = 'rejected')",
    "auto_decided": f"count(*) FILTER (WHERE {_APPROVAL} AND via = 'auto')",
    "approvals_expired": f"count(*) FILTER (WHERE {_APPROVAL} AND status = 'expired')",
    "returns": f"count(duration_ms) FILTER (WHERE {_RETURN})",
    "return_pct": f"{_DURATIONS} FILTER (WHERE {_RETURN} AND duration_ms IS NOT NULL)",
    "returns_approved": f"count(*) FILTER (WHERE {_RETURN} AND status = 'approved')",
    "returns_rejected": f"count(*) FILTER (WHERE {_RETURN} AND status = 'rejected')",
    "checklists": f"count(*) FILTER (WHERE {_CHECKLIST})",
    "checklists_completed": f"count(*) FILTER (WHERE {_CHECKLIST} AND status = 'completed')",
    "checklists_exception": f"count(*) FILTER (WHERE {_CHECKLIST} AND status = 'exception')",
    "checklists_expired": f"count(*) FILTER (WHERE {_CHECKLIST} AND status = 'expired')",
    "items_total": f"coalesce(sum(items_total) FILTER (WHERE {_CHECKLIST}), 0)",
    "items_completed": f"coalesce(sum(items_completed) FILTER (WHERE {_CHECKLIST}), 0)",
    "incidents": "count(*) FILTER (WHERE incident)",
    "incidents_within_sla": "count(*) FILTER (WHERE incident AND incident_ok)",
    "incident_count": "count(duration_ms) FILTER (WHERE incident)",
    "incident_pct": f"{_DURATIONS} FILTER (WHERE incident AND duration_ms IS NOT NULL)",
    "promotions": f"count(*) FILTER (WHERE {_PROMOTION})",
    "promotions_launched": f"count(*) FILTER (WHERE {_PROMOTION} AND launched)",
    "stores_targeted": f"coalesce(sum(targeted) FILTER (WHERE {_PROMOTION}), 0)",
    "stores_synced": f"coalesce(sum(synced) FILTER (WHERE {_PROMOTION}), 0)",
    "stock_cases": "count(duration_ms) FILTER (WHERE stock)",
    "stock_pct": f"{_DURATIONS} FILTER (WHERE stock AND duration_ms IS NOT NULL)",
    "stock_adjusted": "count(*) FILTER (WHERE stock AND adjusted)",
    "adjusted_value": "coalesce(sum(adjusted_value) FILTER (WHERE stock), 0)",
}


def field_list() -> str:
    return ",\n        ".join(f"{sql} AS {name}" for name, sql in SQL_FIELDS.items())


def select_list() -> str:
    return ",\n    ".join(f"{sql} AS {name}" for name, sql in SQL_COLUMNS.items())


# --- the same rules, in Python ------------------------------------------------------------


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


class Fold:
    """The SQL aggregates of one group, computed event by event."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = dict.fromkeys(
            (n for n in SQL_COLUMNS if not n.endswith("_pct")), 0
        )
        self.durations: dict[str, list[int]] = {
            "approval_pct": [],
            "return_pct": [],
            "incident_pct": [],
            "stock_pct": [],
        }

    def _add(self, name: str, value: float = 1) -> None:
        self.counts[name] += value

    def _timed(self, count: str, pct: str, duration: int | None) -> None:
        if duration is not None:
            self._add(count)
            self.durations[pct].append(duration)

    def add(self, kind: str, status: str | None, duration: int | None, data: Any) -> None:
        data = data if isinstance(data, dict) else {}
        if kind == "task.opened":
            self._add("tasks_opened")
        elif kind == "task.breached":
            self._add("breaches")
        elif kind == "task.escalated":
            self._add("escalations")
        elif kind == "task.decided":
            self._decided(status, duration, data)
        elif kind == "run.finished":
            self._finished(duration, data.get("metrics"))

    def _decided(self, status: str | None, duration: int | None, data: dict[str, Any]) -> None:
        self._add("tasks_decided")
        if "within_sla" in data:
            self._add("sla_tasks")
            if data["within_sla"] is True:
                self._add("sla_met")
        task_kind, via = data.get("task_kind"), data.get("via")
        if task_kind == "approval":
            if via == "auto":
                self._add("auto_decided")
            if status == "expired":
                self._add("approvals_expired")
            if via == "human":
                self._timed("approvals", "approval_pct", duration)
                if status in ("approved", "rejected"):
                    self._add(str(status))
                if data.get("category") == "returns":
                    self._timed("returns", "return_pct", duration)
                    if status in ("approved", "rejected"):
                        self._add(f"returns_{status}")
        elif task_kind == "checklist":
            self._add("checklists")
            if status in ("completed", "exception", "expired"):
                self._add(f"checklists_{status}")
            for key in ("items_total", "items_completed"):
                self._add(key, _num(data.get(key)) or 0)

    def _finished(self, duration: int | None, metrics: Any) -> None:
        if not isinstance(metrics, dict):
            return
        if metrics.get("incident_resolved") is True:
            self._add("incidents")
            if metrics.get("resolved_within_sla") is True:
                self._add("incidents_within_sla")
            self._timed("incident_count", "incident_pct", duration)
        if _num(metrics.get("stores_targeted")) is not None:
            self._add("promotions")
            if metrics.get("promotion_launched") is True:
                self._add("promotions_launched")
            self._add("stores_targeted", _num(metrics["stores_targeted"]) or 0)
            self._add("stores_synced", _num(metrics.get("stores_synced_before_launch")) or 0)
        if metrics.get("stock_case_closed") is True:
            self._timed("stock_cases", "stock_pct", duration)
            if metrics.get("stock_adjusted") is True:
                self._add("stock_adjusted")
            self._add("adjusted_value", _num(metrics.get("adjusted_value")) or 0)

    @classmethod
    def of(cls, counts: Mapping[str, Any], durations: Mapping[str, Any]) -> Fold:
        """A group's partials as stored or as the SQL answers them (Decimal sums and all)."""
        fold = cls()
        for name in fold.counts:
            fold.counts[name] = float(counts.get(name) or 0)
        for name in fold.durations:
            fold.durations[name] = list(durations.get(name) or ())
        return fold

    def stored(self) -> tuple[dict[str, float], dict[str, list[int]]]:
        return dict(self.counts), {k: list(v) for k, v in self.durations.items()}

    def merge(self, other: Fold) -> None:
        for name, value in other.counts.items():
            self.counts[name] += value
        for name, values in other.durations.items():
            self.durations[name].extend(values)

    def raw(self) -> dict[str, Any]:
        """The group as the SQL returns it."""
        return {
            **self.counts,
            **{name: percentiles(values) for name, values in self.durations.items()},
        }


def percentiles(values: Sequence[float], quantiles: Iterable[float] = QUANTILES) -> list[float]:
    """``percentile_cont`` of each quantile: linear between the closest ranks; [] when
    there are no values."""
    ordered = sorted(values)
    if not ordered:
        return []
    out = []
    for q in quantiles:
        position = q * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        out.append(ordered[low] + (ordered[high] - ordered[low]) * (position - low))
    return out


# --- from aggregates to figures -------------------------------------------------------------


def _ratio(count: float, of: float) -> Ratio:
    # (PostgreSQL's sums arrive as Decimal.)
    pct = round(100 * float(count) / float(of), 2) if of else None
    return Ratio(count=int(count), of=int(of), pct=pct)


def _durations(count: float, pct: Sequence[float] | None) -> Durations:
    p50, p95 = (round(float(v), 1) for v in pct) if pct else (None, None)
    return Durations(count=int(count), p50_ms=p50, p95_ms=p95)


def figures(raw: Mapping[str, Any]) -> Figures:
    """A group's figures from its aggregates (a SQL row or :meth:`Fold.raw`)."""
    r = {k: (v if v is not None else 0) for k, v in raw.items()}
    return Figures(
        sla=SlaFigures(
            tasks_opened=int(r["tasks_opened"]),
            tasks_decided=int(r["tasks_decided"]),
            decided_within_sla=_ratio(r["sla_met"], r["sla_tasks"]),
            breaches=int(r["breaches"]),
            escalations=int(r["escalations"]),
        ),
        approval_turnaround=ApprovalTurnaround(
            turnaround=_durations(r["approvals"], raw.get("approval_pct")),
            approved=int(r["approved"]),
            rejected=int(r["rejected"]),
            auto_decided=int(r["auto_decided"]),
            expired=int(r["approvals_expired"]),
        ),
        incidents=Incidents(
            resolved_within_sla=_ratio(r["incidents_within_sla"], r["incidents"]),
            resolution_time=_durations(r["incident_count"], raw.get("incident_pct")),
        ),
        promotion_deployment=PromotionDeployment(
            runs=int(r["promotions"]),
            launched=int(r["promotions_launched"]),
            accuracy=_ratio(r["stores_synced"], r["stores_targeted"]),
        ),
        checklists=Checklists(
            closed=int(r["checklists"]),
            completed=_ratio(r["checklists_completed"], r["checklists"]),
            with_exceptions=int(r["checklists_exception"]),
            expired=int(r["checklists_expired"]),
            items_completed=_ratio(r["items_completed"], r["items_total"]),
        ),
        stock_adjustment=StockAdjustment(
            cycle_time=_durations(r["stock_cases"], raw.get("stock_pct")),
            adjusted=int(r["stock_adjusted"]),
            adjusted_value=round(float(r["adjusted_value"]), 2),
        ),
        return_approvals=ReturnApprovals(
            turnaround=_durations(r["returns"], raw.get("return_pct")),
            approved=int(r["returns_approved"]),
            rejected=int(r["returns_rejected"]),
        ),
    )


def empty() -> Figures:
    return figures(Fold().raw())
