"""One e-mail, built and sent the same way by the control plane (alerts) and by a tenant
runtime (tasks, escalations): a rendered :class:`~control_plane.contracts.brand.Email` as
text with an HTML alternative, from the brand's sender name; sent by SMTP when a host is
configured, else written to the local sink as ``<sink>/<name>.eml``."""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import Protocol

from control_plane.contracts.brand import Email

TIMEOUT_SECONDS = 10.0


class SmtpSettings(Protocol):
    @property
    def smtp_host(self) -> str: ...
    @property
    def smtp_port(self) -> int: ...
    @property
    def smtp_starttls(self) -> bool: ...
    @property
    def smtp_username(self) -> str: ...
    @property
    def smtp_password(self) -> str: ...


def sender(display_name: str, configured: str) -> str:
    """``"<display name>" <address>``: the brand's sender name on the configured address."""
    address = parseaddr(configured)[1] or configured
    return str(Address(display_name=display_name, addr_spec=address))


def compose(
    rendered: Email,
    *,
    from_address: str,
    to: list[str],
    message_id: str,
    date: datetime,
    headers: Mapping[str, str],
) -> EmailMessage:
    """The message; ``message_id`` must be the same on every attempt, so a reader drops a
    copy resent after a crash."""
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = sender(rendered.sender_name, from_address)
    message["To"] = ", ".join(to)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name] = value
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def send(message: EmailMessage, settings: SmtpSettings, sink: Path, name: str) -> None:
    """Blocking: run it in a thread. Raises OSError or smtplib.SMTPException on failure."""
    if not settings.smtp_host:
        sink.mkdir(parents=True, exist_ok=True)
        (sink / f"{name}.eml").write_bytes(message.as_bytes())
        return
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)
