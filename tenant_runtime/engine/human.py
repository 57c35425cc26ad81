"""Human work: what a task asks, whether a decision is valid, where it leads, and what
happens when nobody decides in time (SLA breach, escalation chain)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select, update

from control_plane.contracts import dsl
from control_plane.contracts.validate import seconds
from tenant_runtime.db.dialect import aware
from tenant_runtime.db.schema import runs, steps, tasks
from tenant_runtime.engine import state
from tenant_runtime.engine.calendar import deadline
from tenant_runtime.engine.directory import Directory, StoreInfo

if TYPE_CHECKING:
    from tenant_runtime.engine.executor import Engine, Unit


class TaskNotFound(LookupError):
    """No such task (or not one the caller may see)."""


class TaskClosed(Exception):
    """The task was already decided, expired or cancelled."""


class InvalidDecision(ValueError):
    """The decision or its answers do not fit the task."""


#: Kinds that open a task (a classify step only when its model is unsure).
Human = dsl.ApprovalStep | dsl.ChecklistStep | dsl.ClassifyStep


def recipient(assignee: dsl.Assignee, store: str | None, directory: Directory) -> str:
    """Who holds the role: ``store_manager@store:<id>``, ``regional_manager@region:<id>``."""
    if assignee.scope == "tenant":
        return f"{assignee.role}@tenant"
    info = directory.store(store)
    if assignee.scope == "region":
        return f"{assignee.role}@region:{info.region if info and info.region else 'unknown'}"
    return f"{assignee.role}@store:{info.id if info else store or 'unknown'}"


def after(step: Human, start: datetime, duration: str, store: StoreInfo | None) -> datetime:
    """``start`` plus ``duration``, in the store's opening hours unless the SLA says wall."""
    business = step.sla is None or step.sla.calendar == "business"
    return deadline(
        start,
        timedelta(seconds=seconds(duration)),
        calendar=store.calendar if store else None,
        business=business,
    )


