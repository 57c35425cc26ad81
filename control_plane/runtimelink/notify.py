"""In-process wake-ups for desired-state long polls.

A committed change to a tenant's deployments, generation, stores, theme or settings wakes
the long polls waiting on that tenant in this process at once; a change to a partner's
theme or settings wakes those of all its tenants (a poll listens on its tenant and on its
partner). Changes made by other processes are
found by the polls' own periodic database check (:mod:`control_plane.runtimelink.desired`).
The bus also keeps the W3C trace context of the last traced change per tenant, which the
desired-state answer hands to the runtime (best effort: only what this process saw).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from opentelemetry import propagate
from sqlalchemy import event
from sqlalchemy.orm import Session

from control_plane.branding.models import Theme
from control_plane.deployments.models import Deployment, DesiredStateGeneration
from control_plane.tenancy.models import Partner, Store, Tenant

_CHANGED = "runtimelink.changed_tenants"
_WATCHED = (Deployment, DesiredStateGeneration, Store)


class ChangeBus:
    def __init__(self) -> None:
        self._waiters: dict[UUID, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = (
            defaultdict(set)
        )
        self._contexts: dict[UUID, dict[str, str]] = {}

    @asynccontextmanager
    async def listen(
        self, tenant_id: UUID, partner_id: UUID | None = None
    ) -> AsyncIterator[asyncio.Event]:
        """An event set whenever ``tenant_id``'s desired state may have changed: a change
        of the tenant's, or of its partner's theme."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        keys = [tenant_id] if partner_id is None else [tenant_id, partner_id]
        for key in keys:
            self._waiters[key].add(waiter)
        try:
            yield waiter[1]
        finally:
            for key in keys:
                waiters = self._waiters.get(key)
                if waiters is not None:
                    waiters.discard(waiter)
                    if not waiters:
                        del self._waiters[key]

    def notify(self, tenant_ids: Iterable[UUID]) -> None:
        """Wake the polls of these tenants (or, for a partner's id, of its tenants)."""
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        injected: dict[str, str] = {}
        propagate.inject(injected)  # the change's trace, when the request is traced
        carrier = {k: v for k, v in injected.items() if k in ("traceparent", "tracestate")}
        for tenant_id in tenant_ids:
            if carrier:
                self._contexts[tenant_id] = carrier
            for loop, flag in list(self._waiters.get(tenant_id, ())):
                if loop is running:
                    flag.set()
                elif not loop.is_closed():
                    loop.call_soon_threadsafe(flag.set)

    def change_context(self, tenant_id: UUID) -> dict[str, str] | None:
        """The trace context (``traceparent``...) of the last traced change seen here."""
        return self._contexts.get(tenant_id)

    def waiting(self, tenant_id: UUID) -> int:
        return len(self._waiters.get(tenant_id, ()))


bus = ChangeBus()


def _owners(obj: object) -> Iterator[UUID]:
    """Whose desired state ``obj`` is part of: its tenant, or a partner for its theme;
    a tenant or partner row itself for its settings (triage travels in the document)."""
    if isinstance(obj, Theme):
        yield obj.tenant_id or obj.partner_id
    elif isinstance(obj, _WATCHED):
        yield obj.tenant_id
    elif isinstance(obj, Tenant | Partner):
        yield obj.id


@event.listens_for(Session, "after_flush")
def _collect(session: Session, _context: Any) -> None:
    changed: set[UUID] = session.info.setdefault(_CHANGED, set())
    for obj in itertools.chain(session.new, session.dirty, session.deleted):
        changed.update(_owners(obj))


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    changed = session.info.pop(_CHANGED, None)
    if changed:
        bus.notify(changed)


@event.listens_for(Session, "after_rollback")
def _rolled_back(session: Session) -> None:
    session.info.pop(_CHANGED, None)
