"""The demo's fleet: for each demo retailer, a sandbox (its simulated ERP, POS, WMS, CRM, HR
and service desk) and an embedded tenant runtime (SQLite, in-process steps) with a few
library templates deployed directly, plus a traffic process that keeps the inboxes and
run pages alive: it starts runs, forwards the sandbox's events to the runtime as signed
webhooks, and decides some of the tasks people would.

The control plane's deployment flow replaces the direct deployment later; nothing here
is used outside the demo.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from control_plane.context import Ctx
from control_plane.demo import DEMO_PASSWORD
from control_plane.tenancy.models import Region, Store, Tenant

#: Template -> parameter values for the demo's direct deployments.
DEPLOYMENTS: dict[str, dict[str, Any]] = {
    "stock-transfer-approval": {},
    "maintenance-incident": {},
    "returns-refund-approval": {},
    "store-opening-closing-checklist": {},
}
SYSTEMS = ("erp", "pos", "wms", "crm", "hr", "itsm", "ecommerce", "payments")
SANDBOX_PORT, RUNTIME_PORT = 8300, 8200


@dataclass
class Member:
    """One demo retailer's runtime as the fleet runs it."""

    tenant_id: str
    slug: str
    name: str
    admin_email: str
    runtime_url: str
    sandbox_url: str
    runtime_port: int
    sandbox_port: int
    home: str
    webhook_secret: str
    stores: list[str]


async def members(ctx: Ctx, home: Path) -> list[tuple[Member, dict[str, Any]]]:
    """Each demo tenant with its desired state (deployments and stores)."""
    from tenant_runtime.webhooks import generate_secret

    tenants = (await ctx.session.scalars(select(Tenant).order_by(Tenant.created_at))).all()
    found = []
    for i, tenant in enumerate(tenants):
        rows = (
            await ctx.session.execute(
                select(Store, Region.id)
                .outerjoin(Region, Region.id == Store.region_id)
                .where(Store.tenant_id == tenant.id)
                .order_by(Store.code)
            )
        ).all()
        stores: dict[str, dict[str, Any]] = {
            str(store.id): {
                "code": store.code,
                "name": store.name,
                "region_id": str(region_id) if region_id else None,
                "timezone": store.timezone,
                "opening_hours": store.opening_hours,
                "holidays": store.holidays,
            }
            for store, region_id in rows
        }
        member_home = home / "fleet" / tenant.slug
        member = Member(
            tenant_id=str(tenant.id),
            slug=tenant.slug,
            name=tenant.name,
            admin_email=f"admin@{tenant.slug}.example",
            runtime_url=f"http://127.0.0.1:{RUNTIME_PORT + i + 1}",
            sandbox_url=f"http://127.0.0.1:{SANDBOX_PORT + i + 1}",
            runtime_port=RUNTIME_PORT + i + 1,
            sandbox_port=SANDBOX_PORT + i + 1,
            home=str(member_home),
            webhook_secret=generate_secret(),
            stores=[str(s["code"]) for s in stores.values()],
        )
        desired = {
            "deployments": {t: {"version": "1.0.0", "params": p} for t, p in DEPLOYMENTS.items()},
            "stores": stores,
        }
        found.append((member, desired))
    return found


