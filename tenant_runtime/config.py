"""One tenant runtime's settings, from ``STOREOPS_RUNTIME_*`` environment variables."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

_PREFIX = "STOREOPS_RUNTIME_"


@dataclass(frozen=True)
class RuntimeSettings:
    tenant_id: UUID
    home: Path = Path(".storeops")
    #: Empty: the embedded SQLite file <home>/runtime-<tenant>.db.
    database_url: str = ""
    #: Empty: in-process dispatch (embedded mode); else Dramatiq on this Redis.
    redis_url: str = ""
    worker_threads: int = 8
    lease_seconds: int = 60
    #: How often the worker relays the outbox and sweeps for overdue steps.
    sweep_seconds: float = 1.0
    #: Connector name -> {"base_url": ..., "auth": ...}: set by deployments (issue 6 wires
    #: the control plane's desired state here).
    bindings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite+aiosqlite:///{self.home / f'runtime-{self.tenant_id}.db'}"
            object.__setattr__(self, "database_url", url)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RuntimeSettings:
        source = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return source.get(_PREFIX + name, default)

        tenant = get("TENANT_ID")
        if not tenant:
            raise ValueError(f"{_PREFIX}TENANT_ID is required: the runtime serves one tenant")
        try:
            bindings = json.loads(get("BINDINGS", "{}"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{_PREFIX}BINDINGS is not valid JSON: {exc.msg}") from None
        try:
            return cls(
                tenant_id=UUID(tenant),
                home=Path(get("HOME", ".storeops")),
                database_url=get("DATABASE_URL"),
                redis_url=get("REDIS_URL"),
                worker_threads=int(get("WORKER_THREADS", "8")),
                lease_seconds=int(get("LEASE_SECONDS", "60")),
                sweep_seconds=float(get("SWEEP_SECONDS", "1.0")),
                bindings=bindings,
            )
        except ValueError as exc:
            raise ValueError(f"invalid runtime setting: {exc}") from None
