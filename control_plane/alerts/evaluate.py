"""The ``alerts.evaluate`` pass: every active tenant's signals against the rules in force.

For each (tenant, rule key) an episode moves pending -> open -> resolved as the condition
appears, holds for the rule's for-duration, and clears. Idempotent: a second pass at the
same ``now`` finds every row already as it would make it and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select

from control_plane.alerts.metrics import Reading, fires, read_metrics, recurring_incidents
from control_plane.alerts.models import (
    LIVE_STATES,
    Alert,
    AlertRule,
    AlertState,
    NotificationChannel,
    Silence,
)
from control_plane.alerts.notify import enqueue, load_channels
from control_plane.alerts.rules import effective_rules
from control_plane.alerts.suppress import active_silences, silence_for, tenants_in_maintenance
from control_plane.context import Ctx
from control_plane.contracts import uuid7
from control_plane.health.assess import Signals, Thresholds
from control_plane.health.fleet import fleet_signals
from control_plane.insights.service import describe, recent_by_tenant
from control_plane.tenancy.models import Tenant, TenantStatus

SYSTEM_ACTOR = "system:alerts"
_NO_SIGNALS = Signals(heartbeat_age_s=None)


@dataclass
class Pass:
    """What one evaluation pass works with."""

    ctx: Ctx
    now: datetime
    silences: Sequence[Silence]
    channels: Sequence[NotificationChannel]
    tenants: dict[UUID, Tenant]
    changes: int = 0

    async def announce(self, alert: Alert, event: str) -> None:
        await enqueue(
            self.ctx,
            alert,
            event,
            self.now,
            channels=self.channels,
            tenant=self.tenants.get(alert.tenant_id),
        )


def _set(alert: Alert, **values: Any) -> bool:
    """Assign only what differs, so an unchanged alert is not rewritten (idempotence)."""
    changed = False
    for name, value in values.items():
        if getattr(alert, name) != value:
            setattr(alert, name, value)
            changed = True
    return changed


async def evaluate(ctx: Ctx, now: datetime, *, limits: Thresholds | None = None) -> int:
    """One pass; returns the number of alert transitions and updates made."""
    session = ctx.session
    active = (
        await session.scalars(
            select(Tenant).where(Tenant.status == TenantStatus.ACTIVE).order_by(Tenant.id)
        )
    ).all()
    tenants = [(t.id, t.partner_id) for t in active]
    partner_of: dict[UUID, UUID] = {t: p for t, p in tenants}
    signals = await fleet_signals(ctx, now, list(partner_of), limits=limits) if tenants else {}
    insights = await recent_by_tenant(ctx, now, list(partner_of))
    rules = (await session.scalars(select(AlertRule).order_by(AlertRule.id))).all()
    live = {
        (a.tenant_id, a.rule_key): a
        for a in (
            await session.scalars(
                select(Alert).where(Alert.state.in_([str(s) for s in LIVE_STATES]))
            )
        ).all()
    }
    maintenance_partners, maintenance_tenants = await tenants_in_maintenance(ctx, now)
    run = Pass(
        ctx,
        now,
        await active_silences(ctx, now),
        await load_channels(ctx),
        {t.id: t for t in active},
    )
    in_force: dict[UUID, dict[str, AlertRule]] = {}
    for tenant_id, partner_id in tenants:
        if partner_id not in in_force:
            in_force[partner_id] = effective_rules(rules, partner_id)
        readings = read_metrics(signals.get(tenant_id, _NO_SIGNALS), limits)
        readings["recurring_incidents"] = recurring_incidents(
            [describe(i) for i in insights.get(tenant_id, ())]
        )
        quiet = partner_id in maintenance_partners or tenant_id in maintenance_tenants
        for key, rule in in_force[partner_id].items():
            alert = live.pop((tenant_id, key), None)
            reading = readings.get(rule.metric)
            if fires(reading, rule.comparator, rule.threshold):
                assert reading is not None
                await _firing(run, rule, alert, reading, tenant_id, partner_id, quiet)
            elif alert is not None:
                await _cleared(run, alert, "auto")
    # Episodes whose rule is no longer in force, or whose tenant is no longer active.
    for (tenant_id, _), alert in live.items():
        await _cleared(
            run, alert, "rule_disabled" if tenant_id in partner_of else "tenant_inactive"
        )
    await session.flush()
    return run.changes


async def _firing(
    run: Pass,
    rule: AlertRule,
    alert: Alert | None,
    reading: Reading,
    tenant_id: UUID,
    partner_id: UUID,
    quiet: bool,
) -> None:
    described = {
        "rule_id": rule.id,
        "rule_name": rule.name,
        "metric": rule.metric,
        "comparator": rule.comparator,
        "threshold": rule.threshold,
        "severity": rule.severity,
        "value": reading.value,
        "reason": reading.reason,
        "last_seen_at": run.now,
    }
    if alert is None:
        if quiet:
            return  # a maintenance window: nothing starts
        alert = Alert(
            id=uuid7(),
            partner_id=partner_id,
            tenant_id=tenant_id,
            rule_key=rule.key,
            state=AlertState.PENDING,
            first_seen_at=run.now,
            silenced=False,
            **described,
        )
        run.ctx.session.add(alert)
        run.changes += 1
    elif alert.state == AlertState.PENDING and quiet:
        await run.ctx.session.delete(alert)
        run.changes += 1
        return
    elif _set(alert, **described):
        run.changes += 1
    if alert.state == AlertState.PENDING:
        if (run.now - alert.first_seen_at).total_seconds() >= rule.for_seconds:
            await _open(run, alert)
        return
    await _resilence(run, alert)


async def _open(run: Pass, alert: Alert) -> None:
    alert.state = AlertState.OPEN
    alert.opened_at = run.now
    run.changes += 1
    await _resilence(run, alert)


async def _resilence(run: Pass, alert: Alert) -> None:
    """Mark the alert as its silences say now; announce it once it is not silenced."""
    silence = silence_for(run.silences, alert)
    if _set(alert, silenced=silence is not None, silence_id=silence.id if silence else None):
        run.changes += 1
    if silence is None and alert.notified_at is None:
        await run.announce(alert, "alert.opened")
        run.changes += 1


async def _cleared(run: Pass, alert: Alert, resolution: str) -> None:
    run.changes += 1
    if alert.state == AlertState.PENDING:
        await run.ctx.session.delete(alert)  # it never fired: no episode to keep
        return
    alert.state = AlertState.RESOLVED
    alert.resolved_at = run.now
    alert.resolved_by = SYSTEM_ACTOR
    alert.resolution = resolution
    silenced = silence_for(run.silences, alert) is not None
    if alert.notified_at is not None and not silenced:
        await run.announce(alert, "alert.resolved")