def task_for(
    step: Human,
    data: dict[str, Any],
    title: str | None = None,
    advice: dict[str, Any] | None = None,
    review: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The task row's content for an approval, checklist or review (``title``: the step's
    evaluated title expression; else the step's name). ``advice``: what the run's
    recommend steps found; ``review``: an unsure classification, its text and suggestion."""
    title = title or step.name or step.id.replace("_", " ").capitalize()
    context: dict[str, Any] = {"input": data["input"], "vars": data["vars"]}
    if isinstance(step, dsl.ApprovalStep):
        kind, form = "approval", [_plain(f) for f in step.form]
    elif isinstance(step, dsl.ChecklistStep):
        kind, form = "checklist", [_plain(i) for i in step.items]
    else:
        assert review is not None
        kind = "review"
        form = [
            {
                "name": "label",
                "type": "choice",
                "label": step.target.capitalize(),
                "options": review["labels"],
                "required": True,
            }
        ]
        context["review"] = review
    if advice:
        context["advice"] = advice
    return {
        "kind": kind,
        "title": title[:2000],
        "form": form,
        "context": context,
        "assignee_role": step.assignee.role,
        "assignee_scope": step.assignee.scope,
    }


def _plain(struct: Any) -> dict[str, Any]:
    plain: dict[str, Any] = msgspec.to_builtins(struct)
    return plain


def approval_output(
    decision: str, actor: str, comment: str | None, answers: dict[str, Any]
) -> dict[str, Any]:
    out = {**answers, "decision": decision, "decided_by": actor}
    if comment:
        out["comment"] = comment
    return out


def decision_output(
    step: dsl.Step, decision: str, actor: str, comment: str | None, answers: dict[str, Any]
) -> tuple[dict[str, Any], str | None, str]:
    """Check a decision against the step; (step output, next step, stored decision)."""
    if isinstance(step, dsl.ApprovalStep):
        if decision not in step.outcomes:
            allowed = ", ".join(sorted(step.outcomes))
            raise InvalidDecision(f"decision must be one of {allowed}, not {decision!r}")
        _check_form(step.form, answers)
        return approval_output(decision, actor, comment, answers), step.outcomes[decision], decision
    if isinstance(step, dsl.ChecklistStep):
        if decision != "submitted":
            raise InvalidDecision(f"a checklist is 'submitted', not {decision!r}")
        failed, out = _check_items(step.items, answers)
        out |= {"failed_items": failed, "completed_by": actor, "decision": "submitted"}
        if comment:
            out["comment"] = comment
        exception = bool(failed) and step.on_exception is not None
        target = step.on_exception if exception else step.next
        return out, target, "exception" if failed else "completed"
    raise InvalidDecision("this step takes no decision")


def review_output(
    step: dsl.ClassifyStep,
    review: dict[str, Any],
    decision: str,
    actor: str,
    comment: str | None,
    answers: dict[str, Any],
) -> tuple[dict[str, Any], str | None, str]:
    """A person's answer to an unsure classification: ``confirmed`` (the suggestion, or
    ``answers.label`` equal to it), ``corrected`` (``answers.label`` another known label),
    or ``reviewed`` (either, told apart by the label). (output, next step, stored decision)"""
    if decision not in ("reviewed", "confirmed", "corrected"):
        raise InvalidDecision(
            f"a review is 'reviewed', 'confirmed' or 'corrected', not {decision!r}"
        )
    unknown = sorted(set(answers) - {"label"})
    if unknown:
        raise InvalidDecision(f"unknown form field(s): {', '.join(unknown)}; give only 'label'")
    suggestion = review.get("suggestion")
    label = answers.get("label") or (suggestion if decision != "corrected" else None)
    labels = review.get("labels") or []
    if not label:
        raise InvalidDecision("form field 'label' is required to correct the suggestion")
    if label not in labels:
        raise InvalidDecision(f"label must be one of {', '.join(labels)}, not {label!r}")
    stored = "confirmed" if label == suggestion else "corrected"
    if decision != "reviewed" and decision != stored:
        raise InvalidDecision(
            f"{decision!r} does not fit label {label!r}: the suggestion was {suggestion!r}"
        )
    output: dict[str, Any] = {
        key: review[key]
        for key in ("confidence", "threshold", "suggestion", "model", "model_version", "input_hash")
        if key in review
    }
    output |= {"label": label, "routed": "review", "decision": stored, "decided_by": actor}
    if comment:
        output["comment"] = comment
    return output, step.next, stored


def decided_figures(
    step: dsl.Step,
    now: datetime,
    due_at: datetime | None,
    answers: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What a closed task adds to its ``task.decided`` event for the SLA reports: its kind,
    whether it closed by its SLA deadline (when it has one) and, for a checklist, how many
    of its items were done (answered and passed) of those due (the required ones, and the
    optional ones answered): a clean submission is complete, an expired one did none."""
    figures: dict[str, Any] = {}
    if due_at is not None:
        figures["within_sla"] = now <= aware(due_at)
    if isinstance(step, dsl.ChecklistStep):
        answers = answers or {}
        answered = sum(1 for i in step.items if answers.get(i.id) is not None)
        failed = len((output or {}).get("failed_items") or ())
        figures |= {
            "task_kind": "checklist",
            # Required items, and optional ones only when answered.
            "items_total": sum(
                1 for i in step.items if i.required or answers.get(i.id) is not None
            ),
            "items_completed": answered - failed,
        }
    else:
        figures["task_kind"] = "review" if isinstance(step, dsl.ClassifyStep) else "approval"
    return figures


def _check_form(form: list[dsl.FormField], answers: dict[str, Any]) -> None:
    fields = {f.name: f for f in form}
    unknown = sorted(set(answers) - set(fields))
    if unknown:
        raise InvalidDecision(f"unknown form field(s): {', '.join(unknown)}")
    for f in form:
        value = answers.get(f.name)
        if value is None or value == "":
            if f.required:
                raise InvalidDecision(f"form field {f.name!r} is required")
            continue
        if f.type == "boolean" and not isinstance(value, bool):
            raise InvalidDecision(f"form field {f.name!r} must be true or false")
        if f.type in ("text", "photo") and not isinstance(value, str):
            raise InvalidDecision(f"form field {f.name!r} must be text")
        if f.type == "choice" and value not in (f.options or []):
            raise InvalidDecision(
                f"form field {f.name!r} must be one of {', '.join(f.options or [])}, not {value!r}"
            )
        if f.type == "number":
            _check_number(f"form field {f.name!r}", value, f.min, f.max, strict=True)


