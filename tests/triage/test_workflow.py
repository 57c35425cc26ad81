"""Triage inside a workflow: the maintenance-incident template (1.2.0) classifies the
description and recommends from resolved cases. A confident case routes itself, an unsure
one waits for a person; both are audited, and the person's answer teaches this tenant."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from tenant_runtime.db.schema import ai_decisions, triage_cases, triage_examples
from tenant_runtime.engine.executor import InvalidDecision
from tests.templates.harness import Harness

CONFIDENT = "Dairy chiller at 9°C and rising, alarm beeping"
UNSURE = "Something is not right at the back of the shop, please send someone"


def incident(description: str, category: str = "refrigeration") -> dict[str, str]:
    return {
        "category": category,
        "asset_id": "AST-10001",
        "description": description,
        "reported_by": "store app",
    }


async def decisions(h: Harness) -> list[dict[str, object]]:
    async with h.db.connect() as conn:
        rows = await conn.execute(select(ai_decisions).order_by(ai_decisions.c.created_at))
        return [dict(r._mapping) for r in rows]


async def test_a_confident_case_routes_itself_and_an_unsure_one_waits_for_a_person(
    h: Harness,
) -> None:
    sure = await h.start("maintenance-incident", incident(CONFIDENT))
    triage = await h.output(sure, "triage")
    assert triage["routed"] == "auto" and triage["label"] == "refrigeration"
    assert triage["confidence"] >= triage["threshold"] == 0.6
    # Routed on: dispatched at once as P1 (refrigeration is critical), the store signs off.
    assert (await h.task(sure)).kind == "checklist"
    assert (await h.output(sure, "prioritise"))["priority"] == "P1"

    unsure = await h.start("maintenance-incident", incident(UNSURE, category="other"))
    review = await h.task(unsure)
    assert review.kind == "review" and review.assignee_role == "regional_manager"
    assert review.title.startswith("Check the category of incident")
    suggestion = review.context["review"]
    assert suggestion["confidence"] < 0.6 and suggestion["text"] == UNSURE
    assert "building_plumbing" in review.form[0]["options"]
    assert "dispatch" not in await h.path(unsure)  # nothing happens before the person decides

    with pytest.raises(InvalidDecision, match="label must be one of"):
        await h.engine.decide(
            review.id, decision="reviewed", actor="rm@example.com", answers={"label": "plumbin"}
        )
    await h.decide(unsure, "corrected", actor="rm@example.com", label="building_plumbing")
    reviewed = await h.output(unsure, "triage")
    assert (reviewed["routed"], reviewed["label"], reviewed["decision"]) == (
        "review",
        "building_plumbing",
        "corrected",
    )
    assert reviewed["suggestion"] == suggestion["suggestion"] != "building_plumbing"
    assert (await h.output(unsure, "prioritise"))["priority"] != "P1"

    audit = await decisions(h)
    classified = [d for d in audit if d["kind"] == "classify"]
    assert [d["run_id"] for d in classified] == [sure, unsure]
    first, second = classified
    for row, text in ((first, CONFIDENT), (second, UNSURE)):
        assert row["input_hash"] == hashlib.sha256(text.encode()).hexdigest()
        assert row["model"] == "tfidf-svm" and row["model_version"].startswith("1+")
        assert row["threshold"] == 0.6 and row["step_id"] == "triage"
        assert row["template_version"] == "1.2.0"
    assert (first["routed"], first["label"], first["decision"], first["final_label"]) == (
        "auto",
        "refrigeration",
        None,
        None,
    )
    assert (second["routed"], second["decision"], second["final_label"]) == (
        "review",
        "corrected",
        "building_plumbing",
    )
    assert second["decided_by"] == "rm@example.com" and second["task_id"] == review.id
    assert second["label"] == suggestion["suggestion"]
    # Both runs also asked for a recommendation: audited as advice.
    assert [d["routed"] for d in audit if d["kind"] == "recommend"] == ["advice", "advice"]

    # The correction is now one of this tenant's labelled examples.
    async with h.db.connect() as conn:
        learnt = (await conn.execute(select(triage_examples))).all()
    assert [(e.text, e.label, e.source) for e in learnt] == [
        (UNSURE, "building_plumbing", "review")
    ]
    # ... and the model, trained again, has learnt it.
    again = await h.engine.triage.classify("category", UNSURE)
    assert again.label == "building_plumbing"
    assert again.model_version != second["model_version"]


async def test_a_resolved_case_is_recommended_to_the_next_similar_incident(h: Harness) -> None:
    first = await h.start("maintenance-incident", incident(CONFIDENT))
    assert (await h.output(first, "advise"))["similar"] == []  # nothing resolved yet
    await h.submit(first)
    assert await h.status(first) == "succeeded"
    async with h.db.connect() as conn:
        [case] = (await conn.execute(select(triage_cases))).all()
    assert (case.run_id, case.status, case.label) == (first, "resolved", "refrigeration")
    assert case.resolution.startswith("vendor FAC-POS")
    assert case.outcome["vendor"] == "FAC-POS" and case.outcome["reopened"] is False

    second = await h.start(
        "maintenance-incident",
        incident("Milk chiller warm again and the temperature alarm is beeping"),
    )
    advice = await h.output(second, "advise")
    [similar] = advice["similar"]
    assert similar["run_id"] == str(first) and similar["similarity"] > 0.3
    assert advice["resolutions"] == [{"resolution": case.resolution, "count": 1, "share": 1.0}]
    assert advice["context"]["priority"] == "P1"
    assert advice["context"]["asset"]["asset_id"] == "AST-10001"
    # It fills the next task a person sees: the store's sign-off.
    sign_off = await h.task(second)
    assert sign_off.context["advice"]["advise"]["similar"][0]["run_id"] == str(first)


async def test_an_unreviewed_case_goes_on_with_the_reporters_category(h: Harness) -> None:
    run = await h.start("maintenance-incident", incident(UNSURE, category="pos_outage"))
    assert (await h.task(run)).kind == "review"
    await h.advance(timedelta(hours=4, minutes=1))  # escalated after 1 h, expired after 4 h
    # The reporter's category stands (and is critical in the service desk's own words).
    assert (await h.output(run, "reported_category"))["category"] == "pos_outage"
    assert (await h.output(run, "prioritise"))["priority"] == "P1"
    await h.submit(run)
    assert await h.status(run) == "succeeded"
    [(_, payload)] = await h.emitted(run)
    assert payload["triaged"] == "reporter" and payload["category"] == "pos_outage"
    [audited] = [d for d in await decisions(h) if d["kind"] == "classify"]
    assert (audited["routed"], audited["decision"], audited["final_label"]) == (
        "review",
        "expired",
        None,
    )


async def test_a_safety_risk_is_never_held_for_a_review(h: Harness) -> None:
    text = "Water leak from the ceiling onto the shop floor near the tills"
    run = await h.start("maintenance-incident", incident(text, category="plumbing"))
    path = await h.path(run)
    assert "triage" not in path and "reported_category" in path
    assert (await h.output(run, "prioritise"))["priority"] == "P1"
    assert (await h.task(run)).kind == "checklist"  # dispatched at once: the store signs off
    assert [d["kind"] for d in await decisions(h)] == ["recommend"]
