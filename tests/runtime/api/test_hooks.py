"""Signed webhooks in, as a real sender signs them (the reference ``standardwebhooks``
package): accepted once, duplicates acknowledged and ignored, every refusal says why."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import standardwebhooks
from sqlalchemy import func, select

from tenant_runtime.db.schema import events, runs
from tenant_runtime.runtime import Runtime
from tests.runtime.api.conftest import (
    ERP_SECRET,
    POS_NEXT_SECRET,
    POS_SECRET,
    assert_problem,
)

OTHER_SECRET = "whsec_" + "c29tZW9uZS1lbHNlLWVudGlyZWx5LTAwMDAwMDAwMDA="


def signed(
    body: bytes | str,
    *,
    secret: str = ERP_SECRET,
    msg_id: str | None = None,
    at: datetime | None = None,
) -> dict[str, str]:
    text = body.decode() if isinstance(body, bytes) else body
    msg_id = msg_id or f"msg_{secrets.token_hex(8)}"
    when = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, when, text),
        "content-type": "application/json",
    }


def price_changed(sku: str, **extra: Any) -> bytes:
    event = {"type": "price.changed", "timestamp": "2026-01-01T00:00:00Z", "data": {"sku": sku}}
    return json.dumps({**event, **extra}).encode()


async def count(runtime: Runtime, stmt: Any) -> int:
    async with runtime.db.connect() as conn:
        return int(await conn.scalar(stmt) or 0)


async def test_a_signed_webhook_is_ingested_once(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    sku = f"W-{secrets.token_hex(4)}"
    body = price_changed(sku)
    headers = signed(body)
    res = await client.post("/hooks/erp", content=body, headers=headers)
    assert res.status_code == 202, res.text
    assert res.json() == {"id": headers["webhook-id"], "accepted": True, "duplicate": False}

    again = await client.post("/hooks/erp", content=body, headers=headers)  # a redelivery
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True

    stored = (
        select(func.count())
        .select_from(events)
        .where(events.c.source == "erp", events.c.external_id == headers["webhook-id"])
    )
    assert await count(runtime, stored) == 1
    # The event triggered its deployment once: one run, with the event's data as input.
    started = select(func.count()).select_from(runs).where(runs.c.template_id == "price-push")
    async with runtime.db.connect() as conn:
        inputs = (
            (await conn.execute(select(runs.c.input).where(runs.c.template_id == "price-push")))
            .scalars()
            .all()
        )
    assert [i for i in inputs if i.get("sku") == sku] == [{"sku": sku}]
    assert await count(runtime, started) >= 1


async def test_payload_and_correlation_are_accepted_too(client: httpx.AsyncClient) -> None:
    body = json.dumps({"type": "stock.counted", "correlation": 42, "payload": {"n": 1}})
    res = await client.post("/hooks/erp", content=body, headers=signed(body))
    assert res.status_code == 202, res.text


async def test_a_bad_signature_is_a_401(client: httpx.AsyncClient) -> None:
    body = price_changed("X-1")
    res = await client.post("/hooks/erp", content=body, headers=signed(body, secret=OTHER_SECRET))
    problem = assert_problem(res, 401, "webhook-unauthenticated")
    assert problem["reason"] == "bad-signature"
    tampered = await client.post("/hooks/erp", content=price_changed("X-2"), headers=signed(body))
    assert assert_problem(tampered, 401)["reason"] == "bad-signature"


async def test_a_forged_delivery_does_not_burn_the_id(client: httpx.AsyncClient) -> None:
    body = price_changed(f"F-{secrets.token_hex(4)}")
    msg_id = f"msg_{secrets.token_hex(8)}"
    forged = signed(body, secret=OTHER_SECRET, msg_id=msg_id)
    assert (await client.post("/hooks/erp", content=body, headers=forged)).status_code == 401
    genuine = await client.post("/hooks/erp", content=body, headers=signed(body, msg_id=msg_id))
    assert genuine.status_code == 202


async def test_a_stale_or_future_timestamp_is_a_401(client: httpx.AsyncClient) -> None:
    body = price_changed("S-1")
    old = signed(body, at=datetime.now(UTC) - timedelta(minutes=6))
    problem = assert_problem(await client.post("/hooks/erp", content=body, headers=old), 401)
    assert problem["reason"] == "stale-timestamp" and "old" in problem["detail"]
    ahead = signed(body, at=datetime.now(UTC) + timedelta(minutes=6))
    problem = assert_problem(await client.post("/hooks/erp", content=body, headers=ahead), 401)
    assert problem["reason"] == "stale-timestamp" and "future" in problem["detail"]


@pytest.mark.parametrize("header", ["webhook-id", "webhook-timestamp", "webhook-signature"])
async def test_a_missing_header_is_a_401_naming_it(client: httpx.AsyncClient, header: str) -> None:
    body = price_changed("M-1")
    headers = signed(body)
    del headers[header]
    problem = assert_problem(await client.post("/hooks/erp", content=body, headers=headers), 401)
    assert problem["reason"] == "missing-header" and header in problem["detail"]


async def test_a_malformed_header_is_a_401(client: httpx.AsyncClient) -> None:
    body = price_changed("H-1")
    headers = {**signed(body), "webhook-timestamp": "yesterday"}
    problem = assert_problem(await client.post("/hooks/erp", content=body, headers=headers), 401)
    assert problem["reason"] == "malformed-header" and "webhook-timestamp" in problem["detail"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('{"type": "price.changed", "data": ', "not a valid event"),
        ('{"data": {"sku": "A"}}', "type"),
        ('{"type": "", "data": {}}', "type"),
        ('{"type": "price.changed", "data": [1]}', "data"),
        ('{"type": "x", "data": {}, "payload": {}}', "not both"),
        ("[1, 2]", "object"),
    ],
)
async def test_an_authentic_but_malformed_event_is_a_422(
    client: httpx.AsyncClient, body: str, named: str
) -> None:
    res = await client.post("/hooks/erp", content=body, headers=signed(body))
    assert named in assert_problem(res, 422, "invalid-input")["detail"]


async def test_an_unknown_source_is_a_404(client: httpx.AsyncClient) -> None:
    body = price_changed("U-1")
    res = await client.post("/hooks/crm", content=body, headers=signed(body))
    assert "crm" in assert_problem(res, 404)["detail"]


async def test_either_secret_is_accepted_while_it_rotates(client: httpx.AsyncClient) -> None:
    for secret in (POS_SECRET, POS_NEXT_SECRET):
        body = json.dumps({"type": "sale.completed", "data": {"till": 3}})
        res = await client.post("/hooks/pos", content=body, headers=signed(body, secret=secret))
        assert res.status_code == 202, res.text