def _check_number(
    what: str, value: Any, low: float | None, high: float | None, *, strict: bool
) -> bool:
    """Whether the number lies in range; a non-number is always refused, an out-of-range
    number refused when ``strict`` (forms) or reported as a failed item (checklists)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidDecision(f"{what} must be a number")
    inside = (low is None or value >= low) and (high is None or value <= high)
    if strict and not inside:
        raise InvalidDecision(f"{what} must be between {low} and {high}, not {value}")
    return inside


def _check_items(
    items: list[dsl.ChecklistItem], answers: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    known = {i.id for i in items}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise InvalidDecision(f"unknown checklist item(s): {', '.join(unknown)}")
    failed: list[str] = []
    out: dict[str, Any] = {}
    for item in items:
        answer = answers.get(item.id)
        if answer is None:
            if item.required:
                raise InvalidDecision(f"checklist item {item.id!r} needs an answer")
            continue
        if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
            raise InvalidDecision(f"checklist item {item.id!r}: give {{'ok': true|false}}")
        evidence = answer.get("evidence")
        ok = answer["ok"]
        if item.evidence != "none" and ok and item.required and evidence in (None, ""):
            raise InvalidDecision(f"checklist item {item.id!r} needs {item.evidence} evidence")
        if evidence not in (None, ""):
            if item.evidence == "number":
                ok = (
                    _check_number(
                        f"checklist item {item.id!r}", evidence, item.min, item.max, strict=False
                    )
                    and ok
                )
            elif not isinstance(evidence, str):
                raise InvalidDecision(f"checklist item {item.id!r}: evidence must be text")
        out[item.id] = evidence if item.evidence != "none" else ok
        if not ok:
            failed.append(item.id)
    return failed, out


def join_holds(join: dsl.Join, succeeded: int, failed: int) -> bool:
    """Whether a parallel step's branches ended well enough to go on."""
    if join.policy == "all":
        return failed == 0
    if join.policy == "any":
        return succeeded > 0 or failed == 0
    if join.policy == "quorum":
        return succeeded >= (join.quorum or 1)
    return True  # collect_failures: the failures are in the output for what follows


async def escalate(engine: Engine, u: Unit) -> int:
    """SLA breaches and escalation rungs that came due; returns how many fired."""
    due = (
        await u.conn.execute(
            state.locked(
                u.conn,
                select(tasks, runs.c.template_hash, runs.c.store, steps.c.step_id)
                .join(runs, runs.c.id == tasks.c.run_id)
                .join(steps, steps.c.id == tasks.c.step_row_id)
                .where(
                    tasks.c.status == "open",
                    (tasks.c.escalate_at <= u.now)
                    | ((tasks.c.due_at <= u.now) & tasks.c.breached_at.is_(None)),
                )
                .limit(200),
                skip=True,
                of=tasks,
            )
        )
    ).all()
    fired = 0
    for t in due:
        plan = await engine._plan(u.conn, t.template_hash)
        step = plan.steps[t.step_id]
        assert isinstance(step, Human)
        store = engine.directory.store(t.store)
        due_at = aware(t.due_at) if t.due_at is not None else None
        escalate_at = aware(t.escalate_at) if t.escalate_at is not None else None
        if due_at is not None and due_at <= u.now and t.breached_at is None:
            await u.conn.execute(update(tasks).where(tasks.c.id == t.id).values(breached_at=u.now))
            who = recipient(
                dsl.Assignee(role=t.assignee_role, scope=t.assignee_scope),
                t.store,
                engine.directory,
            )
            message = f"SLA breached: {t.title} (due {due_at:%Y-%m-%d %H:%M} UTC)"
            await engine._notify(u, t.run_id, t.id, "sla_breach", "email", who, message)
            u.event(
                "task.breached",
                plan,
                run_id=t.run_id,
                store=t.store,
                data={"task_id": str(t.id), "step_id": step.id},
            )
            fired += 1
        if escalate_at is not None and escalate_at <= u.now:
            level = t.escalation_level
            rung = step.escalation[level]
            following = (
                after(step, aware(t.created_at), step.escalation[level + 1].after, store)
                if level + 1 < len(step.escalation)
                else None
            )
            await u.conn.execute(
                update(tasks)
                .where(tasks.c.id == t.id)
                .values(
                    assignee_role=rung.to.role,
                    assignee_scope=rung.to.scope,
                    escalation_level=level + 1,
                    escalate_at=following,
                )
            )
            if rung.notify:
                who = recipient(rung.to, t.store, engine.directory)
                message = f"Escalated to you: {t.title}"
                await engine._notify(u, t.run_id, t.id, "escalation", "email", who, message)
            u.event(
                "task.escalated",
                plan,
                run_id=t.run_id,
                store=t.store,
                data={"task_id": str(t.id), "level": level + 1, "to": rung.to.role},
            )
            fired += 1
    return fired
