"""The agent takes the desired state into the runtime: valid deployments applied, broken
ones reported failed with the reason, paused ones taking no new runs, stores and bindings
updated, and a status report sent home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import msgspec
import pytest

from control_plane.contracts import desired_state as ds
from tenant_runtime.agent import Agent
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.runtime import Runtime, load_template

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
STORE = str(uuid4())


def entry(template_id: str, *, status: str = "active", **changes: Any) -> dict[str, Any]:
    template = load_template(TEMPLATES, template_id, "1.0.0")
    content: dict[str, Any] = {
        "template_id": template_id,
        "version": "1.0.0",
        "spec": msgspec.to_builtins(template),
        "params": {},
        "bindings": {name: {"base_url": f"http://sandbox/{name}"} for name in template.connectors},
        "triggers": {},
        "status": status,
    }
    digest = ds.deployment_hash(**content)
    content.update(changes)
    return {"id": str(uuid4()), "content_hash": digest, **content}


def document(tenant_id: str, deployments: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "contract_version": 1,
        "generation": 7,
        "deployments": deployments,
        "stores": {
            STORE: {
                "code": "S-1",
                "name": "Leeds",
                "region_id": str(uuid4()),
                "timezone": "Europe/London",
                "opening_hours": {"mon": [["08:00", "20:00"]]},
                "holidays": ["2026-12-25"],
            }
        },
    }


class Home:
    """The control plane's side of the conversation."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.body = json.dumps(doc).encode()
        self.reports: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 900})
        if request.url.path == "/runtime/v1/desired-state":
            if request.headers.get("if-none-match") == '"v1"':
                return httpx.Response(304, headers={"ETag": '"v1"'})
            return httpx.Response(200, content=self.body, headers={"ETag": '"v1"'})
        if request.url.path == "/runtime/v1/deployment-status":
            self.reports.append(json.loads(request.content))
            return httpx.Response(204)
        return httpx.Response(404)


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    settings = RuntimeSettings(
        tenant_id=uuid4(),
        home=tmp_path,
        control_plane_url="http://cp.test",
        client_id="so_runtime",
        client_secret="s3cret",
    )
    upgrade(settings.database_url)
    return Runtime(settings)


async def test_the_agent_applies_what_it_can_and_reports_the_rest(runtime: Runtime) -> None:
    tenant = str(runtime.settings.tenant_id)
    good = entry("stock-transfer-approval")
    paused = entry("markdown-request", status="paused")
    tampered = entry("returns-refund-approval", params={"max_refund": 1})
    unbound = entry("maintenance-incident")
    unbound["bindings"] = {}
    unbound["content_hash"] = ds.deployment_hash(
        **{
            k: unbound[k]
            for k in ("template_id", "version", "spec", "params", "triggers", "status")
        },
        bindings={},
    )
    home = Home(document(tenant, [good, paused, tampered, unbound]))
    assert runtime.link is not None
    runtime.link.http = httpx.AsyncClient(
        base_url="http://cp.test", transport=httpx.MockTransport(home)
    )
    agent = Agent(runtime)
    try:
        assert await agent.poll_once(wait=0)
        assert set(runtime.deployments) == {"stock-transfer-approval"}  # paused: no new runs
        assert runtime.stores[STORE].code == "S-1" and runtime.stores[STORE].region
        assert runtime.bindings.spec["erp"] == {"base_url": "http://sandbox/erp"}
        [report] = home.reports
        outcome = {d["id"]: (d["status"], d.get("reason")) for d in report["deployments"]}
        assert report["generation"] == 7
        assert outcome[good["id"]] == ("applied", None)
        assert outcome[paused["id"]] == ("applied", None)
        assert (
            outcome[tampered["id"]][0] == "failed" and "content hash" in outcome[tampered["id"]][1]
        )
        assert outcome[unbound["id"]] == ("failed", "connector 'itsm' has no binding")
        # Nothing changed: a conditional poll gets 304 and applies nothing.
        assert not await agent.poll_once(wait=0)
        assert home.requests[-1].headers["if-none-match"] == '"v1"'
        assert len(home.reports) == 1
    finally:
        await runtime.close()


async def test_a_document_for_another_tenant_is_refused(runtime: Runtime) -> None:
    home = Home(document(str(uuid4()), [entry("stock-transfer-approval")]))
    assert runtime.link is not None
    runtime.link.http = httpx.AsyncClient(
        base_url="http://cp.test", transport=httpx.MockTransport(home)
    )
    try:
        with pytest.raises(Exception, match="not this runtime's"):
            await Agent(runtime).poll_once(wait=0)
        assert runtime.deployments == {} and home.reports == []
    finally:
        await runtime.close()


async def test_the_tenants_triage_settings_choose_its_model(runtime: Runtime) -> None:
    tenant = str(runtime.settings.tenant_id)
    doc = document(tenant, [])
    doc["triage"] = {"model": "embeddings", "store_threshold": 4}
    home = Home(doc)
    assert runtime.link is not None
    runtime.link.http = httpx.AsyncClient(
        base_url="http://cp.test", transport=httpx.MockTransport(home)
    )
    try:
        assert runtime.engine.triage.settings.model == "tfidf"  # before the first pull
        assert await Agent(runtime).poll_once(wait=0)
        settings = runtime.engine.triage.settings
        assert (settings.model, settings.store_threshold, settings.window_days) == (
            "embeddings",
            4,
            30,
        )
        verdict = await runtime.engine.triage.classify(
            "category", "Dairy chiller at 9°C and rising, alarm beeping"
        )
        assert verdict.model == "minilm-svm" and verdict.label == "refrigeration"
    finally:
        await runtime.close()
