"""A Mermaid flowchart of a template's steps (docs pages and the catalog API)."""

from __future__ import annotations

from collections.abc import Iterator

from control_plane.contracts import dsl

_SHAPES = {
    "approval": ('{{"', '"}}'),
    "checklist": ('{{"', '"}}'),
    "decide": ('{"', '"}'),
    "wait": ('(["', '"])'),
    "parallel": ('[["', '"]]'),
}


def _label(step: dsl.Step) -> str:
    kind = type(step).__struct_config__.tag
    detail = ""
    if isinstance(step, dsl.CallStep):
        detail = f"{step.connector}.{step.operation}"
    elif isinstance(step, dsl.ApprovalStep | dsl.ChecklistStep):
        detail = f"{step.assignee.role} ({step.assignee.scope})"
    elif isinstance(step, dsl.ClassifyStep):
        detail = f"{step.target}, review below {step.threshold:g}"
    elif isinstance(step, dsl.WaitStep):
        detail = step.event.type if step.event else f"timer {step.timer}"
    elif isinstance(step, dsl.NotifyStep | dsl.EmitStep):
        detail = step.channel if isinstance(step, dsl.NotifyStep) else step.event
    elif isinstance(step, dsl.ParallelStep):
        detail = f"for each {step.alias}, join {step.join.policy}"
    text = f"{step.id}<br/><i>{kind}</i>" + (f"<br/>{detail}" if detail else "")
    return text.replace('"', "'")


def _edges(step: dsl.Step) -> Iterator[tuple[str, str]]:
    if isinstance(step, dsl.ApprovalStep):
        yield from ((target, decision) for decision, target in step.outcomes.items())
    if isinstance(step, dsl.DecideStep):
        for branch in step.branches:
            yield branch.next, branch.when
        yield step.default, "otherwise"
    for name, label in (("next", ""), ("on_exception", "exception"), ("on_timeout", "timeout")):
        target = getattr(step, name, None)
        if target:
            yield target, label
    if step.on_error != dsl.FAIL:
        yield step.on_error, "error"


def mermaid(template: dsl.Template) -> str:
    lines = ["flowchart TD", "  start_([start])"]
    first = template.start or template.steps[0].id
    lines.append(f"  start_ --> {first}")
    lines.extend(_flow(template.steps, "  "))
    lines.append("  end_([end])")
    return "\n".join(lines) + "\n"


def _flow(steps: list[dsl.Step], indent: str) -> Iterator[str]:
    for step in steps:
        open_, close = _SHAPES.get(str(type(step).__struct_config__.tag), ('["', '"]'))
        yield f"{indent}{step.id}{open_}{_label(step)}{close}"
        if isinstance(step, dsl.ParallelStep):
            yield f"{indent}subgraph {step.id}_each [each {step.alias}]"
            yield from _flow(step.steps, indent + "  ")
            yield f"{indent}end"
            yield f"{indent}{step.id} -.-> {step.steps[0].id}"
        targets = list(_edges(step))
        if not targets and not isinstance(step, dsl.DecideStep):
            targets = [(dsl.END, "")]
        for target, label in targets:
            node = (
                "end_"
                if target == dsl.END
                else ("fail_([failed])" if target == dsl.FAIL else target)
            )
            text = label.replace('"', "'").replace("|", "/")
            yield (
                f'{indent}{step.id} -->|"{text}"| {node}'
                if text
                else f"{indent}{step.id} --> {node}"
            )
