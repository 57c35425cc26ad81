"""Email for the runtime's notifications: a task assigned, escalated or past its SLA,
rendered in the tenant's brand and sent by SMTP (without an SMTP host, written to
``<home>/mail/<notification id>.eml``).

A row is taken under a lock other workers skip and marked sent in the transaction that
sent it, so a message goes once; a crash between the send and the commit sends it once
more, with the same Message-ID for the reader to drop. A failed send is retried with
backoff, then given up with the reason on the row; a recipient nobody can be found for
is given up at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any
from uuid import UUID

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from control_plane.contracts import mail
from control_plane.contracts.brand import Brand, EmailKind, branding_templates, render_email
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.dialect import aware
from tenant_runtime.db.schema import notifications, tasks
from tenant_runtime.engine.directory import Directory
from tenant_runtime.engine.state import locked

log = logging.getLogger(__name__)

#: Notification reason -> the email that announces it. Other reasons are not emailed.
KINDS: dict[str, EmailKind] = {
    "task_assigned": "task_assigned",
    "escalation": "sla_escalation",
    "sla_breach": "sla_escalation",
    "insight": "insight",
}
#: First retry after this; doubled each attempt, capped at MAX_BACKOFF.
BASE_BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
#: Rows handled per delivery pass, so one pass never holds the sweeper for long.
BATCH = 50


class Undeliverable(Exception):
    """Trying again would not help: nobody to send to, or the task is gone."""


def mailed(channel: str, reason: str) -> bool:
    """Whether a new notification is one this module delivers."""
    return channel == "email" and reason in KINDS


def backoff(attempts: int) -> timedelta:
    delay: timedelta = BASE_BACKOFF * (2 ** max(attempts - 1, 0))
    return min(delay, MAX_BACKOFF)


def message_id(notification_id: UUID, tenant_id: UUID) -> str:
    """The same for every attempt at one notification."""
    return f"<{notification_id.hex}@{tenant_id.hex}.runtime.storeops>"


def _is_role(recipient: str) -> bool:
    """``store_manager@store:<id>``, ``regional_manager@region:<id>``, ``x@tenant``."""
    where = recipient.partition("@")[2]
    return where == "tenant" or where.startswith(("store:", "region:"))


class Mailer:
    def __init__(
        self,
        db: AsyncEngine,
        settings: RuntimeSettings,
        directory: Directory,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.settings = settings
        self.directory = directory
        self.clock = clock

    async def deliver(self, brand: Brand, *, limit: int = BATCH) -> int:
        """Send the notifications that are due, up to ``limit``; returns how many were
        handled (sent, rescheduled or given up)."""
        handled = 0
        while handled < limit:
            async with self.db.begin() as conn:
                now = self.clock()
                due = (
                    select(notifications)
                    .where(notifications.c.next_attempt_at <= now)
                    .order_by(notifications.c.next_attempt_at)
                    .limit(1)
                )
                row = (await conn.execute(locked(conn, due, skip=True))).first()
                if row is None:
                    break
                outcome = await self._attempt(conn, row, brand, now)
                await conn.execute(
                    update(notifications).where(notifications.c.id == row.id).values(**outcome)
                )
            handled += 1
        return handled

    async def _attempt(
        self, conn: AsyncConnection, row: Row[Any], brand: Brand, now: datetime
    ) -> dict[str, Any]:
        """The row's new delivery columns after one attempt."""
        attempts = row.attempts + 1
        try:
            message = await self.message(conn, row, brand)
            await asyncio.to_thread(self._send, message, row.id)
        except Undeliverable as exc:
            return {"attempts": attempts, "error": str(exc), "next_attempt_at": None}
        except Exception as exc:
            # Anything else may pass (a server away, a template being fixed): retry later,
            # and never let one message stop the sweeper that delivers them.
            log.warning("notification %s not sent (attempt %d): %s", row.id, attempts, exc)
            last = attempts >= self.settings.mail_max_attempts
            return {
                "attempts": attempts,
                "error": f"{type(exc).__name__}: {exc}"[:1000],
                "next_attempt_at": None if last else now + backoff(attempts),
            }
        return {"attempts": attempts, "sent_at": now, "error": None, "next_attempt_at": None}

    def recipients(self, recipient: str) -> list[str]:
        """The addresses to send to: a role's from the directory's contacts, or the
        address the notification names."""
        candidates = self.directory.addresses(recipient) if _is_role(recipient) else [recipient]
        return [a for a in candidates if "@" in parseaddr(a)[1]]

    async def message(self, conn: AsyncConnection, row: Row[Any], brand: Brand) -> EmailMessage:
        """The notification as a branded email (plain text with an HTML alternative)."""
        addresses = self.recipients(row.recipient)
        if not addresses:
            raise Undeliverable(
                f"no email address for {row.recipient}: name it in the runtime's contacts "
                "(STOREOPS_RUNTIME_CONTACTS)"
            )
        if row.reason == "insight":  # about a pattern, not a task: the message says it all
            headline, _, evidence = row.message.partition("\n\n")
            rendered = render_email(
                branding_templates(),
                "insight",
                brand,
                headline=headline,
                evidence=[line.removeprefix("- ") for line in evidence.splitlines() if line],
                link=self._link(None),
            )
        else:
            task = (await conn.execute(select(tasks).where(tasks.c.id == row.task_id))).first()
            if task is None:
                raise Undeliverable("the task this notification is about no longer exists")
            rendered = render_email(
                branding_templates(),
                KINDS[row.reason],
                brand,
                task=self._task(task),
                reason=row.reason,
                link=self._link(task.id),
            )
        return mail.compose(
            rendered,
            from_address=self.settings.mail_from,
            to=addresses,
            message_id=message_id(row.id, self.settings.tenant_id),
            date=aware(row.created_at),
            headers={"X-StoreOps-Notification": str(row.id)},
        )

    def _task(self, task: Row[Any]) -> dict[str, Any]:
        """What the task emails show: names a person reads, not ids."""
        deployment = self.directory.deployments.get(task.template_id)
        store = self.directory.store(task.store)
        label = " ".join(p for p in (store.code, store.name) if p) if store else task.store
        due = f"{aware(task.due_at):%Y-%m-%d %H:%M} UTC" if task.due_at else None
        return {
            "title": task.title,
            "kind": task.kind,
            "workflow": deployment.template.name if deployment else task.template_id,
            "store": label or None,
            "due_at": due,
        }

    def _link(self, task_id: UUID | None) -> str | None:
        base = self.settings.portal_url.rstrip("/")
        if not base:
            return None
        return f"{base}/portal#task-{task_id}" if task_id else f"{base}/portal"

    def _send(self, message: EmailMessage, notification_id: UUID) -> None:
        """SMTP, or with no SMTP host the local sink ``<home>/mail/<id>.eml``."""
        mail.send(message, self.settings, self.settings.home / "mail", str(notification_id))
