"""Notifications: signed webhooks a Standard Webhooks library accepts, e-mail in the
partner's brand through a real SMTP server (or the local .eml sink), retries with backoff,
then dead; never twice."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import standardwebhooks

from control_plane.alerts.delivery import deliver_due
from control_plane.alerts.models import DeliveryState
from control_plane.config import Settings
from tests.alerts.conftest import (
    Mailbox,
    Receiver,
    alerts_of,
    evaluate,
    heartbeat,
    make_rule,
    minutes_ago,
    new_key,
    outbox,
    payload_of,
    whsec,
)
from tests.alerts.test_lifecycle import depth_rule
from tests.conftest import Tree, World, bearer
from tests.runtimelink.brand_support import palette, png, publish, upload


async def deliver(world: World, settings: Settings, now: datetime | None = None) -> int:
    done: int = await world.run(lambda c: deliver_due(c, now or datetime.now(UTC), settings))
    return done


async def channel(client: httpx.AsyncClient, tree: Tree, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/notification-channels",
        json={"name": "ch", "partner_id": str(tree.partner_id), **body},
        headers=bearer(tree.partner_token),
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def fire(
    client: httpx.AsyncClient, world: World, tree: Tree, key: str, t0: datetime
) -> dict[str, Any]:
    await heartbeat(client, world, tree, t0, queue_depth=50)
    await evaluate(world, t0)
    [alert] = await alerts_of(client, tree.partner_token, tree.tenant_id, key)
    assert alert["state"] == "open"
    return alert


async def test_webhooks_are_signed_as_standard_webhooks_and_sent_once(
    client: httpx.AsyncClient, world: World, settings: Settings, receiver: Receiver
) -> None:
    tree = await world.tree()
    secret = whsec()
    made = await channel(client, tree, kind="webhook", url=receiver.url, secret=secret)
    assert "secret" not in made and made["has_secret"] is True
    key = await depth_rule(client, tree, for_seconds=0)
    t0 = minutes_ago(10)
    alert = await fire(client, world, tree, key, t0)
    await deliver(world, settings)
    assert len(receiver.got) == 1
    got = receiver.got[0]
    verified = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
    assert verified["type"] == "alert.opened"
    assert verified["data"]["alert_id"] == alert["id"]
    assert verified["data"]["reason"] == "50 steps waiting to start"
    assert got.headers["webhook-signature"].startswith("v1,")
    [row] = await outbox(world, alert["id"])
    assert row.state == DeliveryState.SENT and row.attempts == 1
    assert got.headers["webhook-id"] == f"msg_{row.id.hex}"

    # Sent rows are never sent again.
    await deliver(world, settings)
    assert len(receiver.got) == 1

    await heartbeat(client, world, tree, t0 + timedelta(seconds=30), queue_depth=0)
    await evaluate(world, t0 + timedelta(seconds=40))
    await deliver(world, settings)
    assert [payload_of(r)["type"] for r in receiver.got] == ["alert.opened", "alert.resolved"]
    assert payload_of(receiver.got[1])["data"]["resolution"] == "auto"

    # The secret is write-only: not in reads, not in the audit log.
    read = await client.get(
        f"/api/v1/notification-channels/{made['id']}", headers=bearer(tree.partner_token)
    )
    assert secret not in read.text
    audit = await client.get(
        "/api/v1/audit", params={"target_id": made["id"]}, headers=bearer(tree.partner_token)
    )
    assert audit.json()["items"] and secret not in audit.text


async def brand_partner(client: httpx.AsyncClient, tree: Tree) -> str:
    """Publish the partner's theme (with a logo); returns the logo's SHA-256."""
    logo = await upload(client, tree.partner_token, "partner", tree.partner_id, png((11, 94, 60)))
    await publish(
        client, tree.partner_token, "partner", tree.partner_id,
        product_name="Northstar NOC", colors=palette("#0b5e3c"), logo=logo,
        email_sender_name="Northstar Alerts", support_email="noc-help@northstar.example",
    )  # fmt: skip
    return logo


def parts(raw: bytes) -> tuple[EmailMessage, str, str]:
    """The message, its plain-text part and its HTML alternative."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None, "text with an HTML alternative"
    return message, text.get_content(), html.get_content()


