"""A tenant runtime behind its HTTP API, on PostgreSQL and on SQLite, with a test signing
key standing in for the control plane's (tokens minted here, its JWKS handed to the app)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey
from litestar import Litestar
from sqlalchemy import select

from control_plane.contracts import dsl
from control_plane.contracts.validate import lint
from tenant_runtime.api import create_runtime_app
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.db.schema import tasks
from tenant_runtime.engine.directory import Deployment, Directory, StoreInfo
from tenant_runtime.runtime import Runtime
from tests.conftest import _admin_exec
from tests.engine.conftest import _database

ISSUER = "http://control-plane.test"
AUDIENCE = "storeops-api"
KID = "runtime-test-key"
PROBLEM = "urn:storeops:problem:"

TENANT = uuid4()
OTHER_TENANT = uuid4()
PARTNER = uuid4()
NORTH, SOUTH = uuid4(), uuid4()
STORE_A, STORE_B, STORE_S = uuid4(), uuid4(), uuid4()  # A and B in the north, S in the south
ERP_SECRET = "whsec_" + base64.b64encode(b"erp-signing-key-for-runtime-tests").decode()
POS_SECRET = "whsec_" + base64.b64encode(b"pos-signing-key-for-runtime-tests").decode()
POS_NEXT_SECRET = "whsec_" + base64.b64encode(b"pos-rotated-key-for-runtime-test").decode()

TEMPLATES = {
    "markdown-approval": """
id: markdown-approval
name: Markdown approval
version: 1.0.0
category: pricing
owner: platform
summary: A store manager approves a markdown before it is applied.
parameters:
  type: object
  properties:
    max_percent: {type: integer, minimum: 1, maximum: 90, default: 30}
triggers: [{kind: api}]
steps:
  - id: approve
    kind: approval
    name: Approve markdown
    title: '"Approve markdown of " + string(input.sku)'
    assignee: {role: store_manager, scope: store}
    form:
      - {name: reason, type: text, label: Reason}
      - {name: percent, type: number, min: 1, max: 90}
    outcomes: {approved: applied, rejected: declined}
  - id: applied
    kind: set
    name: Apply markdown
    values: {result: '"applied"'}
    next: end
  - id: declined
    kind: set
    values: {result: '"declined"'}
    next: end
""",
    "opening-checklist": """
id: opening-checklist
name: Opening checklist
version: 1.0.0
category: compliance
owner: platform
summary: The store manager confirms the store is ready to open.
triggers: [{kind: api}]
steps:
  - id: open_store
    kind: checklist
    name: Opening checklist
    assignee: {role: store_manager}
    items:
      - {id: doors, label: Doors unlocked}
      - {id: fridge, label: Fridge temperature, evidence: number, min: 0, max: 8}
    next: end
""",
    "regional-signoff": """
id: regional-signoff
name: Regional sign-off
version: 1.0.0
category: procurement
owner: platform
summary: The regional manager signs off a purchase for a store.
triggers: [{kind: api}]
steps:
  - id: sign_off
    kind: approval
    name: Regional sign-off
    title: '"Sign off purchase " + string(input.po)'
    assignee: {role: regional_manager, scope: region}
    outcomes: {approved: end, rejected: end}
""",
    "price-push": """
id: price-push
name: Price push
version: 1.0.0
category: pricing
owner: platform
summary: Pushes a changed price to the ERP.
connectors:
  erp: {system: erp, operations: [push_price]}
triggers:
  - {kind: api}
  - {kind: webhook, source: erp, event: price.changed}
steps:
  - id: push
    kind: call
    name: Push price
    connector: erp
    operation: push_price
    input: {sku: input.sku}
    retry: {attempts: 1}
""",
    "strict-params": """
id: strict-params
name: Strict parameters
version: 1.0.0
category: inventory
owner: platform
summary: Its deployment gives a parameter of the wrong type.
parameters:
  type: object
  properties:
    limits:
      type: object
      properties:
        max: {type: integer}
triggers: [{kind: api}]
steps:
  - id: note
    kind: set
    values: {noted: "true"}
