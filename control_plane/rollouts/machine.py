"""The rollout state machine: start a wave, wait for its runtimes to confirm, soak, read
the gate, go on; on regression pause, and roll back the tenants already moved.

pending -> applying (wave N) -> soaking -> [gate] -> applying (wave N+1) ... -> completed;
a failed apply, an apply timeout or a failing gate -> rolled_back (auto_rollback) or
paused; promote skips a soak or resumes a pause; abort rolls back -> aborted. Every
transition is a rollout event and an audit entry, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from control_plane.audit.service import record, record_change, snapshot
from control_plane.context import Ctx
from control_plane.deployments.models import Deployment
from control_plane.deployments.resolve import Resolver
from control_plane.deployments.service import apply_target
from control_plane.deployments.state import lock_generation
from control_plane.errors import IllegalTransition
from control_plane.rollouts import gates
from control_plane.rollouts.models import (
    FINAL,
    Rollout,
    RolloutEvent,
    RolloutStatus,
    RolloutTenant,
    TenantState,
)
from control_plane.tenancy.models import Tenant

MOVED = (TenantState.APPLYING, TenantState.APPLIED, TenantState.FAILED)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _when(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


async def note(ctx: Ctx, rollout: Rollout, kind: str, **data: Any) -> None:
    """A rollout event and its audit entry."""
    wave = rollout.current_wave if rollout.current_wave >= 0 else None
    ctx.session.add(
        RolloutEvent(
            rollout_id=rollout.id,
            partner_id=rollout.partner_id,
            kind=kind,
            wave=wave,
            actor=ctx.principal.subject,
            data=data,
        )
    )
    await record(
        ctx,
        f"rollout.{kind}",
        target_type="rollout",
        target_id=rollout.id,
        partner_id=rollout.partner_id,
        after={"status": rollout.status, "wave": wave, **data},
    )


def _set_wave(rollout: Rollout, index: int, **changes: Any) -> dict[str, Any]:
    waves = [dict(w) for w in rollout.waves]
    waves[index].update(changes)
    rollout.waves = waves
    return waves[index]


async def tenants(ctx: Ctx, rollout: Rollout, wave: int | None = None) -> Sequence[RolloutTenant]:
    stmt = select(RolloutTenant).where(RolloutTenant.rollout_id == rollout.id)
    if wave is not None:
        stmt = stmt.where(RolloutTenant.wave == wave)
    return (await ctx.session.scalars(stmt.order_by(RolloutTenant.position))).all()


async def _move(ctx: Ctx, rollout: Rollout, rt: RolloutTenant, version: str, back: bool) -> str:
    """Point ``rt``'s deployment at ``version`` as one new desired-state generation.
    Returns why it could not ("" when it did)."""
    deployment = await ctx.session.scalar(
        select(Deployment).where(Deployment.id == rt.deployment_id)
    )
    tenant = await ctx.session.scalar(select(Tenant).where(Tenant.id == rt.tenant_id))
    if deployment is None or tenant is None:
        return "its deployment was deleted"
    if back and deployment.semver != rollout.target_version:
        return f"left at {deployment.semver}: changed by hand since the rollout moved it"
    generation = await lock_generation(ctx.session, tenant)
    # Rolling back returns to what ran before even if that version was yanked since.
    running = (deployment.template_id, version if back else deployment.semver)
    target = await Resolver(ctx, tenant).target(
        template_id=deployment.template_id,
        version=version,
        params=deployment.params,
        bindings=deployment.bindings,
        triggers=deployment.triggers,
        status=deployment.status,
        running=running,
    )
    if isinstance(target, list):
        return "; ".join(str(p) for p in target)
    if not back:
        rt.from_version = deployment.semver
    before = snapshot(deployment)
    apply_target(deployment, target)
    generation.generation += 1
    await ctx.session.flush()
    await record_change(
        ctx,
        "deployment.update",
        deployment,
        before=before,
        after={**snapshot(deployment), "changed": ["version"], "rollout_id": str(rollout.id)},
    )
    rt.content_hash = target.content_hash
    rt.moved_generation = generation.generation
    return ""


async def start_wave(ctx: Ctx, rollout: Rollout, index: int, now: datetime) -> None:
    rollout.current_wave = index
    rollout.status = RolloutStatus.APPLYING
    rollout.reason = None
    _set_wave(rollout, index, state="applying", started_at=_iso(now))
    moved = []
    for rt in await tenants(ctx, rollout, index):
        why = await _move(ctx, rollout, rt, rollout.target_version, back=False)
        rt.state = TenantState.FAILED if why else TenantState.APPLYING
        rt.reason = why or None
        moved.append(rt.tenant_slug)
    await ctx.session.flush()
    await note(ctx, rollout, "wave_started", tenants=moved)


async def _check_applied(ctx: Ctx, rollout: Rollout, now: datetime) -> bool:
    """Move the wave to soaking once every runtime confirmed; a failure is a regression."""
    wave = rollout.waves[rollout.current_wave]
    rows = await tenants(ctx, rollout, rollout.current_wave)
    for rt in rows:
        if rt.state != TenantState.APPLYING:
            continue
        deployment = await ctx.session.scalar(
            select(Deployment).where(Deployment.id == rt.deployment_id)
        )
        if deployment is None:
            rt.state, rt.reason = TenantState.FAILED, "its deployment was deleted"
            continue
        current = (deployment.reported_generation or 0) >= (rt.moved_generation or 0)
        if current and deployment.reported_status == "failed":
            rt.state = TenantState.FAILED
            rt.reason = f"the runtime failed to apply it: {deployment.reported_reason or '-'}"
        elif current and deployment.reported_content_hash == rt.content_hash:
            rt.state, rt.applied_at = TenantState.APPLIED, now
    failed = [rt for rt in rows if rt.state == TenantState.FAILED]
    if failed:
        reason = "; ".join(f"{rt.tenant_slug}: {rt.reason}" for rt in failed)
        await regression(
            ctx, rollout, now, f"wave {rollout.current_wave} failed to apply: {reason}"
        )
        return True
    waiting = [rt.tenant_slug for rt in rows if rt.state == TenantState.APPLYING]
    if not waiting:
        soak_until = now + timedelta(seconds=rollout.soak_seconds)
        _set_wave(rollout, rollout.current_wave, state="soaking", applied_at=_iso(now),
                  soak_until=_iso(soak_until))  # fmt: skip
        rollout.status = RolloutStatus.SOAKING
        await note(ctx, rollout, "wave_applied", soak_until=_iso(soak_until))
        return True
    if now >= _when(wave["started_at"]) + timedelta(seconds=rollout.apply_timeout_seconds):
        await regression(
            ctx,
            rollout,
            now,
            f"wave {rollout.current_wave}: {', '.join(waiting)} did not confirm "
            f"{rollout.target_version} within {rollout.apply_timeout_seconds}s",
        )
        return True
    return False


async def read_gate(ctx: Ctx, rollout: Rollout, now: datetime) -> gates.Reading:
    wave = rollout.waves[rollout.current_wave]
    limits = gates.Thresholds.of(rollout.gates)
    everyone = await tenants(ctx, rollout)
    in_wave = [rt.tenant_id for rt in everyone if rt.wave == rollout.current_wave]
    applied = _when(wave["applied_at"])
    old_versions = {rt.from_version for rt in everyone} - {rollout.target_version}
    new = await gates.sample(
        ctx.session, tenant_ids=in_wave, template_id=rollout.template_id,
        versions=[rollout.target_version], since=applied, until=now,
    )  # fmt: skip
    old = await gates.sample(
        ctx.session, tenant_ids=[rt.tenant_id for rt in everyone],
        template_id=rollout.template_id, versions=old_versions,
        since=applied - timedelta(seconds=limits.baseline_seconds), until=now,
    )  # fmt: skip
    return gates.evaluate(new, old, limits)


async def _check_soak(ctx: Ctx, rollout: Rollout, now: datetime) -> bool:
    """Read the gate: a regression stops the rollout at once; a pass after the soak moves
    on; too few runs keeps the wave soaking (promote overrides)."""
    wave = rollout.waves[rollout.current_wave]
    limits = gates.Thresholds.of(rollout.gates)
    rows = await tenants(ctx, rollout, rollout.current_wave)
    quiet = await gates.silent(
        ctx.session, [rt.tenant_id for rt in rows], _when(wave["applied_at"]), now,
        limits.max_silence_seconds,
    )  # fmt: skip
    if quiet:
        slugs = ", ".join(rt.tenant_slug for rt in rows if rt.tenant_id in quiet)
        await regression(
            ctx, rollout, now,
            f"wave {rollout.current_wave}: {slugs} sent no heartbeat for more than "
            f"{limits.max_silence_seconds}s since applying {rollout.target_version}",
        )  # fmt: skip
        return True
    reading = await read_gate(ctx, rollout, now)
    previous = (wave.get("gate") or {}).get("verdict")
    _set_wave(rollout, rollout.current_wave, gate=reading.as_dict(now))
    if reading.verdict == gates.FAIL:
        await regression(ctx, rollout, now, "; ".join(reading.reasons), reading)
        return True
    if now < _when(wave["soak_until"]):
        return False
    if reading.verdict == gates.WAITING:
        if previous != gates.WAITING:
            await note(ctx, rollout, "gate_waiting", gate=reading.as_dict(now))
        return previous != gates.WAITING
    await note(ctx, rollout, "gate_passed", gate=reading.as_dict(now))
    await next_wave(ctx, rollout, now, "passed")
    return True


async def next_wave(ctx: Ctx, rollout: Rollout, now: datetime, outcome: str) -> None:
    _set_wave(rollout, rollout.current_wave, state=outcome, finished_at=_iso(now))
    if rollout.current_wave + 1 < len(rollout.waves):
        await start_wave(ctx, rollout, rollout.current_wave + 1, now)
        await _check_applied(ctx, rollout, now)
        return
    rollout.status = RolloutStatus.COMPLETED
    rollout.finished_at = now
    await _close(ctx, rollout)
    await note(ctx, rollout, "completed")


async def _close(ctx: Ctx, rollout: Rollout) -> None:
    for rt in await tenants(ctx, rollout):
        rt.active = False


async def regression(
    ctx: Ctx, rollout: Rollout, now: datetime, reason: str, reading: gates.Reading | None = None
) -> None:
    rollout.reason = reason
    _set_wave(rollout, rollout.current_wave, state="failed", finished_at=_iso(now))
    rollout.status = RolloutStatus.PAUSED
    gate = reading.as_dict(now) if reading else None
    await note(ctx, rollout, "paused", reason=reason, gate=gate)
    if rollout.auto_rollback:
        await rollback(ctx, rollout, now, RolloutStatus.ROLLED_BACK, reason)


async def rollback(
    ctx: Ctx, rollout: Rollout, now: datetime, final: RolloutStatus, reason: str
) -> None:
    """Every tenant already moved goes back to the version it came from."""
    returned: list[str] = []
    left: list[str] = []
    for rt in await tenants(ctx, rollout):
        if rt.state not in MOVED:
            continue
        why = await _move(ctx, rollout, rt, rt.from_version, back=True)
        rt.state = TenantState.ROLLED_BACK
        rt.reason = why or rt.reason
        (left if why else returned).append(rt.tenant_slug)
    if rollout.current_wave >= 0 and rollout.waves[rollout.current_wave]["state"] != "failed":
        _set_wave(rollout, rollout.current_wave, state="rolled_back", finished_at=_iso(now))
    rollout.status = final
    rollout.reason = reason
    rollout.finished_at = now
    await _close(ctx, rollout)
    await ctx.session.flush()
    await note(ctx, rollout, str(final), reason=reason, tenants=returned, left=left)


async def advance(ctx: Ctx, rollout: Rollout, now: datetime) -> bool:
    """One step forward if one is due; True when something changed."""
    if rollout.status == RolloutStatus.PENDING:
        await start_wave(ctx, rollout, 0, now)
        await _check_applied(ctx, rollout, now)
        return True
    if rollout.status == RolloutStatus.APPLYING:
        return await _check_applied(ctx, rollout, now)
    if rollout.status == RolloutStatus.SOAKING:
        return await _check_soak(ctx, rollout, now)
    return False


async def promote(ctx: Ctx, rollout: Rollout, now: datetime, reason: str | None) -> None:
    """Skip the rest of the current soak, resume after a pause, or start a pending one."""
    status = RolloutStatus(rollout.status)
    if status in FINAL:
        raise IllegalTransition(
            f"rollout {rollout.id} is {status}; only a pending, soaking or paused rollout "
            "can be promoted",
            current_status=status.value,
        )
    if status == RolloutStatus.APPLYING:
        rows = await tenants(ctx, rollout, rollout.current_wave)
        done = sum(1 for rt in rows if rt.state == TenantState.APPLIED)
        raise IllegalTransition(
            f"wave {rollout.current_wave} is still applying ({done} of {len(rows)} runtimes "
            "confirmed); promote once it soaks",
            current_status=status.value,
        )
    await note(ctx, rollout, "promoted", reason=reason, from_status=status.value)
    if status == RolloutStatus.PENDING:
        await advance(ctx, rollout, now)
        return
    outcome = "promoted" if status == RolloutStatus.SOAKING else "overridden"
    if status == RolloutStatus.SOAKING:
        reading = await read_gate(ctx, rollout, now)
        _set_wave(rollout, rollout.current_wave, gate=reading.as_dict(now))
    await next_wave(ctx, rollout, now, outcome)


async def abort(ctx: Ctx, rollout: Rollout, now: datetime, reason: str | None) -> None:
    status = RolloutStatus(rollout.status)
    if status in FINAL:
        raise IllegalTransition(
            f"rollout {rollout.id} is already {status}; nothing to abort",
            current_status=status.value,
        )
    why = f"aborted by {ctx.principal.subject}" + (f": {reason}" if reason else "")
    await rollback(ctx, rollout, now, RolloutStatus.ABORTED, why)
