"""Telemetry: runtime batches in, deduplicated raw events, rollups, heartbeats, retention."""

from control_plane.telemetry.maintenance import apply_retention, rebuild_rollups
from control_plane.telemetry.service import heartbeat, ingest, rollups

__all__ = ["apply_retention", "heartbeat", "ingest", "rebuild_rollups", "rollups"]
