"""Fault injection: 503s and 429s apply nothing, latency delays, a lost answer after the
commit is replayed (not re-applied) on retry, and a seed reproduces the same faults."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tenant_runtime.sandbox import FaultRule, SandboxConfig, create_sandbox_app
from tenant_runtime.sandbox.ledger import DuplicateEffect, Ledger
from tests.sandbox.calls import TRANSFER, post, state, stats_of


async def faults(api: httpx.AsyncClient, **rule: Any) -> dict[str, Any]:
    response = await api.post("/_sandbox/faults", json=rule)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def test_an_injected_error_is_503_with_retry_after_and_applies_nothing(
    api: httpx.AsyncClient,
) -> None:
    await faults(api, system="erp", operation="create_transfer_order", error_rate=1.0)
    before = await state(api)

    failed = await post(api, "/erp/create_transfer_order", TRANSFER, key="k")

    assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert await state(api) == before
    await api.delete("/_sandbox/faults")
    retried = await post(api, "/erp/create_transfer_order", TRANSFER, key="k")
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    counts = await stats_of(api, "erp.create_transfer_order")
    assert (counts["injected_errors"], counts["effects_applied"], counts["replays"]) == (1, 1, 0)


async def test_an_injected_rate_limit_is_429_with_its_retry_after(api: httpx.AsyncClient) -> None:
    await faults(api, system="pos", rate_limit_rate=1.0, retry_after_s=7)

    limited = await post(
        api, "/pos/apply_store_price", {"store_id": "S-101", "sku": "SKU-10001", "price": 1.99}
    )
    other_system = await post(
        api, "/erp/get_stock_position", {"store_id": "S-101", "sku": "SKU-10001"}
    )

    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert other_system.status_code == 200
    assert (await state(api))["pos"]["prices"] == {}
    assert (await stats_of(api, "pos.apply_store_price"))["injected_rate_limits"] == 1


async def test_latency_delays_the_answer_and_is_logged(api: httpx.AsyncClient) -> None:
    await faults(api, system="crm", operation="get_customer", latency_ms=60)

    started = time.perf_counter()
    answer = await post(api, "/crm/get_customer", {"customer_id": "CUST-1"})

    assert answer.status_code == 200
    assert time.perf_counter() - started >= 0.06
    assert (await api.get("/_sandbox/log")).json()["entries"][0]["latency_ms"] == 60


async def test_an_answer_lost_after_commit_is_replayed_on_retry_not_reapplied(
    api: httpx.AsyncClient,
) -> None:
    await faults(api, system="payments", operation="refund_payment", drop_after_commit_rate=1.0)
    sale = (
        await post(api, "/erp/get_sales_transaction", {"receipt_id": "R-9", "order_id": ""})
    ).json()
    refund = {"transaction_ref": sale["tender_reference"], "amount": 1.0, "reason": "return RET-9"}

    lost = await post(api, "/payments/refund_payment", refund, key="run-9:refund")
    committed = await state(api)
    retried = await post(api, "/payments/refund_payment", refund, key="run-9:refund")

    assert lost.status_code == 504
    assert len(committed["payments"]["refunds"]) == 1, (
        "the effect was committed before the answer was lost"
    )
    assert retried.status_code == 200 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json()["refund_id"] in committed["payments"]["refunds"]
    assert await state(api) == committed
    log = (await api.get("/_sandbox/log", params={"key": "run-9:refund"})).json()["entries"]
    assert [(e["status"], e["outcome"], e["effect_applied"], e["replay"]) for e in log] == [
        (504, "dropped_after_commit", True, False),
        (200, "replayed", False, True),
    ]
    counts = await stats_of(api, "payments.refund_payment")
    assert counts == counts | {
        "dropped_after_commit": 1,
        "effects_applied": 1,
        "replays": 1,
        "repeated_calls": 1,
        "duplicate_effects": 0,
    }


async def test_a_seed_reproduces_the_same_faults(api: httpx.AsyncClient) -> None:
    async def statuses() -> list[int]:
        await faults(
            api, system="erp", operation="get_stock_position", error_rate=0.3, rate_limit_rate=0.3
        )
        body = {"store_id": "S-101", "sku": "SKU-10001"}
        return [(await post(api, "/erp/get_stock_position", body)).status_code for _ in range(40)]

    first = await statuses()
    await api.post("/_sandbox/reset")
    second = await statuses()
    await api.post("/_sandbox/reset", json={"seed": 1234})
    third = await statuses()

    assert first == second
    assert first != third
    assert {200, 429, 503} <= set(first)


async def test_the_most_specific_rule_wins(api: httpx.AsyncClient) -> None:
    await faults(api, system="*", error_rate=1.0)
    await faults(api, system="erp", error_rate=0.0)
    rules = await faults(api, system="erp", operation="validate_transfer", rate_limit_rate=1.0)

    assert len(rules["rules"]) == 3
    assert (await post(api, "/crm/get_customer", {"customer_id": "C-1"})).status_code == 503
    assert (
        await post(api, "/erp/get_stock_position", {"store_id": "S-1", "sku": "SKU-1"})
    ).status_code == 200
    assert (await post(api, "/erp/validate_transfer", {})).status_code == 429


async def test_a_bad_rule_is_refused(api: httpx.AsyncClient) -> None:
    too_high = await api.post("/_sandbox/faults", json={"system": "erp", "error_rate": 2})
    unknown = await api.post("/_sandbox/faults", json={"system": "mainframe"})
    unknown_op = await api.post("/_sandbox/faults", json={"system": "erp", "operation": "teleport"})
    typo = await api.post("/_sandbox/faults", json={"system": "erp", "eror_rate": 0.5})

    assert too_high.status_code == 422 and "error_rate" in too_high.json()["detail"]
    assert (unknown.status_code, unknown_op.status_code, typo.status_code) == (404, 404, 422)
    assert (await api.get("/_sandbox/faults")).json()["rules"] == []


def test_a_config_naming_an_unknown_operation_is_refused() -> None:
    with pytest.raises(ValueError, match="teleport"):
        create_sandbox_app(SandboxConfig(faults=[FaultRule(system="erp", operation="teleport")]))


def test_the_ledger_refuses_to_apply_a_key_twice() -> None:
    ledger = Ledger()
    ledger.mark_applied(("erp", "create_transfer_order", "k"), 1)
    with pytest.raises(DuplicateEffect, match="applied by request 1 and again by 2"):
        ledger.mark_applied(("erp", "create_transfer_order", "k"), 2)
