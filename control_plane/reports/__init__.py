"""SLA and business reports per tenant and per partner, from the runtimes' telemetry."""

from control_plane.reports.service import sla_report

__all__ = ["sla_report"]
