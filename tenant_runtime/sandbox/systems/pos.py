"""Store POS: till prices and label print jobs, staged price batches per store with
their sync status, register price checks, and till activity during a count window."""

from __future__ import annotations

from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.data import item, shelf_price
from tenant_runtime.sandbox.errors import NotFound
from tenant_runtime.sandbox.registry import pos
from tenant_runtime.sandbox.systems.erp_pricing import price_change
from tenant_runtime.sandbox.world import World, doc, money


def _lanes(w: World, store: str) -> int:
    return w.rng("lanes", store).randint(4, 14)


@pos.read
def get_count_window_activity(w: World, b: Body) -> dict[str, Any]:
    """Sales, returns and voids of the SKUs between two times, not yet posted to the ERP."""
    store, skus = b.text("store_id"), b.strings("skus")
    start, end = b.text("window_start"), b.text("window_end")
    lines: list[dict[str, Any]] = []
    unposted = 0.0
    for sku in skus:
        r = w.rng("till-activity", store, sku, start, end)
        sold, returned = r.choice((0, 0, 1, 2, 3)), r.choice((0, 0, 0, 1))
        if sold or returned:
            value = money((sold - returned) * item(w, sku).unit_cost)
            lines.append(
                {
                    "sku": sku,
                    "sold_units": sold,
                    "returned_units": returned,
                    "unposted_value": value,
                }
            )
            unposted += abs(value)
    return {
        "store_id": store,
        "window_start": start,
        "window_end": end,
        "transactions": sum(line["sold_units"] + line["returned_units"] for line in lines),
        "lines": lines,
        "unposted_value": money(unposted),
    }


@pos.write
def apply_store_price(w: World, b: Body) -> dict[str, Any]:
    """Load a new till price for one SKU at one store, with a label print job."""
    store, sku, price = b.text("store_id"), b.text("sku"), b.number("price", minimum=0)
    item(w, sku)
    w.pos.prices.setdefault(store, {})[sku] = price
    job = None
    if b.flag("print_labels", default=True):
        job = w.mint("LBL")
        w.pos.label_jobs[job] = {
            "label_job_id": job,
            "store_id": store,
            "skus": [sku],
            "markdown_id": b.text("markdown_id", ""),
            "status": "queued",
        }
    return {
        "store_id": store,
        "sku": sku,
        "price": price,
        "lanes_updated": _lanes(w, store),
        "label_job_id": job,
        "applied_at": w.stamp(),
    }


@pos.write
def stage_price_batch(w: World, b: Body) -> dict[str, Any]:
    """Stage a price event's batch on a store's POS; the store confirms it per lane later."""
    store, change_id = b.text("store_id"), b.text("change_id")
    items = b.objects("items")
    batch_id = w.mint("PB")
    w.pos.price_batches[batch_id] = {
        "batch_id": batch_id,
        "store_id": store,
        "change_id": change_id,
        "items": [
            {"sku": str(i.get("sku")), "price": i.get("promo_price", i.get("price"))} for i in items
        ],
        "effective_from": b.text("effective_from", ""),
        "effective_to": b.text("effective_to", ""),
        "print_labels": b.flag("print_labels", default=True),
        "status": "applied",
        "staged_at": w.stamp(),
    }
    for entry in w.pos.price_batches[batch_id]["items"]:
        if entry["price"] is not None:
            w.pos.prices.setdefault(store, {})[entry["sku"]] = float(entry["price"])
    w.emit(
        "pos",
        "pos.price_batch.applied",
        batch_id,
        batch_id=batch_id,
        store_id=store,
        change_id=change_id,
        lanes=_lanes(w, store),
    )
    return {"batch_id": batch_id, "status": "staged", "store_id": store, "items": len(items)}


@pos.write
def revert_price_batch(w: World, b: Body) -> dict[str, Any]:
    """Take a staged or applied batch off the tills: the regular prices come back."""
    batch = doc(w.pos.price_batches, b.text("batch_id"), "price batch")
    store = b.text("store_id", batch["store_id"])
    if store != batch["store_id"]:
        raise NotFound(
            f"batch {batch['batch_id']} belongs to store {batch['store_id']}, not {store}"
        )
    if batch["status"] == "reverted":
        return {"batch_id": batch["batch_id"], "status": "reverted", "already_reverted": True}
    for entry in batch["items"]:
        w.pos.prices.setdefault(store, {})[entry["sku"]] = shelf_price(w, store, entry["sku"])
    batch.update(status="reverted", reverted_at=w.stamp())
    return {"batch_id": batch["batch_id"], "status": "reverted", "already_reverted": False}


@pos.read
def verify_item_prices(w: World, b: Body) -> dict[str, Any]:
    """Scan sample items of a price event at a register; every mismatch is listed."""
    store, change_id = b.text("store_id"), b.text("change_id")
    sample_size = b.integer("sample_size", default=20, minimum=1)
    batches = [
        batch
        for batch in w.pos.price_batches.values()
        if batch["store_id"] == store and batch["change_id"] == change_id
    ]
    batch = batches[-1] if batches else None
    expected = (
        batch["items"]
        if batch
        else [
            {"sku": i["sku"], "price": i["promo_price"]}
            for i in price_change(w, change_id)["items"]
        ]
    )
    till = w.pos.prices.get(store, {})
    sample = expected[:sample_size]
    mismatched = []
    for entry in sample:
        scanned = till.get(entry["sku"], shelf_price(w, store, entry["sku"]))
        if entry["price"] is not None and scanned != float(entry["price"]):
            mismatched.append({"sku": entry["sku"], "expected": entry["price"], "scanned": scanned})
    return {
        "store_id": store,
        "change_id": change_id,
        "batch_id": batch["batch_id"] if batch else None,
        "sync_status": batch["status"] if batch else "not_staged",
        "checked": len(sample),
        "mismatches": len(mismatched),
        "mismatched_items": mismatched,
    }
