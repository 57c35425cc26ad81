"""Wire schema for audit entries."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class AuditEntry(msgspec.Struct):
    seq: int
    id: UUID
    at: datetime
    actor: str
    actor_kind: str
    partner_id: UUID | None
    tenant_id: UUID | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    hash: str
