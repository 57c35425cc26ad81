"""An expression that cannot be evaluated at run time (a field the system of record did
not send) fails its step like any other failure: never a task titled with the error, a
payload carrying it, or a step left running."""

from __future__ import annotations

from control_plane.contracts.validate import lint
from tests.templates.harness import TEMPLATES, Harness

TRANSFER = {"sku": "SKU-20001", "from_location": "DC-SOUTH", "to_store": "S-101", "quantity": 5}


def variant(old: str, new: str) -> str:
    text = (TEMPLATES / "stock-transfer-approval" / "1.0.0.yaml").read_text()
    assert old in text
    return text.replace(old, new)


async def test_an_automatic_decision_on_a_missing_field_fails_the_step(h: Harness) -> None:
    text = variant(
        "when: vars.transfer_value < double(params.auto_approve_below)",
        "when: double(steps.validate.output.landed_cost) < double(params.auto_approve_below)",
    )
    template, problems = lint(text, "stock-transfer-approval/1.0.0.yaml")
    assert template is not None and not problems, problems
    run = await h.engine.start(template, {}, TRANSFER, store="S-101")
    await h.settle()

    assert await h.status(run) == "failed"
    [letter] = await h.dead_letters(run)
    assert letter.step_id == "review" and "landed_cost" in letter.reason
    assert await h.tasks(run) == []


async def test_a_title_on_a_missing_field_fails_the_step(h: Harness) -> None:
    text = variant("+ ' x ' + input.sku", "+ ' x ' + input.sku + steps.validate.output.batch")
    template, problems = lint(text, "stock-transfer-approval/1.0.0.yaml")
    assert template is not None and not problems, problems
    run = await h.engine.start(template, {}, {**TRANSFER, "quantity": 12}, store="S-101")
    await h.settle()

    assert await h.status(run) == "failed"
    [letter] = await h.dead_letters(run)
    assert letter.step_id == "review" and "batch" in letter.reason
    assert await h.tasks(run) == []
