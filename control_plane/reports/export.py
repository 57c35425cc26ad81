"""The report as CSV: one row per tenant, then the partner's total row; a column per
figure (``section.figure.part``), counts beside every ratio and percentile."""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec

from control_plane.reports.schemas import Figures, SlaReport

_HEAD = ("scope", "partner_id", "tenant_id", "tenant_slug", "tenant_name", "from", "to")


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flat(f"{prefix}.{key}" if prefix else key, inner, out)
    else:
        out[prefix] = value


def _columns(figures: Figures) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _flat("", msgspec.to_builtins(figures), out)
    return out


def to_csv(report: SlaReport) -> str:
    period = (report.from_.isoformat(), report.to.isoformat())
    rows: list[tuple[Any, ...]] = [
        ("tenant", report.partner_id, t.tenant_id, t.slug, t.name, *period, _columns(t.figures))
        for t in report.tenants
    ]
    if report.scope == "partner":
        rows.append(("partner", report.partner_id, None, None, None, *period,
                     _columns(report.total)))  # fmt: skip
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    figure_columns = list(_columns(report.total))
    writer.writerow([*_HEAD, *figure_columns])
    for *head, columns in rows:
        cells = [*head, *(columns[c] for c in figure_columns)]
        writer.writerow(["" if c is None else str(c) for c in cells])
    return buffer.getvalue()
