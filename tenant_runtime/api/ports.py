"""What the API needs from the runtime and its engine, as structural types, so the routes
depend on behaviour rather than on how the runtime is assembled."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.contracts import dsl
from control_plane.contracts.brand import Brand
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.secrets import SecretCache


class TriagePort(Protocol):
    async def learn(
        self,
        conn: AsyncConnection,
        *,
        target: str,
        text: str,
        label: str,
        source: str,
        actor: str,
        now: datetime,
        decision_id: UUID | None = None,
    ) -> None:
        """Upsert one labelled example of the tenant's (the latest label for a text wins)."""
        ...


class EnginePort(Protocol):
    @property
    def db(self) -> AsyncEngine: ...

    @property
    def clock(self) -> Callable[[], datetime]: ...

    @property
    def triage(self) -> TriagePort: ...

    async def decide(
        self,
        task_id: UUID,
        *,
        decision: str,
        actor: str,
        comment: str | None,
        answers: dict[str, Any],
    ) -> None: ...

    async def ingest(
        self,
        source: str,
        *,
        external_id: str,
        type: str,
        correlation: str | None,
        payload: dict[str, Any],
    ) -> bool: ...

    async def cancel(self, run_id: UUID, *, actor: str) -> bool: ...

    async def replay_dead_letter(self, dead_letter_id: UUID) -> UUID | None: ...


class StorePort(Protocol):
    @property
    def id(self) -> Any: ...

    @property
    def code(self) -> str: ...

    @property
    def region(self) -> Any: ...

    @property
    def name(self) -> str: ...


class DeploymentPort(Protocol):
    @property
    def template(self) -> dsl.Template: ...

    @property
    def params(self) -> dict[str, Any]: ...


class RuntimePort(Protocol):
    @property
    def engine(self) -> EnginePort: ...

    @property
    def settings(self) -> RuntimeSettings: ...

    @property
    def deployments(self) -> Mapping[str, DeploymentPort]: ...

    @property
    def stores(self) -> Mapping[str, StorePort]: ...

    @property
    def secrets(self) -> SecretCache: ...

    @property
    def usage(self) -> Counter[str]: ...

    @property
    def brand(self) -> Brand | None:
        """The tenant's brand from its desired state; None until there is one."""
        ...

    async def start(
        self,
        template_id: str,
        payload: dict[str, Any],
        *,
        idempotency_key: str | None,
        store: str | None,
    ) -> UUID: ...

    async def background(self, stop: asyncio.Event | None = None) -> None:
        """Embedded mode: execute rung steps in-process and keep house until ``stop``."""
        ...
