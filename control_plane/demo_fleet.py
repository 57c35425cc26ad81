"""The demo's fleet: for each demo retailer, a sandbox (its simulated ERP, POS, WMS, CRM, HR
and service desk) and an embedded tenant runtime (SQLite, in-process steps) linked to the
control plane the way production runtimes are: its own client credentials from a
bootstrap token, its deployments pulled as desired state, its telemetry pushed home. A
traffic process keeps the inboxes, run pages and the NOC alive: it starts runs, forwards
the sandbox's events to the runtime as signed webhooks, and decides some of the tasks
people would. One retailer's ERP is made to fail often, so the NOC has a degraded tenant.

Nothing here is used outside the demo.
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
from uuid import UUID

import httpx
import yaml
from sqlalchemy import select

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.db import Database
from control_plane.demo import DEMO_PASSWORD
from control_plane.deployments import schemas as deployment_schemas
from control_plane.deployments import service as deployments
from control_plane.deployments.models import Deployment
from control_plane.runner import run_as
from control_plane.runtimelink import bootstrap
from control_plane.tenancy.models import Region, Store, Tenant

LIBRARY = Path(__file__).resolve().parents[1] / "templates"
#: The library templates each demo retailer deploys (at their parameters' defaults).
DEPLOYMENTS = (
    "stock-transfer-approval",
    "maintenance-incident",
    "returns-refund-approval",
    "store-opening-closing-checklist",
)
SYSTEMS = ("erp", "pos", "wms", "crm", "hr", "itsm", "ecommerce", "payments")
SANDBOX_PORT, RUNTIME_PORT = 8300, 8200
#: The retailer whose ERP fails most calls, and the faults its sandbox starts with.
DEGRADED = "urbanthreads"
DEGRADED_FAULTS = [{"system": "erp", "operation": "*", "error_rate": 0.9}]


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
    faults: list[dict[str, Any]]
    #: role@scope -> addresses, for the runtime's task and escalation e-mails.
    contacts: dict[str, list[str]]


async def members(ctx: Ctx, home: Path) -> list[Member]:
    """Each demo tenant's runtime, with the demo's deployments made at the control plane
    (bound to the tenant's sandbox) where they are missing."""
    from tenant_runtime.webhooks import generate_secret

    tenants = (await ctx.session.scalars(select(Tenant).order_by(Tenant.created_at))).all()
    found = []
    for i, tenant in enumerate(tenants):
        sandbox_url = f"http://127.0.0.1:{SANDBOX_PORT + i + 1}"
        deployed = set(
            (
                await ctx.session.scalars(
                    select(Deployment.template_id).where(Deployment.tenant_id == tenant.id)
                )
            ).all()
        )
        for template_id in DEPLOYMENTS:
            if template_id not in deployed:
                await deployments.create_deployment(
                    ctx, tenant.id, _deployment(template_id, "1.0.0", sandbox_url)
                )
        codes = (
            await ctx.session.scalars(
                select(Store.code).where(Store.tenant_id == tenant.id).order_by(Store.code)
            )
        ).all()
        regions = (await ctx.session.execute(
            select(Region.id, Region.code).where(Region.tenant_id == tenant.id)
        )).all()  # fmt: skip
        contacts = {
            f"store_manager@store:{code}": [f"manager.{code.lower()}@{tenant.slug}.example"]
            for code in codes
        }
        contacts |= {f"regional_manager@region:{rid}": [f"{rc}@{tenant.slug}.example"]
                     for rid, rc in regions}  # fmt: skip
        contacts["retailer_admin@tenant"] = [f"admin@{tenant.slug}.example"]
        found.append(
            Member(
                tenant_id=str(tenant.id),
                slug=tenant.slug,
                name=tenant.name,
                admin_email=f"admin@{tenant.slug}.example",
                runtime_url=f"http://127.0.0.1:{RUNTIME_PORT + i + 1}",
                sandbox_url=sandbox_url,
                runtime_port=RUNTIME_PORT + i + 1,
                sandbox_port=SANDBOX_PORT + i + 1,
                home=str(home / "fleet" / tenant.slug),
                webhook_secret=generate_secret(),
                stores=list(codes),
                faults=DEGRADED_FAULTS if tenant.slug == DEGRADED else [],
                contacts=contacts,
            )
        )
    return found


async def noc_scene(ctx: Ctx) -> None:
    """What the NOC has to watch from the first minutes, made once: Northwind's override
    of the degraded-runtime rule (30 s instead of the platform's 2 minutes), an e-mail
    channel for its alerts (the local mail sink in the demo), and a rollout of
    maintenance-incident 1.2.0 (incident triage) across Northwind's retailers whose canary
    soaks for 15 minutes."""
    from control_plane.alerts import rules as alert_rules
    from control_plane.alerts import schemas as alert_schemas
    from control_plane.alerts.channels import create_channel
    from control_plane.alerts.models import ChannelKind
    from control_plane.rollouts import schemas as rollout_schemas
    from control_plane.rollouts import service as rollouts
    from control_plane.rollouts.models import Rollout
    from control_plane.tenancy.models import Partner

    if await ctx.session.scalar(select(Rollout.id).limit(1)) is not None:
        return
    northwind = await ctx.session.scalar(select(Partner).where(Partner.slug == "northwind"))
    canary = await ctx.session.scalar(select(Tenant.id).where(Tenant.slug == "freshmart"))
    if northwind is None or canary is None:
        return
    await alert_rules.create_rule(
        ctx,
        alert_schemas.AlertRuleCreate(
            key="runtime-degraded", partner_id=northwind.id, for_seconds=30
        ),
    )
    await create_channel(
        ctx,
        alert_schemas.NotificationChannelCreate(
            name="Northwind NOC desk",
            kind=ChannelKind.EMAIL,
            partner_id=northwind.id,
            addresses=["noc@northwind.example"],
        ),
    )
    await rollouts.create(
        ctx,
        rollout_schemas.RolloutCreate(
            template_id="maintenance-incident",
            version="1.2.0",
            partner_id=northwind.id,
            canary=canary,
            waves=[1, "rest"],
            soak_seconds=900,
        ),
    )


def _deployment(
    template_id: str, version: str, sandbox_url: str
) -> deployment_schemas.DeploymentCreate:
    """The library template at its parameters' defaults, each connector it declares bound
    to its system in the retailer's sandbox."""
    template = yaml.safe_load((LIBRARY / template_id / f"{version}.yaml").read_text())
    properties = template.get("parameters", {}).get("properties", {})
    return deployment_schemas.DeploymentCreate(
        template_id=template_id,
        version=version,
        params={name: p["default"] for name, p in properties.items() if "default" in p},
        bindings={
            name: {"base_url": f"{sandbox_url}/{connector['system']}", "auth": {"type": "none"}}
            for name, connector in template.get("connectors", {}).items()
        },
    )


async def credentials(settings: Settings, fleet: list[Member]) -> None:
    """Give each runtime that has none its own client credentials, by spending a bootstrap
    token as ``runtime serve --bootstrap-token`` would (the control plane is not serving
    yet when the fleet starts)."""
    db = Database(settings)
    try:
        for member in fleet:
            path = Path(member.home) / f"runtime-{member.tenant_id}.credentials.json"
            if path.is_file():
                continue
            tenant_id = UUID(member.tenant_id)

            async def issue(c: Ctx, t: UUID = tenant_id) -> bootstrap.Issued:
                return await bootstrap.issue(c, t)

            issued = await run_as(settings, issue, db=db)
            made = await bootstrap.exchange(db, settings, issued.token)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({"client_id": made.client_id, "client_secret": made.client_secret}, out)
    finally:
        await db.dispose()


def launch(
    members: list[Member],
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

    for member in members:
        Path(member.home).mkdir(parents=True, exist_ok=True)
        start(["sandbox", "--port", str(member.sandbox_port)], f"{member.slug}-sandbox.log")
        start(
            ["runtime", "serve", "--port", str(member.runtime_port)],
            f"{member.slug}-runtime.log",
            {
                "STOREOPS_RUNTIME_TENANT_ID": member.tenant_id,
                "STOREOPS_RUNTIME_HOME": member.home,
                "STOREOPS_RUNTIME_WEBHOOK_SECRETS": json.dumps(
                    {name: [member.webhook_secret] for name in SYSTEMS}
                ),
                "STOREOPS_RUNTIME_CONTROL_PLANE_URL": control_plane_url,
                "STOREOPS_RUNTIME_TOKEN_ISSUER": issuer,
                "STOREOPS_RUNTIME_TOKEN_AUDIENCE": audience,
                "STOREOPS_RUNTIME_SWEEP_SECONDS": "1",
                "STOREOPS_RUNTIME_HEARTBEAT_SECONDS": "5",
                "STOREOPS_RUNTIME_CONTACTS": json.dumps(member.contacts),
                "STOREOPS_RUNTIME_PORTAL_URL": member.runtime_url,
            },
        )
    fleet_file = logs / "fleet.json"
    fleet_file.write_text(
        json.dumps({"control_plane": control_plane_url, "members": [asdict(m) for m in members]})
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
        # What the store app sends: the reporter's rough category and their own words
        # (1.2.0 triages the words; some are too vague for the model and go to review).
        category, text = rng.choice(
            [
                ("refrigeration", "Dairy chiller at 9°C and rising, alarm beeping"),
                ("refrigeration", "Milk chiller warm again and the temperature alarm is beeping"),
                ("refrigeration", "Meat counter fridge showing 8 degrees, product moved out"),
                ("pos_outage", "Till 3 card reader frozen, customers queueing"),
                ("plumbing", "Leak under the staff room sink"),
                ("lighting", "Two ceiling panels flickering in aisle 7"),
                ("other", "Customer slipped on spilled yoghurt in aisle 4"),
                ("other", "Rats seen near the bins behind the loading bay"),
                ("other", "Something is not right at the back of the shop, please send someone"),
                ("other", "Strange noise from the unit on the roof since this morning"),
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
            body: dict[str, Any]
            if task["kind"] == "review":  # the duty manager mostly takes the suggestion
                review = task["context"]["review"]
                label = review["suggestion"]
                if self.rng.random() < 0.3:
                    label = self.rng.choice(review["labels"])
                body = {"decision": "reviewed", "answers": {"label": label}}
            elif task["kind"] == "approval":
                body = {
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

    def inject_faults(self) -> None:
        for member in self.members:
            for rule in member.faults:
                try:
                    self.http.post(f"{member.sandbox_url}/_sandbox/faults", json=rule)
                except httpx.HTTPError as exc:
                    print(f"traffic: {member.slug}: faults not set: {exc}", flush=True)

    def forever(self, every: float = 4.0) -> None:
        self.inject_faults()
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