def launch(
    members: list[tuple[Member, dict[str, Any]]],
    control_plane_url: str,
    home: Path,
    *,
    issuer: str,
    audience: str,
) -> list[subprocess.Popen[bytes]]:
    """Start each member's sandbox and runtime, then the traffic process."""
    exe = [sys.executable, "-m", "control_plane.cli"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = home / "fleet"
    logs.mkdir(parents=True, exist_ok=True)

    def start(args: list[str], log: str, env: dict[str, str] | None = None) -> None:
        out = (logs / log).open("ab")
        procs.append(
            subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [*exe, *args],
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        )

    for member, desired in members:
        Path(member.home).mkdir(parents=True, exist_ok=True)
        desired_file = Path(member.home) / "desired.json"
        desired_file.write_text(json.dumps(desired, indent=2))
        start(["sandbox", "--port", str(member.sandbox_port)], f"{member.slug}-sandbox.log")
        bindings = {name: {"base_url": f"{member.sandbox_url}/{name}"} for name in SYSTEMS}
        start(
            ["runtime", "serve", "--port", str(member.runtime_port)],
            f"{member.slug}-runtime.log",
            {
                "STOREOPS_RUNTIME_TENANT_ID": member.tenant_id,
                "STOREOPS_RUNTIME_HOME": member.home,
                "STOREOPS_RUNTIME_DESIRED_FILE": str(desired_file),
                "STOREOPS_RUNTIME_BINDINGS": json.dumps(bindings),
                "STOREOPS_RUNTIME_WEBHOOK_SECRETS": json.dumps(
                    {name: [member.webhook_secret] for name in SYSTEMS}
                ),
                "STOREOPS_RUNTIME_CONTROL_PLANE_URL": control_plane_url,
                "STOREOPS_RUNTIME_TOKEN_ISSUER": issuer,
                "STOREOPS_RUNTIME_TOKEN_AUDIENCE": audience,
                "STOREOPS_RUNTIME_SWEEP_SECONDS": "1",
            },
        )
    fleet_file = logs / "fleet.json"
    fleet_file.write_text(
        json.dumps({"control_plane": control_plane_url, "members": [asdict(m) for m, _ in members]})
    )
    start(["demo-traffic", str(fleet_file)], "traffic.log")
    return procs


def _die_with_parent() -> None:
    """On Linux, the kernel stops a fleet process when ``storeops demo`` ends, however it
    ends (Ctrl-C, a SIGTERM, a crash): no runtime or sandbox outlives the demo."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + 5
    for proc in procs:
        try:
            proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            proc.kill()


# --- traffic ---------------------------------------------------------------------------


def sample_input(template_id: str, store: str, rng: random.Random) -> dict[str, Any]:
    """A plausible request for each deployed template at ``store``."""
    sku = f"SKU-{rng.randint(10001, 10060)}"
    if template_id == "stock-transfer-approval":
        return {
            "sku": sku,
            "quantity": rng.choice([6, 12, 24, 48, 120]),
            "from_location": "DC-NORTH",
            "to_store": store,
            "store_id": store,
        }
    if template_id == "maintenance-incident":
        category, text = rng.choice(
            [
                ("refrigeration", "Dairy chiller at 9°C and rising, alarm beeping"),
                ("pos_outage", "Till 3 card reader frozen, customers queueing"),
                ("plumbing", "Leak under the staff room sink"),
                ("lighting", "Two ceiling panels flickering in aisle 7"),
            ]
        )
        return {
            "store_id": store,
            "category": category,
            "description": text,
            "reported_by": "store app",
        }
    if template_id == "returns-refund-approval":
        amount = rng.choice([12.5, 39.99, 89.0, 240.0, 610.0])
        return {
            "store_id": store,
            "return_id": f"RET-{rng.randint(100000, 999999)}",
            "order_id": f"ORD-{rng.randint(100000, 999999)}",
            "customer_id": f"CUST-{rng.randint(1000, 9999)}",
            "refund_amount": amount,
            "disposition": rng.choice(["restock", "damaged"]),
            "lines": [{"sku": sku, "quantity": 1, "unit_price": amount}],
        }
    return {"store_id": store, "checklist": rng.choice(["opening", "closing"])}


class Traffic:
    """Light, steady activity across the fleet (one process, plain HTTP)."""

    def __init__(self, fleet: dict[str, Any], *, seed: int = 7) -> None:
        self.control_plane = fleet["control_plane"]
        self.members = [Member(**m) for m in fleet["members"]]
        self.rng = random.Random(seed)
        self.tokens: dict[str, tuple[str, float]] = {}
        self.seen: dict[str, int] = {m.slug: 0 for m in self.members}
        self.http = httpx.Client(timeout=10.0)

    def token(self, member: Member) -> str:
        token, expires = self.tokens.get(member.slug, ("", 0.0))
        if time.monotonic() > expires - 60:
            answer = self.http.post(
                f"{self.control_plane}/api/v1/auth/login",
                json={"email": member.admin_email, "password": DEMO_PASSWORD},
            )
            answer.raise_for_status()
            body = answer.json()
            token, expires = body["access_token"], time.monotonic() + body["expires_in"]
            self.tokens[member.slug] = (token, expires)
        return token

    def start_run(self, member: Member) -> None:
        template_id = self.rng.choice(list(DEPLOYMENTS))
        store = self.rng.choice(member.stores)
        self.http.post(
            f"{member.runtime_url}/api/v1/runs",
            json={
                "template_id": template_id,
                "input": sample_input(template_id, store, self.rng),
                "store": store,
            },
            headers={"Authorization": f"Bearer {self.token(member)}"},
        ).raise_for_status()

    def forward_events(self, member: Member) -> None:
        from tenant_runtime.webhooks import WebhookSecret, webhook_headers

        found = self.http.get(
            f"{member.sandbox_url}/_sandbox/events", params={"after": self.seen[member.slug]}
        ).json()
        secret = WebhookSecret.parse(member.webhook_secret)
        for event in found["events"]:
            body = json.dumps(
                {
                    "type": event["type"],
                    "correlation": event["correlation"],
                    "data": event["payload"],
                }
            )
            msg_id = f"sandbox-{member.slug}-{event['seq']}"
            self.http.post(
                f"{member.runtime_url}/hooks/{event['source']}",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    **webhook_headers([secret], msg_id, int(time.time()), body),
                },
            )
            self.seen[member.slug] = max(self.seen[member.slug], int(event["seq"]))

    def decide_some(self, member: Member) -> None:
        """Approve or reject about a third of the open tasks; the rest wait for people."""
        headers = {"Authorization": f"Bearer {self.token(member)}"}
        answer = self.http.get(f"{member.runtime_url}/api/v1/tasks", headers=headers)
        inbox = answer.raise_for_status().json()
        for task in inbox.get("items", []):
            if self.rng.random() > 0.33:
                continue
            if task["kind"] == "approval":
                body: dict[str, Any] = {
                    "decision": "approved" if self.rng.random() < 0.8 else "rejected",
                    "comment": "checked by the demo's duty manager",
                }
            else:
                answers = {
                    item["id"]: {"ok": True, "evidence": _evidence(item)}
                    for item in task["form"]
                    if item.get("required", True)
                }
                body = {"decision": "submitted", "answers": answers}
            self.http.post(
                f"{member.runtime_url}/api/v1/tasks/{task['id']}/decision",
                json=body,
                headers=headers,
            )

    def round(self) -> None:
        for member in self.members:
            try:
                if self.rng.random() < 0.6:
                    self.start_run(member)
                self.forward_events(member)
                self.decide_some(member)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                print(f"traffic: {member.slug}: {exc}", flush=True)

    def forever(self, every: float = 4.0) -> None:
        while True:
            self.round()
            time.sleep(every)


def _evidence(item: dict[str, Any]) -> Any:
    kind = item.get("evidence", "none")
    if kind == "number":
        low, high = item.get("min"), item.get("max")
        return (low + high) / 2 if low is not None and high is not None else 1
    if kind == "photo":
        return "photo://demo/evidence.jpg"
    if kind == "text":
        return "done"
    return None
