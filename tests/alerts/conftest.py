"""Alert fixtures: heartbeats sent the way a runtime sends them, rules made through the
API, evaluation at a chosen time, a local webhook receiver and a local SMTP server."""

from __future__ import annotations

import base64
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import select

from control_plane.alerts.models import Notification
from control_plane.contracts.telemetry import Kind
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.jobs import registered, run_job
from tests.conftest import Tree, World, bearer
from tests.telemetry.conftest import event, post_ok, runtime_token


def minutes_ago(n: float) -> datetime:
    """Telemetry must not come from the future: tests replay a recent past."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=n)


async def heartbeat(
    client: httpx.AsyncClient, world: World, tree: Tree, at: datetime, **data: Any
) -> None:
    token = await runtime_token(world, tree)
    await post_ok(client, token, tree, [event(Kind.HEARTBEAT, at, data=data)])


async def evaluate(world: World, now: datetime) -> int:
    done: int = await run_job(world.app.state.db, registered()["alerts.evaluate"], now)
    return done


def new_key(prefix: str = "t") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def platform_token(world: World) -> str:
    return await world.token(Grant(Role.PLATFORM_ADMIN))


async def make_rule(client: httpx.AsyncClient, token: str, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/alert-rules", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


async def alerts_of(
    client: httpx.AsyncClient, token: str, tenant_id: UUID, rule_key: str, **params: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/v1/alerts",
        params={"tenant_id": str(tenant_id), "limit": "200", **params},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    return [a for a in response.json()["items"] if a["rule_key"] == rule_key]


async def outbox(world: World, alert_id: str) -> list[Notification]:
    async def read(c: Any) -> list[Notification]:
        stmt = select(Notification).where(Notification.alert_id == UUID(alert_id))
        return list((await c.session.scalars(stmt.order_by(Notification.id))).all())

    rows: list[Notification] = await world.run(read)
    return rows


def whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# --- a webhook receiver ------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    status: int = 204
    got: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on localhost recording each POST and answering ``status``."""
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            state.got.append(
                Received({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
            )
            self.send_response(state.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# --- an SMTP server ----------------------------------------------------------------------


@dataclass
class Mailbox:
    port: int
    messages: list[Envelope] = field(default_factory=list)

    def parsed(self) -> list[dict[str, Any]]:
        from email import message_from_bytes

        out = []
        for envelope in self.messages:
            content = envelope.original_content or b""
            message = message_from_bytes(content)
            out.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "subject": message["Subject"],
                    "body": message.get_payload(decode=True).decode(),  # type: ignore[union-attr]
                }
            )
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """aiosmtpd on localhost, in its own thread, keeping every message it accepts."""
    box = Mailbox(port=_free_port())

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            box.messages.append(envelope)
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def payload_of(received: Received) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(received.body)
    return data
