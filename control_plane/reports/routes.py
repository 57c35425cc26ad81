"""``GET /api/v1/reports/sla``: a tenant's or a partner's SLA and business report."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromQuery, QueryParameter

from control_plane.api.auth import requires
from control_plane.api.params import CtxDep
from control_plane.errors import InvalidInput
from control_plane.identity.principal import Principal
from control_plane.reports.export import to_csv
from control_plane.reports.schemas import SlaReport
from control_plane.reports.service import sla_report

CSV = "text/csv"


def _format(requested: str | None, accept: str | None) -> str:
    """json or csv: ``format`` wins over the Accept header."""
    if requested is not None:
        if requested not in ("json", "csv"):
            raise InvalidInput(f"format must be json or csv, not {requested!r}")
        return requested
    offered = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    return "csv" if CSV in offered and "application/json" not in offered else "json"


@get(
    "/api/v1/reports/sla",
    operation_id="getSlaReport",
    tags=["reports"],
    guards=[requires("reports:read")],
    responses={
        200: ResponseSpec(
            data_container=SlaReport,
            description="The report as JSON; as text/csv with format=csv or Accept: text/csv",
        )
    },
    description=(
        "SLA and business figures of one tenant (`tenant_id`) or of every tenant of a"
        " partner (`partner_id`, with the partner's total) for a period: `period=YYYY-MM`,"
        " or `from`/`to` (ISO 8601; `to` exclusive; at most 93 days); default this month"
        " so far. Tasks decided within SLA, breaches and escalations; approval, return"
        " approval and stock-adjustment turnaround (p50/p95); incidents resolved within"
        " SLA; promotion deployment accuracy; checklist completion. Every ratio carries"
        " its counts. `format=csv` (or `Accept: text/csv`) answers one CSV row per tenant"
        " plus the partner's total."
    ),
)
async def get_sla_report(
    ctx: CtxDep,
    request: Request[Principal, Any, Any],
    tenant_id: FromQuery[UUID | None] = None,
    partner_id: FromQuery[UUID | None] = None,
    period: FromQuery[str | None] = None,
    from_: Annotated[str | None, QueryParameter(name="from")] = None,
    to: FromQuery[str | None] = None,
    format_: Annotated[str | None, QueryParameter(name="format")] = None,
) -> Response[Any]:
    kind = _format(format_, request.headers.get("accept"))
    report: SlaReport = await sla_report(
        ctx, tenant_id=tenant_id, partner_id=partner_id, period=period, since=from_, until=to
    )
    if kind == "csv":
        name = f"sla-{report.tenant_id or report.partner_id}-{report.from_:%Y%m%d}.csv"
        return Response(
            to_csv(report),
            media_type=f"{CSV}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return Response(report)
