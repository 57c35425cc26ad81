"""Imports every model module so metadata and scoping see all tables."""

from __future__ import annotations


def import_all() -> None:
    import control_plane.alerts.models
    import control_plane.api.models
    import control_plane.audit.models
    import control_plane.billing.models
    import control_plane.branding.models
    import control_plane.catalog.models
    import control_plane.deployments.models
    import control_plane.identity.models
    import control_plane.insights.models
    import control_plane.rollouts.models
    import control_plane.runtimelink.models
    import control_plane.tenancy.models  # noqa: F401
