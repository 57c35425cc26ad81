"""Runs every call of a template against the sandbox in file order (compensations last,
newest first), as the engine would along its paths: an input that is a plain
``steps.<id>.output.<field>`` (or ``.map(x, x.f)`` of one, or a parallel alias field)
takes the earlier answer; anything else gets a plausible value named after its key."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.sandbox.library import Call, Template

_REF = re.compile(r"steps\.(\w+)\.output\.(\w+)")
_MAP = re.compile(r"^steps\.(\w+)\.output\.(\w+)\.map\((\w+),\s*\3\.(\w+)\)$")
_ALIAS = re.compile(r"^(\w+)\.(\w+)$")

SAMPLES: dict[str, Any] = {
    "store_id": "S-101",
    "store": "S-101",
    "ship_to": "S-101",
    "to_store": "S-101",
    "from_location": "DC-NORTH",
    "sku": "SKU-10001",
    "skus": ["SKU-10001", "SKU-70001"],
    "quantity": 3,
    "lines": [{"sku": "SKU-10001", "quantity": 1}],
    "order_id": "WEB-5001",
    "original_order_id": "WEB-5001",
    "customer_id": "CUST-20001",
    "count_id": "CC-7001",
    "change_id": "PC-9001",
    "receipt_id": "R-3001",
    "return_id": "RET-3001",
    "shift_id": "SH-4001",
    "employee_id": "E-2001",
    "employee_ids": ["E-2001", "E-2002"],
    "asset_id": "AST-10001",
    "case_id": "",
    "supplier_id": "SUP-1002",
    "vendor_id": "FAC-GENERAL",
    "week_of": "2026-06-03",
    "category": "refrigeration",
    "priority": "P2",
    "region": "NE",
    "price": 1.5,
    "new_price": 1.5,
    "amount": 1.0,
    "value": 42.0,
    "points": 500,
    "hours": 2.0,
    "cost": 180.0,
    "not_to_exceed": 750.0,
    "max_weekly_hours": 48,
    "limit": 5,
    "days": 7,
    "sample_size": 20,
    "print_labels": True,
    "include_nearby_stores": True,
    "readings": {"chilled": 9.5, "frozen": -12.0},
    "failed_items": ["chiller_temp"],
    "disposition": "restock",
    "status": "deployed",
    "eta": "2026-06-04T10:00:00Z",
    "effective_from": "2030-01-01T00:00:00Z",
}


@dataclass
class Walk:
    template: Template
    #: call step id -> its answer (the first call of a step; compensations are not stored)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (step id, operation, status, answer) in order
    answers: list[tuple[str, str, int, Any]] = field(default_factory=list)


def value(call: Call, key: str, expr: str, walk: Walk) -> Any:
    expr = str(expr).strip()
    literal = _literal(expr)
    if literal is not _NONE:
        return literal
    mapped = _MAP.match(expr)
    if mapped and mapped.group(1) in walk.outputs:
        items = walk.outputs[mapped.group(1)].get(mapped.group(2)) or []
        if items:
            return [item[mapped.group(4)] for item in items]
    refs = {ref for ref in _REF.findall(expr) if ref[0] in walk.outputs}
    if len(refs) == 1 and not mapped:
        step_id, name = refs.pop()
        return walk.outputs[step_id][name]
    alias = _ALIAS.match(expr)
    if alias and alias.group(1) in walk.template.aliases:
        step_id, name = walk.template.aliases[alias.group(1)]
        items = walk.outputs.get(step_id, {}).get(name) or []
        if items:
            return items[0][alias.group(2)]
    return sample(key, walk)


_NONE = object()


def _literal(expr: str) -> Any:
    """CEL literals: 'text', true, false, numbers, []."""
    if re.fullmatch(r"'[^']*'", expr):
        return expr[1:-1]
    if expr in ("true", "false"):
        return expr == "true"
    if re.fullmatch(r"-?\d+", expr):
        return int(expr)
    if re.fullmatch(r"-?\d+\.\d*", expr):
        return float(expr)
    return [] if expr == "[]" else _NONE


def sample(key: str, walk: Walk) -> Any:
    earlier = [out for out in walk.outputs.values()]
    if key == "lines":
        for out in reversed(earlier):
            if isinstance(out.get("lines"), list) and out["lines"]:
                return [
                    {
                        k: v
                        for k, v in line.items()
                        if k in ("sku", "quantity", "unit_price", "description")
                    }
                    for line in out["lines"]
                ]
    if key.endswith("store_ids"):
        for out in earlier:
            if isinstance(out.get("stores"), list) and out["stores"]:
                return [out["stores"][0]["id"]]
    if key in SAMPLES:
        return SAMPLES[key]
    if key.endswith("_ids"):
        return [f"{key[:-4].upper()}-1"]
    if key.endswith("_id"):
        return f"{key[:-3].upper()}-1"
    return f"sample {key}"


async def run(
    client: httpx.AsyncClient,
    template: Template,
    prepare: Callable[[], None] = lambda: None,
    compensations: bool = True,
) -> Walk:
    """All calls in order; then each compensation, in a reset sandbox, right after the
    calls up to the step it undoes (where a ``compensate`` step would run it)."""
    prepare()
    walk = Walk(template)
    calls = [c for c in template.calls if c.compensates is None]
    for call in calls:
        await _call(client, walk, call)
    for undo in [c for c in template.calls if c.compensates is not None] if compensations else []:
        await client.post("/_sandbox/reset")
        prepare()
        prefix = Walk(template)
        for call in calls[: [c.step_id for c in calls].index(undo.compensates or "") + 1]:
            await _call(client, prefix, call)
        walk.outputs.update({k: v for k, v in prefix.outputs.items() if k not in walk.outputs})
        await _call(client, prefix, undo)
        walk.answers.append(prefix.answers[-1])
    return walk


async def _call(client: httpx.AsyncClient, walk: Walk, call: Call) -> None:
    body = {key: value(call, key, expr, walk) for key, expr in call.input.items()}
    response = await client.post(
        f"/{call.system}/{call.operation}",
        json=body,
        headers={
            "Idempotency-Key": (
                f"{walk.template.id}@{walk.template.version}:{call.step_id}:{call.operation}"
            )
        },
    )
    answer = response.json()
    walk.answers.append((call.step_id, call.operation, response.status_code, answer))
    if call.compensates is None and response.status_code == 200:
        walk.outputs.setdefault(call.step_id, answer)
