"""Wire schemas of ``GET /api/v1/reports/sla``: every ratio with its counts, every duration
with its percentiles."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

ReportFormat = Literal["json", "csv"]


class Ratio(msgspec.Struct):
    """``count`` of ``of`` (and the percentage, null when ``of`` is 0)."""

    count: int
    of: int
    pct: float | None


class Durations(msgspec.Struct):
    """How many, and their median and 95th percentile (linear interpolation, as
    PostgreSQL's ``percentile_cont``), in milliseconds; null when there are none."""

    count: int
    p50_ms: float | None
    p95_ms: float | None


class SlaFigures(msgspec.Struct):
    tasks_opened: int
    tasks_decided: int
    #: Tasks with an SLA deadline closed by it, of those closed (decided or expired).
    decided_within_sla: Ratio
    #: ``task.breached`` events: open tasks whose deadline passed.
    breaches: int
    escalations: int


class ApprovalTurnaround(msgspec.Struct):
    #: Approvals decided by a person: from opening to decision.
    turnaround: Durations
    approved: int
    rejected: int
    #: Approvals decided by policy (an auto decision), not in the turnaround.
    auto_decided: int
    expired: int


class Incidents(msgspec.Struct):
    """Store incidents (runs reporting ``incident_resolved``)."""

    resolved_within_sla: Ratio
    #: The incident runs' durations, report to resolution.
    resolution_time: Durations


class PromotionDeployment(msgspec.Struct):
    """Price changes and promotions (runs reporting ``stores_targeted``)."""

    runs: int
    launched: int
    #: Stores synced before launch, of stores targeted.
    accuracy: Ratio


class Checklists(msgspec.Struct):
    closed: int
    #: Submitted with every item passed, of those closed.
    completed: Ratio
    with_exceptions: int
    expired: int
    #: Items answered and passed, of all items of the closed checklists.
    items_completed: Ratio


class StockAdjustment(msgspec.Struct):
    """Stock-adjustment cases (runs reporting ``stock_case_closed``)."""

    cycle_time: Durations
    #: Cases that posted an adjustment to the system of record.
    adjusted: int
    adjusted_value: float


class ReturnApprovals(msgspec.Struct):
    """Approvals of templates in the ``returns`` category, decided by a person."""

    turnaround: Durations
    approved: int
    rejected: int


class Figures(msgspec.Struct):
    sla: SlaFigures
    approval_turnaround: ApprovalTurnaround
    incidents: Incidents
    promotion_deployment: PromotionDeployment
    checklists: Checklists
    stock_adjustment: StockAdjustment
    return_approvals: ReturnApprovals


class TenantFigures(msgspec.Struct):
    tenant_id: UUID
    slug: str | None
    name: str | None
    figures: Figures


class SlaReport(msgspec.Struct):
    scope: Literal["tenant", "partner"]
    partner_id: UUID
    #: Set for a tenant's report.
    tenant_id: UUID | None
    from_: datetime = msgspec.field(name="from")
    to: datetime = msgspec.field()
    generated_at: datetime = msgspec.field()
    #: The whole scope: the tenant, or every tenant of the partner together (percentiles
    #: over all their events, not averaged).
    total: Figures = msgspec.field()
    tenants: list[TenantFigures] = msgspec.field(default_factory=list)
