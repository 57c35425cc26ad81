"""Wire schemas of ``/api/v1/insights``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from control_plane.contracts.triage import Evidence

Scope = Literal["store", "region"]


class Insight(msgspec.Struct, kw_only=True):
    """A recurring incident pattern a tenant's runtime reported (kept at its latest count)."""

    id: UUID
    tenant_id: UUID
    partner_id: UUID
    #: The runtime's id for the pattern: a re-sent insight keeps it (and this row).
    key: str
    kind: str
    scope: str
    #: The store id or the region id, as the runtime named it.
    subject: str
    #: The store's or region's code, when the control plane knows the subject.
    subject_code: str | None = None
    subject_name: str | None = None
    #: The incident category (a triage label).
    label: str
    #: Incidents of the category within ``window_days``, and the threshold it crossed.
    count: int
    threshold: int
    window_days: int
    first_at: datetime
    last_at: datetime
    evidence: list[Evidence]
    #: Who the runtime told in the tenant (``regional_manager@region:<id>``).
    notified: str | None = None
    #: When the control plane first stored it, and last stored a higher count.
    created_at: datetime
    updated_at: datetime
    version: int