async def test_email_goes_through_smtp(
    client: httpx.AsyncClient, world: World, settings: Settings, smtp_server: Mailbox
) -> None:
    tree = await world.tree()
    logo = await brand_partner(client, tree)
    await channel(client, tree, kind="email", addresses=["noc@msp.example", "ops@msp.example"])
    key = await depth_rule(client, tree, for_seconds=0)
    alert = await fire(client, world, tree, key, minutes_ago(10))
    smtp = dataclasses.replace(
        settings, smtp_host="127.0.0.1", smtp_port=smtp_server.port, smtp_from="alerts@sp.example"
    )
    await deliver(world, smtp)
    [envelope] = smtp_server.messages
    assert envelope.mail_from == "alerts@sp.example"
    assert sorted(envelope.rcpt_tos) == ["noc@msp.example", "ops@msp.example"]
    mail, text, html = parts(envelope.original_content or b"")
    assert mail["Subject"].startswith("[CRITICAL] Tenant ")
    assert mail["Subject"].endswith(" opened")
    # In the partner's brand: its sender name, product, colours, logo and support contact.
    assert mail["From"] == "Northstar Alerts <alerts@sp.example>"
    assert "50 steps waiting to start" in text and alert["id"] in text
    assert "Northstar NOC" in text and "noc-help@northstar.example" in text
    assert "Northstar NOC" in html and "#0b5e3c" in html
    assert f'src="http://testserver/brand-assets/{logo}"' in html
    assert "50 steps waiting to start" in html
    [row] = await outbox(world, alert["id"])
    assert row.state == DeliveryState.SENT
    assert mail["Message-ID"] == f"<{row.id.hex}@storeops.alerts>"


async def test_without_an_smtp_host_mail_lands_in_the_local_sink(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    await channel(client, tree, kind="email", addresses=["noc@msp.example"])
    key = await depth_rule(client, tree, for_seconds=0)
    alert = await fire(client, world, tree, key, minutes_ago(10))
    assert settings.smtp_host == ""
    await deliver(world, settings)
    [row] = await outbox(world, alert["id"])
    assert row.state == DeliveryState.SENT
    eml = settings.home / "mail" / f"{row.id}.eml"
    message, text, html = parts(eml.read_bytes())
    assert message["To"] == "noc@msp.example" and "opened" in message["Subject"]
    # No theme published: the platform's look and sender name.
    assert message["From"].startswith("StoreOps <")
    assert "StoreOps" in html and "Powered by" not in text


async def test_failures_are_retried_with_backoff_then_dead(
    client: httpx.AsyncClient, world: World, settings: Settings, receiver: Receiver
) -> None:
    receiver.status = 503
    tree = await world.tree()
    await channel(client, tree, kind="webhook", url=receiver.url, secret=whsec())
    key = await depth_rule(client, tree, for_seconds=0)
    alert = await fire(client, world, tree, key, minutes_ago(10))
    limited = dataclasses.replace(settings, alert_delivery_max_attempts=3)
    now = datetime.now(UTC)
    await deliver(world, limited, now)
    [row] = await outbox(world, alert["id"])
    assert (row.state, row.attempts) == (DeliveryState.PENDING, 1)
    assert row.last_error == "the receiver answered 503"
    assert row.next_attempt_at == now + timedelta(seconds=30)
    await deliver(world, limited, now + timedelta(seconds=10))  # not due yet
    assert len(receiver.got) == 1
    await deliver(world, limited, now + timedelta(seconds=30))
    [row] = await outbox(world, alert["id"])
    assert row.attempts == 2 and row.next_attempt_at == now + timedelta(seconds=90)
    await deliver(world, limited, now + timedelta(seconds=90))
    [row] = await outbox(world, alert["id"])
    assert (row.state, row.attempts) == (DeliveryState.DEAD, 3)
    await deliver(world, limited, now + timedelta(days=1))
    assert len(receiver.got) == 3


async def test_channels_are_checked_and_scoped(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    other = await world.tree()
    bad = await client.post(
        "/api/v1/notification-channels",
        json={"name": "x", "kind": "webhook", "url": "https://hooks.example/a", "secret": "nope"},
        headers=bearer(tree.partner_token),
    )
    assert bad.status_code == 403  # a platform channel, from a partner
    bad = await client.post(
        "/api/v1/notification-channels",
        json={"name": "x", "kind": "webhook", "partner_id": str(tree.partner_id),
              "url": "https://hooks.example/a", "secret": "whsec_c2hvcnQ="},
        headers=bearer(tree.partner_token),
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "secret"
    made = await channel(
        client, tree, kind="webhook", url="https://hooks.example/a", secret=whsec()
    )
    hidden = await client.get(
        f"/api/v1/notification-channels/{made['id']}", headers=bearer(other.partner_token)
    )
    assert hidden.status_code == 404
    rotated = await client.patch(
        f"/api/v1/notification-channels/{made['id']}",
        json={"secret": whsec(), "min_severity": "critical"},
        headers=bearer(tree.partner_token),
    )
    assert rotated.status_code == 200 and rotated.json()["min_severity"] == "critical"


async def test_a_channel_hears_only_its_severities(
    client: httpx.AsyncClient, world: World, receiver: Receiver
) -> None:
    tree = await world.tree()
    await channel(
        client, tree, kind="webhook", url=receiver.url, secret=whsec(), min_severity="critical"
    )
    key = new_key("info")
    await make_rule(
        client,
        tree.partner_token,
        key=key,
        partner_id=str(tree.partner_id),
        metric="queue_depth",
        comparator=">",
        threshold=10,
        severity="info",
    )
    alert = await fire(client, world, tree, key, minutes_ago(10))
    assert await outbox(world, alert["id"]) == []
