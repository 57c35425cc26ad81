"""Every operation every library template uses is served, answers 200 along the
template's own call order, and returns every field the template reads from it."""

from __future__ import annotations

import httpx
import pytest

from tenant_runtime.sandbox import SYSTEMS, Sandbox
from tenant_runtime.sandbox.data import DCS, ITEMS, STORES, dc_available, stock
from tests.sandbox.library import TEMPLATES, Template
from tests.sandbox.walk import run


def test_the_library_is_found() -> None:
    assert len(TEMPLATES) >= 11
    assert all(t.calls for t in TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: f"{t.id}@{t.version}")
def test_every_declared_operation_is_served(template: Template) -> None:
    missing = sorted(
        f"{system}.{op}"
        for system, op in template.declared | {(c.system, c.operation) for c in template.calls}
        if op not in (SYSTEMS[system].operations if system in SYSTEMS else {})
    )
    assert not missing, f"{template.id} uses operations the sandbox lacks: {', '.join(missing)}"


def _stock_up(sandbox: Sandbox) -> None:
    """Replacements and DC orders only run when stock allows; give every store plenty."""
    w = sandbox.world
    for store in STORES:
        for sku in ITEMS:
            level = stock(w, store, sku)
            level.on_hand = max(level.on_hand, 60)
    for dc in DCS:
        for sku in ITEMS:
            w.wms.dc_stock[dc][sku] = max(dc_available(w, dc, sku), 500)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: f"{t.id}@{t.version}")
async def test_every_call_answers_with_the_fields_the_template_reads(
    template: Template, api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    walk = await run(api, template, prepare=lambda: _stock_up(sandbox))

    failed = [(step, op, status, body) for step, op, status, body in walk.answers if status != 200]
    assert not failed, f"{template.id}: calls that did not answer 200: {failed}"
    for step_id, fields in template.reads.items():
        answer = walk.outputs[step_id]
        missing = sorted(fields - set(answer))
        assert not missing, f"{template.id}: {step_id} lacks {missing} in {sorted(answer)}"
    for (step_id, list_field), fields in template.item_reads.items():
        items = walk.outputs[step_id][list_field]
        assert isinstance(items, list) and items, f"{template.id}: {step_id}.{list_field} is empty"
        for item in items:
            assert fields <= set(item), (
                f"{template.id}: {step_id}.{list_field} item lacks {fields - set(item)}"
            )


async def test_every_write_of_the_library_is_counted_once(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    # Each version walks a fresh world: two versions of a template make the same business
    # changes, and the systems of record rightly apply a change already made only once.
    for template in TEMPLATES:
        (await api.post("/_sandbox/reset", json={})).raise_for_status()
        await run(api, template, prepare=lambda: _stock_up(sandbox), compensations=False)
        totals = (await api.get("/_sandbox/stats")).json()["totals"]
        calls = [c for c in template.calls if c.compensates is None]
        writes = sum(1 for c in calls if SYSTEMS[c.system].operations[c.operation].mutates)
        where = f"{template.id}@{template.version}"
        assert totals["effects_applied"] == writes, where
        assert totals["duplicate_effects"] == 0, where
        assert totals["requests"] == len(calls), where
        assert totals["replays"] == 0, where
