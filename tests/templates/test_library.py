"""Every library template runs end to end against the sandbox: its happy path to
``succeeded`` with the business effects in the simulated systems and the events it emits,
and the failure paths its description cares most about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.templates.harness import LIBRARY, Harness, utc


def test_the_whole_library_is_covered() -> None:
    tested = {name.removeprefix("test_").split("__")[0].replace("_", "-") for name in globals()}
    assert set(LIBRARY) <= tested, sorted(set(LIBRARY) - tested)


# --- stock-transfer-approval -------------------------------------------------------------

TRANSFER = {"sku": "SKU-20001", "from_location": "DC-SOUTH", "to_store": "S-101"}


async def test_stock_transfer_approval__approved_transfer_ships_and_updates_the_promise(
    hb: Harness,
) -> None:
    h = hb
    [run] = await h.webhook(
        "pos", "stock.transfer.requested", {**TRANSFER, "quantity": 12, "store_id": "S-101"}
    )
    task = await h.task(run)
    assert (task.kind, task.assignee_role, task.region) == ("approval", "regional_manager", "NE")
    assert task.title == "Transfer of 12 x SKU-20001"
    # 12 x 38.00 at cost is over the automatic approval limit: the region approves 10.
    await h.decide(run, actor="rm.ne@example.com", approved_quantity=10)

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [order] = world["erp"]["transfer_orders"].values()
    assert (order["quantity"], order["from_location"], order["to_store"]) == (
        10,
        "DC-SOUTH",
        "S-101",
    )
    assert order["status"] == "released"
    assert world["erp"]["stock"]["S-101"]["SKU-20001"]["in_transit"] == 10
    [promise] = world["ecommerce"]["delivery_promises"].values()
    assert (promise["sku"], promise["store"]) == ("SKU-20001", "S-101")
    assert await h.emitted(run) == [
        ("stock.transfer.completed", {"order_id": order["order_id"], "run_id": str(run)})
    ]
    notes = [(n.reason, n.recipient) for n in await h.notifications(run)]
    assert notes == [
        ("task_assigned", "regional_manager@region:NE"),
        ("step", "store_manager@store:S-101"),
    ]
    await h.no_duplicate_effects()


async def test_stock_transfer_approval__a_rejected_transfer_creates_no_order(h: Harness) -> None:
    run = await h.start("stock-transfer-approval", {**TRANSFER, "quantity": 12})
    await h.decide(run, "rejected", approved_quantity=12, comment="enough stock nearby")

    assert await h.status(run) == "succeeded"
    assert (await h.path(run))[-1] == "tell_store"
    assert await h.calls("erp", "create_transfer_order") == []
    assert (await h.notifications(run))[-1].message == "Transfer of SKU-20001 was not completed"
    assert await h.emitted(run) == []


async def test_stock_transfer_approval__a_warehouse_outage_cancels_the_order(h: Harness) -> None:
    await h.fault("wms", "review_transfer", error_rate=1.0)
    # Under the automatic approval limit (5 x 38.00): no person involved.
    run = await h.start("stock-transfer-approval", {**TRANSFER, "quantity": 5})
    await h.settle(retries=True)

    assert await h.status(run) == "succeeded"
    assert (await h.path(run))[-3:] == ["warehouse_review", "undo", "tell_store"]
    assert len(await h.calls("wms", "review_transfer")) == 3  # the step's retry attempts
    world = await h.world()
    [order] = world["erp"]["transfer_orders"].values()
    assert order["status"] == "cancelled"
    assert world["erp"]["stock"]["S-101"]["SKU-20001"]["in_transit"] == 0
    assert await h.output(run, "undo") == {"compensated": [f"{run}:create_order:1"], "count": 1}
    assert await h.emitted(run) == []
    await h.no_duplicate_effects()


async def test_stock_transfer_approval__an_invalid_transfer_is_not_put_to_anyone(
    h: Harness,
) -> None:
    run = await h.start("stock-transfer-approval", {**TRANSFER, "quantity": 100_000})

    assert await h.status(run) == "succeeded"
    assert await h.path(run) == ["validate", "check_valid", "tell_store"]
    assert await h.tasks(run) == []
    assert "only" in (await h.output(run, "validate"))["reasons"][0]


# --- inventory-discrepancy ---------------------------------------------------------------


async def test_inventory_discrepancy__regional_review_posts_the_adjustment(h: Harness) -> None:
    run = await h.start("inventory-discrepancy", {"count_id": "CC-7004"})
    task = await h.task(run)
    assert task.assignee_role == "regional_manager" and "CC-7004" in task.title
    world = await h.world()
    [hold] = world["erp"]["holds"].values()
    assert hold["status"] == "active"
    count = world["erp"]["counts"]["CC-7004"]
    before = {
        line["sku"]: world["erp"]["stock"]["S-101"][line["sku"]]["on_hand"]
        for line in count["variance_lines"]
    }

    await h.decide(run, root_cause="RECEIVING_ERROR", comment="delivery booked to S-110")

    assert await h.status(run) == "succeeded"
    world = await h.world()
    assert world["erp"]["holds"][hold["hold_id"]]["status"] == "released"
    count = world["erp"]["counts"]["CC-7004"]
    [adjustment] = world["erp"]["adjustments"].values()
    assert count["status"] == "adjusted" and count["adjustment_id"] == adjustment["adjustment_id"]
    assert adjustment["reason_code"] == "RECEIVING_ERROR"
    for line in count["variance_lines"]:
        stock = world["erp"]["stock"]["S-101"][line["sku"]]
        assert stock["on_hand"] == before[line["sku"]] + line["variance_qty"]
    assert len(world["ecommerce"]["availability_updates"]) == 1
    [(kind, payload)] = await h.emitted(run)
    assert kind == "inventory.discrepancy.resolved"
    assert payload["root_cause"] == "RECEIVING_ERROR"
    assert payload["resolution"] == "adjusted_after_regional_review"
    assert payload["adjustment_id"] == adjustment["adjustment_id"]
    assert payload["resolved_at"] == "2026-06-01T09:00:00Z"
    await h.no_duplicate_effects()


async def test_inventory_discrepancy__a_refused_adjustment_releases_the_hold_and_fails(
    h: Harness,
) -> None:
    await h.fault("erp", "post_inventory_adjustment", error_rate=1.0)
    run = await h.start("inventory-discrepancy", {"count_id": "CC-7004"})
    await h.decide(run, root_cause="COUNT_ERROR")
    await h.settle(retries=True)

    assert await h.status(run) == "failed"
    assert (await h.path(run))[-3:] == [
        "post_adjustment",
        "adjustment_failed",
        "release_hold_after_failure",
    ]
    assert len(await h.calls("erp", "post_inventory_adjustment")) == 5
    world = await h.world()
    [hold] = world["erp"]["holds"].values()
    assert hold["status"] == "released"
    assert world["erp"]["counts"]["CC-7004"]["status"] == "submitted"
    assert world["erp"]["adjustments"] == {}
    alert = (await h.notifications(run))[-1]
    assert alert.recipient == "retailer_admin@tenant" and "Post it manually" in alert.message
    assert await h.emitted(run) == []
    await h.no_duplicate_effects()


async def test_inventory_discrepancy__review_goes_ahead_without_a_hold(h: Harness) -> None:
    await h.fault("erp", "place_replenishment_hold", error_rate=1.0)
    run = await h.start("inventory-discrepancy", {"count_id": "CC-7004"})
    await h.settle(retries=True)
    await h.decide(run, root_cause="DAMAGE_NOT_RECORDED")

    assert await h.status(run) == "succeeded"
    # No hold was placed, so there is none to release.
    assert await h.output(run, "release_hold") == {"compensated": [], "count": 0}
    world = await h.world()
    assert world["erp"]["holds"] == {} and len(world["erp"]["adjustments"]) == 1
    assert await h.calls("erp", "release_replenishment_hold") == []
    await h.no_duplicate_effects()


async def test_inventory_discrepancy__a_large_variance_is_recounted_then_investigated(
    pg: AsyncEngine,
) -> None:
    params = {"inventory-discrepancy": {"recount_value": 50, "loss_prevention_value": 100}}
    async with Harness.open(pg, params) as h:
        run = await h.start("inventory-discrepancy", {"count_id": "CC-7004"})
        assert (await h.task(run)).kind == "checklist"
        await h.submit(run, recounted_units=31)
        # The recount confirms the loss, over the loss-prevention threshold.
        review = await h.task(run)
        assert review.assignee_role == "retailer_admin"
        await h.decide(run, root_cause="EXTERNAL_THEFT", case_summary="Organised theft, CCTV")

        assert await h.status(run) == "succeeded"
        path = await h.path(run)
        assert path.count("load_count") == 2 and path.count("hold_replenishment") == 1
        world = await h.world()
        [case] = world["itsm"]["cases"].values()
        assert (case["queue"], case["count_id"]) == ("loss-prevention", "CC-7004")
        [hold] = world["erp"]["holds"].values()
        assert hold["status"] == "released"
        [(_, payload)] = await h.emitted(run)
        assert (payload["recounts"], payload["root_cause"], payload["resolution"]) == (
            1,
            "EXTERNAL_THEFT",
            "adjusted_after_investigation",
        )
        await h.no_duplicate_effects()


# --- low-stock-replenishment -------------------------------------------------------------


async def test_low_stock_replenishment__a_supplier_order_is_confirmed(h: Harness) -> None:
    run = await h.start("low-stock-replenishment", {"sku": "SKU-20001"})

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [po] = world["erp"]["purchase_orders"].values()
    assert (po["supplier_id"], po["ship_to"], po["status"]) == ("SUP-1002", "S-101", "transmitted")
    position = await h.output(run, "position")
    assert po["quantity"] % position["pack_size"] == 0
    assert world["erp"]["stock"]["S-101"]["SKU-20001"]["on_order"] == (
        position["on_order"] + po["quantity"]
    )
    confirmed = await h.output(run, "await_confirmation")
    [(kind, payload)] = await h.emitted(run)
    assert kind == "replenishment.ordered"
    assert payload["source"] == "supplier" and payload["order_id"] == po["po_number"]
    assert payload["quantity"] == confirmed["confirmed_quantity"]
    await h.no_duplicate_effects()


async def test_low_stock_replenishment__a_dc_item_is_ordered_from_the_dc(h: Harness) -> None:
    run = await h.start("low-stock-replenishment", {"sku": "SKU-10002"})

    assert await h.status(run) == "succeeded"
    position = await h.output(run, "position")
    world = await h.world()
    [order] = world["wms"]["store_orders"].values()
    assert (order["dc_id"], order["store_id"], order["sku"]) == ("DC-NORTH", "S-101", "SKU-10002")
    assert order["quantity"] % position["pack_size"] == 0
    assert world["erp"]["purchase_orders"] == {}
    [(kind, payload)] = await h.emitted(run)
    assert (kind, payload["source"], payload["order_id"]) == (
        "replenishment.ordered",
        "dc",
        order["order_id"],
    )
    await h.no_duplicate_effects()


async def test_low_stock_replenishment__an_unconfirmed_order_is_chased_then_cancelled(
    h: Harness,
) -> None:
    h.withhold("erp.purchase_order.confirmed")
    run = await h.start("low-stock-replenishment", {"sku": "SKU-20001"})
    assert await h.status(run) == "running"

    await h.advance(timedelta(hours=25))  # first reminder to the supplier
    reminder = (await h.notifications(run))[-1]
    assert reminder.recipient == "edi@contoso-electronics.example"
    assert reminder.message.startswith("Reminder: purchase order PO-4500001")
    await h.advance(timedelta(hours=25))  # still nothing: the buyer decides
    task = await h.task(run)
    assert (task.assignee_role, task.assignee_scope) == ("retailer_admin", "tenant")
    await h.decide(run, alternative="dc_transfer", actor="buyer@example.com")

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [po] = world["erp"]["purchase_orders"].values()
    assert po["status"] == "cancelled"
    position = await h.output(run, "position")
    assert world["erp"]["stock"]["S-101"]["SKU-20001"]["on_order"] == position["on_order"]
    [(kind, payload)] = await h.emitted(run)
    assert kind == "replenishment.resource_required"
    assert payload["cancelled_po"] == po["po_number"]
    assert payload["preferred_alternative"] == "dc_transfer"
    assert (await h.path(run))[9:] == [
        "chase",
        "count_reminder",
        "remind_supplier",
        "await_confirmation",
        "chase",
        "buyer_escalation",
        "buyer_decision",
        "cancel_po",
        "resource",
        "tell_store_resource",
    ]
    await h.no_duplicate_effects()


# --- price-promotion-sync ----------------------------------------------------------------


async def test_price_promotion_sync__every_store_gets_the_promotion(h: Harness) -> None:
    run = await h.start("price-promotion-sync", {"change_id": "PC-9001"})

    assert await h.status(run) == "succeeded"
    world = await h.world()
    change = world["erp"]["price_changes"]["PC-9001"]
    stores = (await h.output(run, "resolve_stores"))["stores"]
    assert change["status"] == "deployed" and len(stores) == 11
    batches = world["pos"]["price_batches"].values()
    assert sorted(b["store_id"] for b in batches) == sorted(s["id"] for s in stores)
    assert {b["status"] for b in batches} == {"applied"}
    for store in stores:
        till = world["pos"]["prices"][store["id"]]
        assert all(till[i["sku"]] == i["promo_price"] for i in change["items"])
    online = {s["id"] for s in stores if s["online_enabled"]}
    assert set(world["ecommerce"]["store_prices"]) == online
    [(kind, payload)] = await h.emitted(run)
    assert kind == "price.change.deployed"
    assert (payload["stores_targeted"], payload["stores_failed"], payload["sync_rounds"]) == (
        11,
        0,
        1,
    )
    await h.no_duplicate_effects()


async def test_price_promotion_sync__stores_that_never_confirm_roll_everything_back(
    h: Harness,
) -> None:
    h.withhold("pos.price_batch.applied", store_id="S-103")
    h.withhold("pos.price_batch.applied", store_id="S-109")
    run = await h.start("price-promotion-sync", {"change_id": "PC-9001"})
    for _ in range(3):  # the first round and the two re-pushes each wait 45 minutes
        assert await h.status(run) == "running"
        await h.advance(timedelta(minutes=46))

    # 2 of 11 stores still failing is over the automatic rollback share (15 %).
    assert await h.status(run) == "succeeded"
    path = await h.path(run)
    assert path.count("distribute") == 3 and path[-4:] == [
        "rollback",
        "mark_rolled_back",
        "tell_rolled_back",
        "rolled_back",
    ]
    world = await h.world()
    batches = list(world["pos"]["price_batches"].values())
    assert len(batches) == 11 + 2 + 2  # the re-pushes stage new batches for the two stores
    assert {b["status"] for b in batches} == {"reverted"}
    change = world["erp"]["price_changes"]["PC-9001"]
    for store, till in world["pos"]["prices"].items():
        assert all(till[i["sku"]] == i["regular_price"] for i in change["items"]), store
    online = world["ecommerce"]["store_prices"].values()
    assert len(online) == 8 and {p["PC-9001"]["status"] for p in online} == {"reverted"}
    assert change["status"] == "rolled_back"
    assert (await h.output(run, "rollback"))["count"] == 15 + 8  # POS batches, online prices
    [(kind, payload)] = await h.emitted(run)
    assert kind == "price.change.rolled_back"
    assert payload["failed_store_ids"] == ["S-103", "S-109"]
    assert (await h.notifications(run))[-1].recipient == "pricing@example.com"
    await h.no_duplicate_effects()


async def test_price_promotion_sync__head_office_launches_without_the_failed_store(
    h: Harness,
) -> None:
    h.withhold("pos.price_batch.applied", store_id="S-103")
    run = await h.start("price-promotion-sync", {"change_id": "PC-9001"})
    for _ in range(3):
        await h.advance(timedelta(minutes=46))
    await h.decide(run, actor="head.of.pricing@example.com")

    assert await h.status(run) == "succeeded"
    world = await h.world()
    change = world["erp"]["price_changes"]["PC-9001"]
    assert (change["status"], change["excluded_store_ids"]) == ("deployed", ["S-103"])
    assert world["ecommerce"]["promotion_suppressions"]["PC-9001"]["store_ids"] == ["S-103"]
    [(kind, payload)] = await h.emitted(run)
    assert (kind, payload["stores_failed"], payload["sync_rounds"]) == (
        "price.change.deployed",
        1,
        3,
    )
    await h.no_duplicate_effects()


async def test_price_promotion_sync__an_undecided_launch_rolls_back_at_the_cut_off(
    h: Harness,
) -> None:
    h.withhold("pos.price_batch.applied", store_id="S-103")
    run = await h.start("price-promotion-sync", {"change_id": "PC-9001"})
    for _ in range(3):
        await h.advance(timedelta(minutes=46))
    # 1 of 11 stores is under the automatic rollback share: head office decides.
    task = await h.task(run)
    assert task.title.startswith("1 of 11 stores failed sync")
    world = await h.world()
    [incident] = world["itsm"]["incidents"].values()
    assert (incident["store_id"], incident["category"]) == ("S-103", "pos-pricing")
    assert "manager.s-103@stores.example" in [n.recipient for n in await h.notifications(run)]

    await h.advance(timedelta(minutes=61))  # escalated after an hour
    await h.advance(timedelta(minutes=60))  # the SLA is two hours of clock time
    await h.advance(timedelta(hours=2))  # nobody decides before the four-hour cut-off

    assert await h.status(run) == "succeeded"
    [task] = [t for t in await h.tasks(run) if t.id == task.id]
    assert task.status == "expired" and task.escalation_level == 1
    reasons = [n.reason for n in await h.notifications(run) if n.task_id == task.id]
    assert reasons == ["task_assigned", "escalation", "sla_breach"]
    assert (await h.path(run))[-5:-3] == ["launch_decision", "rollback"]
    world = await h.world()
    assert {b["status"] for b in world["pos"]["price_batches"].values()} == {"reverted"}
    assert world["erp"]["price_changes"]["PC-9001"]["status"] == "rolled_back"
    assert [kind for kind, _ in await h.emitted(run)] == ["price.change.rolled_back"]
    await h.no_duplicate_effects()


# --- store-opening-closing-checklist -----------------------------------------------------


async def test_store_opening_closing_checklist__a_clean_opening_is_audited(h: Harness) -> None:
    [run] = await h.webhook("pos", "store.trading_day.opening", {"store_id": "S-101"})
    task = await h.task(run)
    assert (task.kind, task.title, task.store) == ("checklist", "Opening checklist", "S-101")
    await h.submit(run, actor="sm.s101@example.com")

    assert await h.status(run) == "succeeded"
    assert await h.path(run) == ["which", "opening_checks", "opening_ok", "audit"]
    [(kind, payload)] = await h.emitted(run)
    assert kind == "compliance.checklist.completed"
    assert (payload["checklist"], payload["exception"], payload["failed_items"]) == (
        "opening",
        False,
        [],
    )
    assert payload["completed_by"] == "sm.s101@example.com"
    assert payload["evidence"]["chiller_temp"] == 2.5
    assert await h.calls("itsm", "create_incident") == []


async def test_store_opening_closing_checklist__a_warm_chiller_is_routed_to_cold_chain(
    h: Harness,
) -> None:
    run = await h.start("store-opening-closing-checklist", {"checklist": "closing"})
    assert (await h.task(run)).title == "Closing checklist"
    await h.submit(run, chiller_temp=9.0)  # above the 0-5 °C bound: an exception
    task = await h.task(run)
    assert task.title == "Product protection after a temperature failure"
    await h.submit(run, product_probed=7.5, discarded_value=45.5)
    review = await h.task(run)
    assert (review.assignee_role, review.region) == ("regional_manager", "NE")
    await h.decide(run, corrective_action="Engineer booked, stock moved to cold room")

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [incident] = world["itsm"]["incidents"].values()
    assert (incident["category"], incident["priority"]) == ("refrigeration", "P1")
    assert incident["readings"] == {"chilled": 9.0, "frozen": -21.5}
    [waste] = world["erp"]["adjustments"].values()
    assert (waste["reason_code"], waste["value"]) == ("COLD_CHAIN_FAILURE", 45.5)
    assert waste["incident_id"] == incident["incident_id"]
    facilities = [n for n in await h.notifications(run) if n.recipient == "facilities@example.com"]
    assert incident["incident_id"] in facilities[0].message
    [(kind, payload)] = await h.emitted(run)
    assert kind == "compliance.checklist.completed"
    assert (payload["checklist"], payload["exception"], payload["failed_items"]) == (
        "closing",
        True,
        ["chiller_temp"],
    )
    assert payload["corrective_action"] == "Engineer booked, stock moved to cold room"
    await h.no_duplicate_effects()


async def test_store_opening_closing_checklist__the_desk_being_down_does_not_stop_the_routing(
    h: Harness,
) -> None:
    await h.fault("itsm", "create_incident", error_rate=1.0)
    run = await h.start("store-opening-closing-checklist", {})
    await h.submit(run, freezer_temp=-12.0)
    await h.settle(retries=True)

    assert (await h.task(run)).title == "Product protection after a temperature failure"
    facilities = [n for n in await h.notifications(run) if n.recipient == "facilities@example.com"]
    assert facilities[0].message.endswith("incident not created.")


# --- returns-refund-approval -------------------------------------------------------------

RETURN = {
    "return_id": "RET-1",
    "receipt_id": "R-1",
    "refund_amount": 3.49,
    "lines": [{"sku": "SKU-10002", "quantity": 1}],
}


async def test_returns_refund_approval__a_small_return_is_refunded_by_policy(h: Harness) -> None:
    run = await h.start("returns-refund-approval", RETURN)

    assert await h.status(run) == "succeeded"
    assert await h.tasks(run) == []
    world = await h.world()
    [order] = world["erp"]["return_orders"].values()
    assert (order["status"], order["amount"], order["disposition"]) == ("booked", 3.49, "restock")
    sale = await h.output(run, "sale")
    assert order["original_sale"] == sale["transaction_id"]
    [refund] = world["payments"]["refunds"].values()
    assert (refund["transaction_ref"], refund["amount"]) == (sale["tender_reference"], 3.49)
    [points] = world["crm"]["loyalty_transactions"].values()
    assert points["customer_id"] == sale["customer_id"] and points["points"] == -3
    [logged] = world["crm"]["interactions"].values()
    assert logged["outcome"] == "refunded"
    [(kind, payload)] = await h.emitted(run)
    assert kind == "returns.refund.completed"
    assert (payload["method"], payload["approved_by"], payload["receiptless"]) == (
        "original_tender",
        "policy",
        False,
    )
    assert payload["return_order_id"] == order["return_order_id"]
    await h.no_duplicate_effects()


async def test_returns_refund_approval__a_failed_refund_cancels_the_return(h: Harness) -> None:
    await h.fault("payments", "refund_payment", error_rate=1.0)
    run = await h.start("returns-refund-approval", RETURN)
    stock_before = (await h.world())["erp"]["stock"]["S-101"]["SKU-10002"]["on_hand"]
    await h.settle(retries=True)

    assert await h.status(run) == "failed"
    assert (await h.path(run))[-3:] == ["refund", "undo_return", "refund_failed"]
    assert len(await h.calls("payments", "refund_payment")) == 4
    world = await h.world()
    [order] = world["erp"]["return_orders"].values()
    assert order["status"] == "cancelled"
    assert world["erp"]["stock"]["S-101"]["SKU-10002"]["on_hand"] == stock_before - 1
    assert world["payments"]["refunds"] == {}
    assert "Do not hand over cash" in (await h.notifications(run))[-1].message
    assert await h.emitted(run) == []
    await h.no_duplicate_effects()


async def test_returns_refund_approval__the_store_manager_refuses_a_late_return(
    h: Harness,
) -> None:
    run = await h.start(
        "returns-refund-approval", {**RETURN, "return_id": "RET-2", "receipt_id": "R-2"}
    )
    task = await h.task(run)
    assert task.assignee_role == "store_manager" and "days ago" in task.title
    await h.decide(run, "rejected", refund_method="store_credit", disposition="restock")

    assert await h.status(run) == "succeeded"
    world = await h.world()
    assert world["erp"]["return_orders"] == {} and world["payments"]["refunds"] == {}
    [logged] = world["crm"]["interactions"].values()
    assert logged["outcome"] == "refused: declined_by_manager"
    assert [kind for kind, _ in await h.emitted(run)] == ["returns.refund.refused"]


async def test_returns_refund_approval__a_receiptless_return_gets_store_credit(
    h: Harness,
) -> None:
    receiptless = {k: v for k, v in RETURN.items() if k != "receipt_id"}
    run = await h.start("returns-refund-approval", receiptless)
    await h.decide(run, id_verified=True, disposition="damaged_write_off")

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [credit] = world["payments"]["store_credits"].values()
    assert (credit["amount"], credit["customer_id"]) == (3.49, "")
    assert world["payments"]["refunds"] == {}
    [order] = world["erp"]["return_orders"].values()
    assert (order["original_sale"], order["disposition"]) == ("", "damaged_write_off")
    [(_, payload)] = await h.emitted(run)
    assert (payload["method"], payload["receiptless"]) == ("store_credit", True)
    await h.no_duplicate_effects()


# --- maintenance-incident ----------------------------------------------------------------

INCIDENT = {
    "category": "refrigeration",
    "asset_id": "AST-10001",
    "description": "Dairy chiller at 9°C and rising",
    "reported_by": "store app",
}


async def test_maintenance_incident__a_repair_is_signed_off_costed_and_closed(
    h: Harness,
) -> None:
    run = await h.start("maintenance-incident", INCIDENT)
    task = await h.task(run)
    assert task.title == "Store sign-off of the repair"
    eta = (await h.output(run, "await_accept_urgent"))["eta"]
    assert f"ETA {eta}" in (await h.notifications(run))[-2].message
    await h.submit(run)

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [incident] = world["itsm"]["incidents"].values()
    assert incident["status"] == "resolved"
    [work_order] = world["itsm"]["work_orders"].values()
    # A refrigeration fault is trading-critical: P1, dispatched to the asset's vendor.
    assert (work_order["vendor_id"], work_order["priority"]) == ("FAC-POS", "P1")
    assert work_order["status"] == "closed"
    [posting] = world["erp"]["cost_postings"].values()
    assert posting["invoice_id"] == work_order["invoice_id"]
    assert posting["amount"] == work_order["labour"] + work_order["parts"]
    assert world["erp"]["service_pos"] == {}  # the asset is under warranty
    [(kind, payload)] = await h.emitted(run)
    assert kind == "maintenance.incident.resolved"
    assert (payload["ticket_id"], payload["reassigned"], payload["covered"]) == (
        incident["ticket_id"],
        False,
        True,
    )
    await h.no_duplicate_effects()


async def test_maintenance_incident__a_silent_vendor_is_chased_then_replaced(h: Harness) -> None:
    h.withhold("itsm.work_order.accepted", vendor_id="FAC-POS")
    h.withhold("itsm.work_order.completed", times=1)  # nor does it come and fix it
    run = await h.start("maintenance-incident", INCIDENT)
    await h.advance(timedelta(minutes=61))  # P1: one hour to accept
    chase = (await h.notifications(run))[-1]
    assert chase.recipient == "noc@tillcare.example" and "not been accepted" in chase.message
    await h.advance(timedelta(minutes=61))
    await h.submit(run)

    assert await h.status(run) == "succeeded"
    path = await h.path(run)
    assert path.count("await_accept_urgent") == 2
    assert path[path.index("reassign") :][:4] == [
        "reassign",
        "tell_region_reassigned",
        "await_backup",
        "tell_store_eta",
    ]
    [work_order] = (await h.world())["itsm"]["work_orders"].values()
    assert (work_order["vendor_id"], work_order["reassigned_from"]) == ("FAC-BACKUP", "FAC-POS")
    sms = [n for n in await h.notifications(run) if n.channel == "sms"]
    assert [n.recipient for n in sms] == ["regional_manager@region:NE"]
    [(_, payload)] = await h.emitted(run)
    assert payload["reassigned"] is True
    await h.no_duplicate_effects()


async def test_maintenance_incident__a_refused_repair_sends_the_vendor_back(h: Harness) -> None:
    run = await h.start("maintenance-incident", INCIDENT)
    await h.submit(run, fault_fixed=False)
    await h.submit(run)

    assert await h.status(run) == "succeeded"
    path = await h.path(run)
    assert path.count("sign_off") == 2 and path.count("await_completion") == 2
    [work_order] = (await h.world())["itsm"]["work_orders"].values()
    assert work_order["failed_items"] == ["fault_fixed"]
    await h.no_duplicate_effects()


async def test_maintenance_incident__a_dead_cost_posting_is_replayed_without_a_second_posting(
    hb: Harness,
) -> None:
    h = hb
    run = await h.start("maintenance-incident", INCIDENT)
    # The ERP books the cost but the answer is lost; then it goes down altogether.
    await h.fault("erp", "post_maintenance_cost", drop_after_commit_rate=1.0)
    await h.submit(run)
    await h.fault("erp", "post_maintenance_cost", error_rate=1.0)
    await h.settle(retries=True)

    assert await h.status(run) == "failed"
    [letter] = await h.dead_letters(run)
    assert letter.step_id == "post_cost" and "answered 503" in letter.reason
    assert len((await h.world())["erp"]["cost_postings"]) == 1

    await h.clear_faults()
    assert await h.engine.replay_dead_letter(letter.id) is not None
    await h.settle()

    assert await h.status(run) == "succeeded"
    calls = await h.calls("erp", "post_maintenance_cost")
    assert [c["outcome"] for c in calls] == ["dropped_after_commit"] + ["fault_error"] * 4 + [
        "replayed"
    ]
    assert len({c["key"] for c in calls}) == 1
    assert await h.effects("erp", "post_maintenance_cost") == 1
    assert len((await h.world())["erp"]["cost_postings"]) == 1
    assert [kind for kind, _ in await h.emitted(run)] == ["maintenance.incident.resolved"]
    await h.no_duplicate_effects()


# --- customer-service-recovery -----------------------------------------------------------

ISSUE = {
    "order_id": "WEB-5002",
    "issue_type": "missing_item",
    "lines": [{"sku": "SKU-10001", "quantity": 1}],
}


async def test_customer_service_recovery__a_missing_item_is_replaced_with_a_gesture(
    h: Harness,
) -> None:
    run = await h.start("customer-service-recovery", ISSUE)

    assert await h.status(run) == "succeeded"
    world = await h.world()
    replacement = world["ecommerce"]["orders"]["WEB-R-100001"]
    assert (replacement["kind"], replacement["original_order_id"]) == ("replacement", "WEB-5002")
    order = await h.output(run, "order")
    [points] = world["crm"]["loyalty_transactions"].values()
    assert (points["customer_id"], points["points"]) == (order["customer_id"], 750)  # silver
    customer = world["crm"]["customers"][order["customer_id"]]
    assert customer["marketing_suppressed_until"] == "2026-06-08T09:00:00Z"
    [case] = world["crm"]["cases"].values()
    assert (case["status"], case["resolution"]) == ("closed", "replaced")
    email = (await h.notifications(run))[-1]
    assert email.recipient == customer["email"] and "750 points" in email.message
    [(kind, payload)] = await h.emitted(run)
    assert kind == "customer.recovery.completed"
    assert (payload["fix"], payload["points"], payload["refunded"]) == ("replaced", 750, 0.0)
    await h.no_duplicate_effects()


async def test_customer_service_recovery__an_unpicked_replacement_is_refunded_instead(
    h: Harness,
) -> None:
    h.withhold("ecommerce.order.picked")
    run = await h.start("customer-service-recovery", ISSUE)
    store = (await h.output(run, "order"))["fulfilling_store"]
    assert (await h.world())["erp"]["stock"][store]["SKU-10001"]["allocated"] == 1
    await h.advance(timedelta(hours=4, minutes=1))

    assert await h.status(run) == "succeeded"
    world = await h.world()
    assert world["ecommerce"]["orders"]["WEB-R-100001"]["status"] == "cancelled"
    assert world["erp"]["stock"][store]["SKU-10001"]["allocated"] == 0
    [refund] = world["ecommerce"]["refunds"].values()
    assert (refund["order_id"], refund["amount"]) == ("WEB-5002", 2.29)
    [line] = world["ecommerce"]["orders"]["WEB-5002"]["lines"]
    assert line["refunded_quantity"] == 1
    [(_, payload)] = await h.emitted(run)
    assert (payload["fix"], payload["refunded"]) == ("refunded", 2.29)
    await h.no_duplicate_effects()


# --- workforce-exception -----------------------------------------------------------------

GAP = {"exception_type": "shift_gap", "shift_id": "SH-4004", "date": "2026-06-01"}


async def test_workforce_exception__a_colleague_takes_the_open_shift(h: Harness) -> None:
    run = await h.start("workforce-exception", GAP)

    assert await h.status(run) == "succeeded"
    shift = (await h.world())["hr"]["shifts"]["SH-4004"]
    accepted = await h.output(run, "await_acceptance")
    assert (shift["status"], shift["assigned_employee_id"]) == (
        "assigned",
        accepted["employee_id"],
    )
    covered = (await h.notifications(run))[-1]
    assert covered.message.endswith(f"is covered by {accepted['employee_name']}.")
    [(kind, payload)] = await h.emitted(run)
    assert kind == "workforce.exception.resolved"
    assert (payload["outcome"], payload["employee_id"]) == (
        "covered_internally",
        accepted["employee_id"],
    )
    await h.no_duplicate_effects()


async def test_workforce_exception__nobody_takes_the_shift_and_agency_covers_it(
    h: Harness,
) -> None:
    h.withhold("hr.shift.offer_accepted")
    run = await h.start("workforce-exception", GAP)
    await h.advance(timedelta(hours=2, minutes=1))
    task = await h.task(run)
    assert task.title.startswith("No cover for shift SH-4004")
    await h.decide(run, actor="rm.ne@example.com")

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [agency] = world["hr"]["agency_requests"].values()
    assert (agency["shift_id"], agency["approved_by"]) == ("SH-4004", "rm.ne@example.com")
    assert world["hr"]["shifts"]["SH-4004"]["status"] == "agency_requested"
    assert world["hr"]["shifts"]["SH-4004"]["assigned_employee_id"] is None
    [(_, payload)] = await h.emitted(run)
    assert payload["outcome"] == "agency"
    await h.no_duplicate_effects()


async def test_workforce_exception__refused_overtime_is_recorded(h: Harness) -> None:
    overtime = {"exception_type": "overtime", "employee_id": "E-2001", "overtime_hours": 2}
    run = await h.start("workforce-exception", {**overtime, "date": "2026-06-01"})
    await h.decide(run, "rejected", approved_hours=0)

    assert await h.status(run) == "succeeded"
    [record] = (await h.world())["hr"]["overtime"].values()
    assert (record["status"], record["reason"]) == ("rejected", "declined by the regional manager")
    assert await h.emitted(run) == []


# --- markdown-request --------------------------------------------------------------------

MARKDOWN = {"sku": "SKU-10001", "quantity": 5, "new_price": 1.5, "reason": "short_dated"}


async def test_markdown_request__a_small_markdown_reaches_till_and_shelf(h: Harness) -> None:
    run = await h.start("markdown-request", MARKDOWN)
    assert (await h.task(run)).title == "Markdown labels on the shelf"
    await h.submit(run)

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [markdown] = world["erp"]["markdowns"].values()
    assert (markdown["price"], markdown["previous_price"], markdown["status"]) == (
        1.5,
        2.29,
        "active",
    )
    assert world["erp"]["store_prices"]["S-101"]["SKU-10001"] == 1.5
    assert world["erp"]["markdown_budget"]["S-101"] == 800.0 - 3.95
    assert world["pos"]["prices"]["S-101"]["SKU-10001"] == 1.5
    [labels] = world["pos"]["label_jobs"].values()
    assert labels["markdown_id"] == markdown["markdown_id"]
    [(kind, payload)] = await h.emitted(run)
    assert kind == "pricing.markdown.completed"
    assert (payload["markdown_id"], payload["value"]) == (markdown["markdown_id"], 3.95)
    await h.no_duplicate_effects()


async def test_markdown_request__a_till_outage_withdraws_the_markdown(h: Harness) -> None:
    await h.fault("pos", "apply_store_price", error_rate=1.0)
    run = await h.start("markdown-request", MARKDOWN)
    await h.settle(retries=True)

    assert await h.status(run) == "succeeded"
    assert (await h.path(run))[-4:] == ["create_markdown", "push_pos", "undo", "tell_store"]
    assert len(await h.calls("pos", "apply_store_price")) == 5
    world = await h.world()
    [markdown] = world["erp"]["markdowns"].values()
    assert markdown["status"] == "cancelled"
    assert world["erp"]["store_prices"]["S-101"]["SKU-10001"] == 2.29
    assert world["erp"]["markdown_budget"]["S-101"] == 800.0
    assert world["pos"]["prices"] == {}
    assert (await h.notifications(run))[-1].message == "Markdown of SKU-10001 was not applied."
    assert await h.emitted(run) == []
    await h.no_duplicate_effects()


# --- emergency-procurement ---------------------------------------------------------------

EMERGENCY = {
    "category": "safety_supplies",
    "supplier_id": "SUP-1005",
    "lines": [{"sku": "SKU-70001", "quantity": 10}],
    "justification": "Spill kit refill after a leak",
}


async def test_emergency_procurement__an_urgent_order_is_placed_and_received(
    h: Harness,
) -> None:
    run = await h.start("emergency-procurement", EMERGENCY)

    assert await h.status(run) == "succeeded"
    world = await h.world()
    [po] = world["erp"]["purchase_orders"].values()
    assert (po["priority"], po["status"], po["value"]) == ("emergency", "transmitted", 31.0)
    assert world["erp"]["purchase_budget"]["S-101"] == 2500.0 - 31.0
    [(kind, payload)] = await h.emitted(run)
    assert kind == "procurement.emergency.completed"
    assert (payload["po_number"], payload["receipt_id"]) == (po["po_number"], "GR-4500001")
    await h.no_duplicate_effects()


async def test_emergency_procurement__an_order_that_cannot_be_sent_is_cancelled(
    h: Harness,
) -> None:
    await h.fault("erp", "transmit_purchase_order", error_rate=1.0)
    run = await h.start("emergency-procurement", EMERGENCY)
    await h.settle(retries=True)

    assert await h.status(run) == "succeeded"
    assert (await h.path(run))[-3:] == ["send_order", "undo", "tell_store"]
    world = await h.world()
    [po] = world["erp"]["purchase_orders"].values()
    assert po["status"] == "cancelled"
    assert world["erp"]["purchase_budget"]["S-101"] == 2500.0
    assert await h.emitted(run) == []
    await h.no_duplicate_effects()


async def test_emergency_procurement__head_office_can_refuse_an_unlisted_supplier(
    h: Harness,
) -> None:
    run = await h.start("emergency-procurement", {**EMERGENCY, "supplier_id": "SUP-9999"})
    regional = await h.decide(run, approved_value=31.0, actor="rm.ne@example.com")
    head_office = await h.decide(run, "rejected", actor="cfo@example.com")

    assert (regional.assignee_role, head_office.assignee_role) == (
        "regional_manager",
        "retailer_admin",
    )
    assert "not on the approved list" in head_office.title
    assert await h.status(run) == "succeeded"
    assert (await h.world())["erp"]["purchase_orders"] == {}


# --- SLA in the store's business hours ---------------------------------------------------


async def test_sla_and_escalation_count_in_the_stores_opening_hours(hb: Harness) -> None:
    h = hb
    # Saturday 19:00 in Paris (17:00 UTC): an hour before S-102 closes until Monday 08:00.
    h.clock.now = datetime(2026, 6, 6, 17, 0, tzinfo=UTC)
    run = await h.start(
        "stock-transfer-approval", {**TRANSFER, "quantity": 12, "to_store": "S-102"}, store="S-102"
    )
    task = await h.task(run)
    assert (task.assignee_role, task.region) == ("regional_manager", "METRO")
    # SLA 4h: 1h on Saturday, 3h from Monday's opening (wall time would say Saturday
    # 21:00 UTC); the first escalation after 2h.
    assert utc(task.due_at) == datetime(2026, 6, 8, 9, 0, tzinfo=UTC)
    assert utc(task.escalate_at) == datetime(2026, 6, 8, 7, 0, tzinfo=UTC)

    await h.advance(timedelta(hours=3))  # Saturday evening: the store is closed, nothing due
    assert (await h.task(run)).escalation_level == 0
    await h.advance(datetime(2026, 6, 8, 7, 1, tzinfo=UTC) - h.clock.now)

    task = await h.task(run)
    assert (task.assignee_role, task.assignee_scope) == ("retailer_admin", "tenant")
    assert (task.escalation_level, task.escalate_at, task.breached_at) == (1, None, None)
    escalation = (await h.notifications(run))[-1]
    assert (escalation.reason, escalation.recipient, escalation.task_id) == (
        "escalation",
        "retailer_admin@tenant",
        task.id,
    )
    assert escalation.message == "Escalated to you: Transfer of 12 x SKU-20001"

    await h.advance(timedelta(hours=2))

    breach = (await h.notifications(run))[-1]
    assert (breach.reason, breach.recipient) == ("sla_breach", "retailer_admin@tenant")
    assert utc((await h.task(run)).breached_at) == datetime(2026, 6, 8, 9, 1, tzinfo=UTC)
    await h.decide(run, approved_quantity=12, actor="admin@example.com")
    assert await h.status(run) == "succeeded"
