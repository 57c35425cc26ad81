"""Idempotency like a careful ERP API, the request log and stats the crash tests count
from, routing and input errors, reset, and the command that serves the sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tenant_runtime.sandbox import FaultRule, Sandbox, SandboxConfig
from tenant_runtime.sandbox import __main__ as entry
from tests.sandbox.calls import TRANSFER, post, state, stats_of


async def test_a_repeated_key_replays_the_first_answer_and_applies_nothing(
    api: httpx.AsyncClient,
) -> None:
    first = await post(api, "/erp/create_transfer_order", TRANSFER, key="run-1:create_order")
    before = await state(api)

    again = await post(api, "/erp/create_transfer_order", TRANSFER, key="run-1:create_order")

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await state(api) == before
    assert list(before["erp"]["transfer_orders"]) == [first.json()["order_id"]]
    log = (await api.get("/_sandbox/log")).json()["entries"]
    assert [(e["key"], e["replay"], e["effect_applied"], e["outcome"]) for e in log] == [
        ("run-1:create_order", False, True, "applied"),
        ("run-1:create_order", True, False, "replayed"),
    ]
    assert log[1]["first_seq"] == log[0]["seq"]
    assert log[0]["body_hash"] == log[1]["body_hash"]


async def test_the_same_body_in_another_key_order_is_the_same_body(api: httpx.AsyncClient) -> None:
    await api.post(
        "/erp/create_transfer_order",
        content=b'{"sku":"SKU-10001","quantity":4}',
        headers={"Idempotency-Key": "k"},
    )
    again = await api.post(
        "/erp/create_transfer_order",
        content=b'{"quantity": 4, "sku": "SKU-10001"}',
        headers={"Idempotency-Key": "k"},
    )
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_the_same_key_with_another_body_is_422_and_applies_nothing(
    api: httpx.AsyncClient,
) -> None:
    await post(api, "/erp/create_transfer_order", TRANSFER, key="k1")
    before = await state(api)

    other = await post(api, "/erp/create_transfer_order", {**TRANSFER, "quantity": 5}, key="k1")

    assert other.status_code == 422
    assert other.headers["content-type"].startswith("application/problem+json")
    assert other.json()["type"].endswith("idempotency-key-reused")
    assert "k1" in other.json()["detail"]
    assert await state(api) == before
    counts = await stats_of(api, "erp.create_transfer_order")
    assert (counts["effects_applied"], counts["key_conflicts"], counts["replays"]) == (1, 1, 0)


async def test_keys_are_scoped_per_operation_and_unkeyed_writes_apply_each_time(
    api: httpx.AsyncClient,
) -> None:
    order = (await post(api, "/erp/create_transfer_order", TRANSFER, key="shared")).json()[
        "order_id"
    ]
    cancelled = await post(api, "/erp/cancel_transfer_order", {"order_id": order}, key="shared")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"

    await post(api, "/erp/create_transfer_order", TRANSFER)
    await post(api, "/erp/create_transfer_order", TRANSFER)

    assert len((await state(api))["erp"]["transfer_orders"]) == 3
    counts = await stats_of(api, "erp.create_transfer_order")
    assert (counts["effects_applied"], counts["unkeyed_effects"], counts["distinct_keys"]) == (
        3,
        2,
        1,
    )


async def test_concurrent_requests_with_one_key_apply_once(
    api: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.faults.set(FaultRule(system="erp", operation="create_transfer_order", latency_ms=20))

    answers = await asyncio.gather(
        *(post(api, "/erp/create_transfer_order", TRANSFER, key="race") for _ in range(10))
    )

    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["order_id"] for a in answers}) == 1
    counts = await stats_of(api, "erp.create_transfer_order")
    assert (counts["requests"], counts["effects_applied"], counts["replays"]) == (10, 1, 9)
    assert counts["repeated_calls"] == 9 and counts["duplicate_effects"] == 0


async def test_a_refused_write_is_remembered_under_its_key_and_applies_nothing(
    api: httpx.AsyncClient,
) -> None:
    missing = await post(api, "/erp/cancel_transfer_order", {"order_id": "TO-1"}, key="c1")
    again = await post(api, "/erp/cancel_transfer_order", {"order_id": "TO-1"}, key="c1")

    assert missing.status_code == again.status_code == 404
    assert again.headers["Idempotent-Replayed"] == "true"
    counts = await stats_of(api, "erp.cancel_transfer_order")
    assert (counts["rejected"], counts["replays"], counts["effects_applied"]) == (1, 1, 0)


async def test_stats_count_requests_keys_replays_and_effects_per_operation(
    api: httpx.AsyncClient,
) -> None:
    for key in ("a", "a", "b", "a"):
        await post(api, "/erp/create_transfer_order", TRANSFER, key=key)
    await post(api, "/erp/create_transfer_order", {**TRANSFER, "quantity": 9}, key="b")
    for _ in range(3):
        await post(
            api, "/erp/get_stock_position", {"store_id": "S-101", "sku": "SKU-10001"}, key="r"
        )

    stats = (await api.get("/_sandbox/stats")).json()
    create = stats["operations"]["erp.create_transfer_order"]
    assert create == create | {
        "requests": 5,
        "keyed_requests": 5,
        "distinct_keys": 2,
        "repeated_keys": 2,
        "repeated_calls": 3,
        "replays": 2,
        "key_conflicts": 1,
        "effects_applied": 2,
        "duplicate_effects": 0,
    }
    read = stats["operations"]["erp.get_stock_position"]
    assert (read["requests"], read["reads"], read["replays"], read["effects_applied"]) == (
        3,
        1,
        2,
        0,
    )
    assert stats["totals"]["requests"] == 8
    assert stats["totals"]["effects_applied"] == 2
    assert stats["totals"]["distinct_keys"] == 3


async def test_the_log_filters_by_operation_key_and_sequence(api: httpx.AsyncClient) -> None:
    await post(api, "/erp/create_transfer_order", TRANSFER, key="x")
    await post(api, "/erp/get_stock_position", {"store_id": "S-101", "sku": "SKU-10001"})
    await post(api, "/erp/create_transfer_order", TRANSFER, key="x")

    by_key = (await api.get("/_sandbox/log", params={"key": "x"})).json()
    later = (
        await api.get("/_sandbox/log", params={"after": 1, "operation": "get_stock_position"})
    ).json()
    assert [e["seq"] for e in by_key["entries"]] == [1, 3]
    assert [e["seq"] for e in later["entries"]] == [2]
    assert later["entries"][0]["key"] is None


async def test_unknown_systems_and_operations_are_404_listing_what_exists(
    api: httpx.AsyncClient,
) -> None:
    system = await post(api, "/mainframe/get_order", {})
    operation = await post(api, "/erp/teleport_stock", {})

    assert system.status_code == operation.status_code == 404
    assert "erp" in system.json()["systems"] and "payments" in system.json()["systems"]
    assert "create_transfer_order" in operation.json()["operations"]
    assert "teleport_stock" in operation.json()["detail"]
    catalog = (await api.get("/_sandbox/operations")).json()
    assert catalog["erp"]["operations"]["create_transfer_order"]["effect"] is True
    assert catalog["erp"]["operations"]["validate_transfer"]["effect"] is False


async def test_bad_bodies_say_what_is_wrong(api: httpx.AsyncClient) -> None:
    not_json = await api.post("/erp/validate_transfer", content=b"{nope")
    not_object = await api.post("/erp/validate_transfer", json=[1, 2])
    missing = await post(api, "/erp/validate_transfer", {"sku": "SKU-10001", "quantity": 2})
    wrong = await post(
        api,
        "/erp/validate_transfer",
        {"sku": "SKU-10001", "quantity": "lots", "from_location": "S-1", "to_store": "S-2"},
    )
    bad_key = await post(api, "/erp/validate_transfer", {}, key="has spaces")

    assert (not_json.status_code, not_object.status_code, bad_key.status_code) == (400, 400, 400)
    assert missing.status_code == 422 and missing.json()["field"] == "from_location"
    assert wrong.status_code == 422 and "number" in wrong.json()["detail"]


async def test_reset_forgets_everything_and_regenerates_the_same_data(
    api: httpx.AsyncClient,
) -> None:
    count = {"count_id": "CC-1", "store_id": "S-105"}
    first = (await post(api, "/erp/get_cycle_count", count)).json()
    await post(api, "/erp/create_transfer_order", TRANSFER, key="k")
    await api.post("/_sandbox/faults", json={"system": "erp", "error_rate": 1.0})

    assert (await api.post("/_sandbox/reset")).json() == {"seed": 7}

    assert (await api.get("/_sandbox/log")).json()["count"] == 0
    assert (await api.get("/_sandbox/faults")).json()["rules"] == []
    assert (await post(api, "/erp/get_cycle_count", count)).json() == first
    assert (await post(api, "/erp/create_transfer_order", TRANSFER, key="k")).json()[
        "order_id"
    ] == "TO-100001"
    reseeded = (await api.post("/_sandbox/reset", json={"seed": 8})).json()
    assert reseeded == {"seed": 8}
    assert (await post(api, "/erp/get_cycle_count", count)).json() != first


async def test_a_key_in_the_body_counts_when_no_header_is_sent(api: httpx.AsyncClient) -> None:
    sale = (
        await post(api, "/erp/get_sales_transaction", {"receipt_id": "R-5", "order_id": ""})
    ).json()
    refund = {
        "transaction_ref": sale["tender_reference"],
        "amount": 1.0,
        "idempotency_key": "run-5",
    }

    first = await post(api, "/payments/refund_payment", refund)
    again = await post(api, "/payments/refund_payment", refund)

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["refund_id"] == first.json()["refund_id"]
    assert (await stats_of(api, "payments.refund_payment"))["effects_applied"] == 1


def test_the_module_command_serves_with_its_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served: list[tuple[str, int, SandboxConfig | None]] = []
    monkeypatch.setattr(
        entry, "serve", lambda host, port, config: served.append((host, port, config))
    )
    config_file = tmp_path / "sandbox.json"
    config_file.write_text('{"seed": 3, "faults": [{"system": "erp", "error_rate": 0.1}]}')

    entry.main(
        ["--host", "10.1.2.3", "--port", "9911", "--config", str(config_file), "--seed", "5"]
    )

    ((host, port, config),) = served
    assert (host, port) == ("10.1.2.3", 9911)
    assert config is not None and config.seed == 5 and config.faults[0].error_rate == 0.1
