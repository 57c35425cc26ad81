"""The triage step kinds as a template author meets them: what lints and what does not."""

from __future__ import annotations

from control_plane.contracts.validate import lint

HEAD = """
id: incident-advice
name: Incident advice
version: 1.0.0
category: maintenance
owner: platform
summary: Classify a store incident and recommend from resolved ones.
triggers: [{kind: api}]
steps:
"""
CLASSIFY = """
  - id: triage
    kind: classify
    text: input.description
    target: category
    threshold: 0.6
    assignee: {role: regional_manager, scope: region}
    sla: {duration: 30m, calendar: wall}
    next: advise
"""
RECOMMEND = """
  - id: advise
    kind: recommend
    text: input.description
    label: steps.triage.output.label
    context: {store: run.store}
    outcome: {fixed: "'advise' in steps"}
    resolution: "'repaired'"
"""


#: The recommend step with no classify step before it.
ALONE = RECOMMEND.replace("steps.triage.output.label", "input.kind")


def problems(text: str) -> list[tuple[str, str]]:
    _, found = lint(text, "incident-advice/1.0.0.yaml")
    return [(p.field, p.message) for p in found]


def test_classify_then_recommend_lints() -> None:
    assert problems(HEAD + CLASSIFY + RECOMMEND) == []


def test_bad_triage_steps_are_refused_where_they_are_written() -> None:
    bad = (HEAD + CLASSIFY + RECOMMEND).replace("threshold: 0.6", "threshold: 1.5")
    assert any("threshold" in f for f, _ in problems(bad))
    unknown = (HEAD + CLASSIFY + RECOMMEND).replace("target: category", "target: colour")
    assert any("target" in f for f, _ in problems(unknown))
    typo = (HEAD + CLASSIFY + RECOMMEND).replace("steps.triage.output.label", "steps.triag.output")
    assert ("steps[1].label", "steps.triag: no such step") in problems(typo)
    zero = (HEAD + CLASSIFY + RECOMMEND).replace("duration: 30m", "duration: 0s")
    assert ("steps[0].sla.duration", "a duration must be longer than 0s") in problems(zero)


def test_a_run_is_one_case_one_recommend_step_in_the_main_flow() -> None:
    twice = (
        HEAD + CLASSIFY + RECOMMEND.replace("    resolution:", "    next: again\n    resolution:")
    )
    twice += RECOMMEND.replace("id: advise", "id: again")
    assert [m for _, m in problems(twice)] == [
        "one recommend step per template (the run is one case); 'advise' is the first"
    ]
    nested = (
        HEAD
        + """
  - id: each
    kind: parallel
    over: input.items
    steps:
"""
        + "\n".join("    " + line for line in ALONE.strip("\n").splitlines())
    )
    assert [m for _, m in problems(nested)] == [
        "a recommend step belongs in the main flow, not a parallel step"
    ]
