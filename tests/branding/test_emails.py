"""Emails in the brand their readers know: a retailer's task and SLA emails in the tenant's
effective brand (published on the control plane, carried to its runtime in the desired
state), an alert email in the partner's; everything from the themes autoescaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar

from control_plane.alerts.delivery import channel_brand
from control_plane.alerts.models import NotificationChannel
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.contracts.brand import DEFAULT, EmailKind, branding_templates, render_email
from control_plane.contracts.validate import lint
from tenant_runtime.engine.directory import Deployment
from tests.conftest import World
from tests.deployments.support import fleet
from tests.runtime.test_mailer import APPROVAL
from tests.runtimelink.brand_support import linked_runtime, palette, png, publish, upload


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def read(path: Path) -> tuple[EmailMessage, str, str]:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return message, text.get_content(), html.get_content()


async def test_task_and_sla_emails_wear_the_tenants_brand(
    app: Litestar, client: httpx.AsyncClient, world: World, tmp_path: Path
) -> None:
    f = await fleet(world)
    token = f.tree.partner_token
    logo = await upload(client, token, "partner", f.tree.partner_id, png((11, 94, 60)))
    await publish(
        client, token, "partner", f.tree.partner_id,
        product_name="Acme Store Desk", colors=palette("#0b5e3c"), logo=logo,
        email_sender_name="Acme Desk", support_email="help@acme.example",
        legal_links=[{"label": "Terms", "url": "https://acme.example/terms"}],
    )  # fmt: skip
    await publish(
        client, token, "tenant", f.tenant_id,
        product_name="FreshMart Stores", email_sender_name="FreshMart",
    )  # fmt: skip
    # A brand nobody here should ever see.
    other = await fleet(world)
    await publish(
        client, other.tree.partner_token, "partner", other.tree.partner_id,
        product_name="Bravo Retail Hub", colors=palette("#6a1b9a"),
    )  # fmt: skip

    contacts = {
        f"store_manager@store:{f.tree.store_id}": ["anna@freshmart.example"],
        f"regional_manager@region:{f.tree.region_id}": ["rita@freshmart.example"],
    }
    clock = Clock()
    async with linked_runtime(
        app, client, f, tmp_path, contacts=contacts, mail_from="tasks@freshmart.example",
        portal_url="https://ops.freshmart.example", clock=clock,
    ) as runtime:  # fmt: skip
        assert runtime.brand is not None and runtime.brand.product_name == "FreshMart Stores"
        template, problems = lint(APPROVAL, "markdown-approval/1.0.0.yaml")
        assert template is not None and not problems, problems
        runtime.directory.deployments[template.id] = Deployment(template)
        run_id = await runtime.start(
            template.id, {"sku": "<b>SKU-9</b>"}, store=str(f.tree.store_id)
        )
        await runtime.engine.pump()
        assert await runtime.send_mail() == 1
        clock.now += timedelta(minutes=25)
        await runtime.engine.tick()
        assert await runtime.send_mail() == 2
        assert await runtime.send_mail() == 0

    mails = [read(p) for p in sorted((tmp_path / "mail").glob("*.eml"))]
    by_subject = {m["Subject"]: (m, text, html) for m, text, html in mails}
    assert set(by_subject) == {
        "[FreshMart Stores] New task: Approve markdown of <b>SKU-9</b>",
        "[FreshMart Stores] SLA breached: Approve markdown of <b>SKU-9</b>",
        "[FreshMart Stores] Escalated to you: Approve markdown of <b>SKU-9</b>",
    }
    for message, text, html in by_subject.values():
        assert message["From"] == "FreshMart <tasks@freshmart.example>"
        assert message["From"].addresses[0].display_name == "FreshMart"
        assert "FreshMart Stores" in html and "FreshMart Stores" in text
        assert "background-color:#0b5e3c" in html, "the partner's primary colour, inherited"
        assert f'src="http://testserver/brand-assets/{logo}"' in html
        assert "help@acme.example" in html and "https://acme.example/terms" in html
        assert "Powered by StoreOps" in html and "Powered by StoreOps" in text
        assert "&lt;b&gt;SKU-9&lt;/b&gt;" in html and "<b>SKU-9" not in html, "autoescaped"
        assert "Bravo" not in html and "#6a1b9a" not in html
        assert "<link" not in html and "@import" not in html, "no external fonts or styles"
    new_task = by_subject["[FreshMart Stores] New task: Approve markdown of <b>SKU-9</b>"]
    assert new_task[0]["To"] == "anna@freshmart.example"
    assert "https://ops.freshmart.example/portal#task-" in new_task[2]
    escalated = by_subject["[FreshMart Stores] Escalated to you: Approve markdown of <b>SKU-9</b>"]
    assert escalated[0]["To"] == "rita@freshmart.example"
    assert str(run_id) not in escalated[1], "people read names, not ids"


async def test_a_platform_channel_mails_in_the_platform_brand(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    await publish(client, tree.partner_token, "partner", tree.partner_id, product_name="Nope")

    async def brands(c: Ctx) -> tuple[str, str]:
        session = c.session
        platform = NotificationChannel(partner_id=None, name="noc", kind="email")
        partner = NotificationChannel(partner_id=tree.partner_id, name="msp", kind="email")
        return (
            (await channel_brand(session, platform, settings)).product_name,
            (await channel_brand(session, partner, settings)).product_name,
        )

    assert await world.run(brands) == ("StoreOps", "Nope")


def test_every_kind_renders_in_the_default_brand() -> None:
    task = {"title": "T", "kind": "approval", "workflow": "W", "store": None, "due_at": None}
    alert = {
        "verb": "resolved", "severity": "warning", "tenant": "Tenant", "rule_name": "Rule",
        "rule_key": "rule", "condition": "queue_depth > 10 (value 3)", "reason": "why",
        "first_seen_at": "2026-01-01T00:00:00Z", "resolved_at": "2026-01-01T01:00:00Z",
        "resolution": "auto", "alert_id": "a-1",
    }  # fmt: skip
    folder = branding_templates()
    kinds: tuple[tuple[EmailKind, dict[str, Any]], ...] = (
        ("task_assigned", {"task": task, "reason": "task_assigned", "link": None}),
        ("sla_escalation", {"task": task, "reason": "escalation", "link": None}),
        ("alert", {"alert": alert}),
    )
    for kind, context in kinds:
        email = render_email(folder, kind, DEFAULT, **context)
        assert email.sender_name == "StoreOps"
        assert email.subject and "\n" not in email.subject
        assert "StoreOps" in email.html and DEFAULT.colors.primary in email.html
        assert "Powered by" not in email.text, "the platform's own look needs no credit"