""",
}
#: Deployment parameters per template (strict-params' are wrong on purpose).
PARAMS: dict[str, dict[str, Any]] = {"strict-params": {"limits": {"max": "lots"}}}


def template(template_id: str) -> dsl.Template:
    parsed, problems = lint(TEMPLATES[template_id], f"{template_id}/1.0.0.yaml")
    assert parsed is not None and not problems, problems
    return parsed


def directory() -> Directory:
    return Directory(
        deployments={tid: Deployment(template(tid), PARAMS.get(tid, {})) for tid in TEMPLATES},
        stores={
            str(STORE_A): StoreInfo(id=str(STORE_A), code="S-A", name="Avenue", region=str(NORTH)),
            str(STORE_B): StoreInfo(id=str(STORE_B), code="S-B", name="Bridge", region=str(NORTH)),
            str(STORE_S): StoreInfo(id=str(STORE_S), code="S-S", name="South", region=str(SOUTH)),
        },
    )


# --- tokens ------------------------------------------------------------------------------

SIGNING_KEY = OKPKey.generate_key("Ed25519")


def public_jwk(key: OKPKey, kid: str = KID) -> dict[str, Any]:
    return {**key.as_dict(private=False), "kid": kid, "alg": "Ed25519", "use": "sig"}


JWKS = {"keys": [public_jwk(SIGNING_KEY)]}


def grant(role: str, **nodes: UUID) -> dict[str, Any]:
    return {"role": role, **{k: str(v) for k, v in nodes.items()}}


def mint(
    *grants: dict[str, Any],
    key: OKPKey = SIGNING_KEY,
    kid: str = KID,
    typ: str = "at+jwt",
    subject: str | None = None,
    **override: Any,
) -> str:
    """An access token shaped like the control plane's (RFC 9068 claims, grants)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": subject or f"user:{uuid4()}",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": secrets.token_hex(16),
        "kind": "user",
        "name": "Test User",
        "scope": " ".join(sorted({g["role"] for g in grants})),
        "grants": list(grants),
        **override,
    }
    header = {"alg": "Ed25519", "kid": kid, "typ": typ}
    return jwt.encode(header, claims, key, algorithms=["Ed25519"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Tokens:
    admin: str
    manager_a: str
    manager_b: str
    regional_north: str
    regional_south: str
    noc: str


@pytest.fixture(scope="session")
def tokens() -> Tokens:
    return Tokens(
        admin=mint(grant("retailer_admin", partner_id=PARTNER, tenant_id=TENANT)),
        manager_a=mint(grant("store_manager", tenant_id=TENANT, region_id=NORTH, store_id=STORE_A)),
        manager_b=mint(grant("store_manager", tenant_id=TENANT, region_id=NORTH, store_id=STORE_B)),
        regional_north=mint(grant("regional_manager", tenant_id=TENANT, region_id=NORTH)),
        regional_south=mint(grant("regional_manager", tenant_id=TENANT, region_id=SOUTH)),
        noc=mint(grant("noc_operator")),
    )


# --- the runtime and its app -------------------------------------------------------------


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
async def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Runtime]:
    """One migrated runtime database per backend and module; tests look at their own rows."""
    home = Path(tmp_path_factory.mktemp("runtime-api"))
    url, name = await _database(request.param, home)
    await asyncio.to_thread(upgrade, url)
    settings = RuntimeSettings(tenant_id=TENANT, home=home, database_url=url)
    rt = Runtime(settings, directory=directory())
    yield rt
    await rt.close()
    if name:
        await _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_app(runtime: Runtime, **options: Any) -> Litestar:
    defaults: dict[str, Any] = {
        "jwks": JWKS,
        "issuer": ISSUER,
        "webhook_secrets": {"erp": [ERP_SECRET], "pos": [POS_SECRET, POS_NEXT_SECRET]},
        "background": False,
    }
    return create_runtime_app(runtime, **{**defaults, **options})


@pytest.fixture(scope="module")
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://runtime.test") as c:
        yield c


# --- helpers -----------------------------------------------------------------------------


def assert_problem(res: httpx.Response, status: int, type_: str | None = None) -> dict[str, Any]:
    """An RFC 9457 body with the members clients rely on."""
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json"), res.headers
    body: dict[str, Any] = res.json()
    for member in ("type", "title", "status", "detail", "instance"):
        assert body.get(member), f"problem lacks {member!r}: {body}"
    assert body["status"] == status
    assert body["type"].startswith(PROBLEM)
    if type_ is not None:
        assert body["type"] == PROBLEM + type_, body
    assert res.headers.get("x-request-id")
    return body


async def start(
    client: httpx.AsyncClient,
    runtime: Runtime,
    template_id: str,
    token: str,
    *,
    store: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    """Start a run through the API and let the engine take it as far as it goes."""
    body: dict[str, Any] = {"template_id": template_id, "input": data}
    if store is not None:
        body["store"] = store
    res = await client.post("/api/v1/runs", json=body, headers=bearer(token))
    assert res.status_code == 201, res.text
    await runtime.engine.pump()
    run: dict[str, Any] = res.json()
    return run


async def task_of(runtime: Runtime, run_id: str) -> UUID:
    async with runtime.db.connect() as conn:
        found = await conn.scalar(select(tasks.c.id).where(tasks.c.run_id == UUID(run_id)))
    assert isinstance(found, UUID), f"run {run_id} opened no task"
    return found
