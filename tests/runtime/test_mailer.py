"""The runtime emails its task notifications: once each (however many delivery passes),
to the people its contacts name for the role, by SMTP or into the local .eml sink; a failed
send is retried with backoff and then given up, and nobody to send to is given up at once."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from control_plane.contracts.brand import DEFAULT
from control_plane.contracts.validate import lint
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.db.schema import notifications
from tenant_runtime.engine.directory import Deployment, Directory, StoreInfo
from tenant_runtime.mailer import Mailer, message_id
from tenant_runtime.runtime import Runtime
from tests.conftest import _admin_exec
from tests.engine.conftest import _database

TENANT, NORTH, STORE = uuid4(), uuid4(), uuid4()
APPROVAL = """
id: markdown-approval
name: Markdown approval
version: 1.0.0
category: pricing
owner: platform
summary: A store manager approves a markdown; the region hears when it is late.
triggers: [{kind: api}]
steps:
  - id: approve
    kind: approval
    name: Approve markdown
    title: '"Approve markdown of " + string(input.sku)'
    assignee: {role: store_manager, scope: store}
    sla: {duration: 10m, calendar: wall}
    escalation:
      - {after: 20m, to: {role: regional_manager, scope: region}}
    outcomes: {approved: end, rejected: end}
"""
SIGNOFF = """
id: admin-signoff
name: Admin sign-off
version: 1.0.0
category: procurement
owner: platform
summary: The retailer's admin signs off; nobody is listed for that role.
triggers: [{kind: api}]
steps:
  - id: sign
    kind: approval
    assignee: {role: retailer_admin, scope: tenant}
    outcomes: {approved: end, rejected: end}
