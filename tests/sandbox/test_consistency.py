"""State stays consistent across create / cancel / read, inside a system and across
systems (a sale's tender is the gateway's transaction), and effects queue the events the
systems would send."""

from __future__ import annotations

import httpx

from tests.sandbox.calls import TRANSFER, post


async def test_creating_then_cancelling_leaves_stock_as_it_was(api: httpx.AsyncClient) -> None:
    position = {"store_id": "S-101", "sku": "SKU-20001"}
    before = (await post(api, "/erp/get_stock_position", position)).json()

    po = (
        await post(
            api,
            "/erp/create_purchase_order",
            {"supplier_id": "SUP-1002", "ship_to": "S-101", "sku": "SKU-20001", "quantity": 8},
        )
    ).json()
    ordered = (await post(api, "/erp/get_stock_position", position)).json()
    cancelled = await post(
        api, "/erp/cancel_purchase_order", {"po_number": po["po_number"], "reason": "test"}
    )
    after = (await post(api, "/erp/get_stock_position", position)).json()

    assert ordered["on_order"] == before["on_order"] + 8
    assert cancelled.json()["status"] == "cancelled"
    assert after == before
    sent = await post(api, "/erp/transmit_purchase_order", {"po_number": po["po_number"]})
    assert sent.status_code == 409


async def test_a_transfer_allocates_at_the_source_until_cancelled(api: httpx.AsyncClient) -> None:
    source = {"store_id": "S-102", "sku": "SKU-70002"}
    free = (
        await post(
            api,
            "/erp/validate_transfer",
            {"sku": "SKU-70002", "quantity": 1, "from_location": "S-102", "to_store": "S-101"},
        )
    ).json()
    order = (
        await post(
            api,
            "/erp/create_transfer_order",
            {
                "sku": "SKU-70002",
                "quantity": free["available"],
                "from_location": "S-102",
                "to_store": "S-101",
            },
        )
    ).json()
    none_left = await post(
        api,
        "/erp/create_transfer_order",
        {"sku": "SKU-70002", "quantity": 1, "from_location": "S-102", "to_store": "S-101"},
    )
    assert none_left.status_code == 409
    assert (await post(api, "/erp/get_stock_position", source)).json()["allocated"] == free[
        "available"
    ]

    await post(api, "/erp/cancel_transfer_order", {"order_id": order["order_id"]})
    assert (await post(api, "/erp/get_stock_position", source)).json()["allocated"] == 0
    review = await post(api, "/wms/review_transfer", {"order_id": order["order_id"]})
    assert review.status_code == 409


async def test_a_markdown_and_its_cancellation_move_price_and_budget(
    api: httpx.AsyncClient,
) -> None:
    ask = {
        "store_id": "S-101",
        "sku": "SKU-30001",
        "quantity": 2,
        "new_price": 49.0,
        "reason": "damaged_packaging",
    }
    before = (await post(api, "/erp/validate_markdown", ask)).json()
    md = (await post(api, "/erp/create_markdown", {**ask, "price": 49.0})).json()
    during = (await post(api, "/erp/validate_markdown", {**ask, "new_price": 40.0})).json()
    await post(api, "/erp/cancel_markdown", {"markdown_id": md["markdown_id"]})
    after = (await post(api, "/erp/validate_markdown", ask)).json()

    assert md["value"] == (before["current_price"] - 49.0) * 2
    assert during["current_price"] == 49.0
    assert during["budget_remaining"] == round(before["budget_remaining"] - md["value"], 2)
    assert after == before


async def test_refunds_never_exceed_what_was_paid(api: httpx.AsyncClient) -> None:
    sale = (
        await post(api, "/erp/get_sales_transaction", {"receipt_id": "R-77", "order_id": ""})
    ).json()
    ref = sale["tender_reference"]
    paid = (await post(api, "/payments/get_transaction", {"transaction_ref": ref})).json()
    assert paid["amount"] == sale["total"] and paid["refundable_amount"] == sale["total"]

    first = await post(
        api, "/payments/refund_payment", {"transaction_ref": ref, "amount": sale["total"]}
    )
    second = await post(api, "/payments/refund_payment", {"transaction_ref": ref, "amount": 0.01})

    assert first.status_code == 200 and first.json()["refundable_amount"] == 0
    assert second.status_code == 422 and second.json()["refundable_amount"] == 0


async def test_effects_queue_the_events_the_systems_would_send_once(api: httpx.AsyncClient) -> None:
    order = (await post(api, "/erp/create_transfer_order", TRANSFER)).json()["order_id"]
    await post(api, "/wms/review_transfer", {"order_id": order}, key="rv")
    await post(api, "/wms/review_transfer", {"order_id": order}, key="rv")

    events = (await api.get("/_sandbox/events", params={"type": "wms.transfer.shipped"})).json()
    assert events["count"] == 1
    assert events["events"][0]["correlation"] == order
    assert events["events"][0]["payload"]["eta"]