"""
CONTACTS = {
    "store_manager@store:S-A": ["anna@shop.example"],
    f"regional_manager@region:{NORTH}": ["rita@shop.example", "rob@shop.example"],
}
BRAND = msgspec.structs.replace(
    DEFAULT, product_name="Acme Store Desk", email_sender_name="Acme Desk", source="partner"
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def directory() -> Directory:
    deployments = {}
    for source in (APPROVAL, SIGNOFF):
        template, problems = lint(source, "t/1.0.0.yaml")
        assert template is not None and not problems, problems
        deployments[template.id] = Deployment(template)
    store = StoreInfo(id=str(STORE), code="S-A", name="Avenue", region=str(NORTH))
    return Directory(deployments, {str(STORE): store}, dict(CONTACTS))


@pytest.fixture(params=["postgresql", "sqlite"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    url, name = await _database(request.param, tmp_path)
    await asyncio.to_thread(upgrade, url)
    settings = RuntimeSettings(
        tenant_id=TENANT, home=tmp_path, database_url=url, mail_from="ops@acme.example"
    )
    made = Runtime(settings, directory=directory(), clock=Clock())
    made.brand = BRAND
    yield made
    await made.close()
    if name:
        await _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clock_of(runtime: Runtime) -> Clock:
    clock = runtime.engine.clock
    assert isinstance(clock, Clock)
    return clock


async def rows(runtime: Runtime) -> list[Any]:
    async with runtime.db.connect() as conn:
        found = await conn.execute(select(notifications).order_by(notifications.c.created_at))
        return list(found.all())


def sink(runtime: Runtime) -> dict[str, EmailMessage]:
    """The .eml files written so far, by notification id."""
    folder = runtime.settings.home / "mail"
    return {
        path.stem: message_from_bytes(path.read_bytes(), policy=policy.default)
        for path in sorted(folder.glob("*.eml"))
    }


async def test_a_task_email_is_sent_once_however_many_passes(runtime: Runtime) -> None:
    await runtime.start("markdown-approval", {"sku": "SKU-1"}, store="S-A")
    await runtime.engine.pump()
    assert await runtime.send_mail() == 1
    assert await runtime.send_mail() == 0, "a sent notification is never sent again"
    [row] = await rows(runtime)
    assert (row.reason, row.recipient) == ("task_assigned", f"store_manager@store:{STORE}")
    assert row.sent_at is not None and row.attempts == 1 and row.error is None
    assert row.next_attempt_at is None
    [(name, mail)] = sink(runtime).items()
    assert name == str(row.id)
    assert mail["To"] == "anna@shop.example"
    assert mail["From"] == "Acme Desk <ops@acme.example>"
    assert mail["Subject"] == "[Acme Store Desk] New task: Approve markdown of SKU-1"
    assert mail["Message-ID"] == message_id(row.id, TENANT)
    html = mail.get_body(("html",))
    text = mail.get_body(("plain",))
    assert html is not None and text is not None
    assert "Approve markdown of SKU-1" in html.get_content()
    assert "Workflow: Markdown approval" in text.get_content()
    assert "Store: S-A Avenue" in text.get_content()


async def test_a_breach_and_an_escalation_email_their_people(runtime: Runtime) -> None:
    await runtime.start("markdown-approval", {"sku": "SKU-2"}, store="S-A")
    await runtime.engine.pump()
    assert await runtime.send_mail() == 1
    clock_of(runtime).now += timedelta(minutes=25)
    assert await runtime.engine.tick() == 2  # the SLA breach, then the first escalation rung
    assert await runtime.send_mail() == 2
    by_reason = {r.reason: r for r in await rows(runtime)}
    mails = sink(runtime)
    breach = mails[str(by_reason["sla_breach"].id)]
    assert breach["To"] == "anna@shop.example"
    assert breach["Subject"] == "[Acme Store Desk] SLA breached: Approve markdown of SKU-2"
    escalated = mails[str(by_reason["escalation"].id)]
    assert escalated["To"] == "rita@shop.example, rob@shop.example"
    assert escalated["Subject"] == "[Acme Store Desk] Escalated to you: Approve markdown of SKU-2"


async def test_nobody_to_send_to_is_given_up_at_once(runtime: Runtime) -> None:
    await runtime.start("admin-signoff", {})
    await runtime.engine.pump()
    assert await runtime.send_mail() == 1
    [row] = await rows(runtime)
    assert row.sent_at is None and row.next_attempt_at is None and row.attempts == 1
    assert "no email address for retailer_admin@tenant" in row.error
    clock_of(runtime).now += timedelta(days=1)
    assert await runtime.send_mail() == 0
    assert not (runtime.settings.home / "mail").exists(), "nothing was written"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_a_failed_send_is_retried_with_backoff_then_given_up(runtime: Runtime) -> None:
    await runtime.start("markdown-approval", {"sku": "SKU-3"}, store="S-A")
    await runtime.engine.pump()
    unreachable = dataclasses.replace(
        runtime.settings, smtp_host="127.0.0.1", smtp_port=_closed_port(), mail_max_attempts=2
    )
    clock = clock_of(runtime)
    mailer = Mailer(runtime.db, unreachable, runtime.directory, clock)
    start = clock.now
    assert await mailer.deliver(BRAND) == 1
    [row] = await rows(runtime)
    assert row.attempts == 1 and row.sent_at is None
    assert row.error.startswith("ConnectionRefusedError")
    assert row.next_attempt_at.replace(tzinfo=UTC) == start + timedelta(seconds=30)
    assert await mailer.deliver(BRAND) == 0, "not due again yet"
    clock.now = start + timedelta(seconds=30)
    assert await mailer.deliver(BRAND) == 1
    [row] = await rows(runtime)
    assert row.attempts == 2 and row.next_attempt_at is None, "given up after the last attempt"
    clock.now += timedelta(days=1)
    assert await mailer.deliver(BRAND) == 0


@pytest.fixture
def mailbox() -> Iterator[tuple[int, list[Envelope]]]:
    """aiosmtpd on localhost, keeping every message it accepts."""
    got: list[Envelope] = []

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            got.append(envelope)
            return "250 Message accepted for delivery"

    port = _closed_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, got
    finally:
        controller.stop()


async def test_with_an_smtp_host_the_mail_goes_through_it(
    runtime: Runtime, mailbox: tuple[int, list[Envelope]]
) -> None:
    port, got = mailbox
    await runtime.start("markdown-approval", {"sku": "SKU-4"}, store="S-A")
    await runtime.engine.pump()
    smtp = dataclasses.replace(runtime.settings, smtp_host="127.0.0.1", smtp_port=port)
    mailer = Mailer(runtime.db, smtp, runtime.directory, clock_of(runtime))
    assert await mailer.deliver(BRAND) == 1
    assert await mailer.deliver(BRAND) == 0
    [envelope] = got
    assert envelope.mail_from == "ops@acme.example"
    assert envelope.rcpt_tos == ["anna@shop.example"]
    mail = message_from_bytes(envelope.original_content or b"", policy=policy.default)
    assert mail["Subject"] == "[Acme Store Desk] New task: Approve markdown of SKU-4"
    assert not (runtime.settings.home / "mail").exists(), "nothing written to the local sink"


async def test_a_follower_waits_for_its_brand_before_mailing(runtime: Runtime) -> None:
    await runtime.start("markdown-approval", {"sku": "SKU-5"}, store="S-A")
    await runtime.engine.pump()
    runtime.brand = None
    runtime.follows = True  # as if it had a link home: its brand is on the way
    assert await runtime.send_mail() == 0
    runtime.pulled = True  # a desired state without a brand (an older control plane)
    assert await runtime.send_mail() == 1
    [mail] = sink(runtime).values()
    assert mail["From"] == "StoreOps <ops@acme.example>"


def test_contacts_name_a_store_by_id_or_code() -> None:
    found = directory()
    assert found.addresses(f"store_manager@store:{STORE}") == ["anna@shop.example"]
    assert found.addresses("store_manager@store:S-A") == ["anna@shop.example"]
    assert found.addresses("store_manager@store:S-Z") == []
    assert (
        found.addresses(f"regional_manager@region:{NORTH}")
        == CONTACTS[f"regional_manager@region:{NORTH}"]
    )
    assert found.addresses("retailer_admin@tenant") == []
