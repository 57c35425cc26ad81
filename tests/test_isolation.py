"""Tenant isolation, generated from the application's route table.

Every route that names a tenancy object in its path (partner, tenant, region, store, user,
client) is probed, with every method it serves, by tokens of tree A against the objects of
tree B: each probe must be a 404 problem document (ARCHITECTURE.md invariant 4: another
tenant's object is a 404, never a 403 or a 200) and B's rows must not change. Every list
route is read by A's tokens and must show none of B's ids. Region- and store-level grants
must not reach a sibling region's stores inside their own tenant.

Nothing here lists routes by hand: a route added to the app is probed automatically, and a
path parameter or body field this module does not know makes it fail loudly.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
import pytest
from httpx import AsyncClient, Response
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from control_plane.api.auth import PUBLIC_PATHS
from control_plane.api.pagination import Page
from control_plane.catalog import service as catalog
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.deployments import schemas as deployment_schemas
from control_plane.deployments import service as deployments
from control_plane.identity import schemas as ids
from control_plane.identity import service as identity
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.secrets import service as secret_service
from control_plane.tenancy import schemas as ts
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.service import TRANSITIONS
from tests.conftest import Tree, World, bearer

#: Path parameters that name an object owned by a node of the tenancy tree.
SCOPED_PARAMS = (
    "partner_id",
    "tenant_id",
    "region_id",
    "store_id",
    "user_id",
    "client_id",
    "template_id",
    "deployment_id",
)
#: Path parameters that are not object ids, with every value to probe.
OTHER_PARAMS: dict[str, tuple[str, ...]] = {
    "action": tuple(TRANSITIONS),
    "semver": ("1.0.0",),
    "status": ("deprecate", "yank", "restore"),
    "name": ("erp-api-key",),
}
TEMPLATE = Path(__file__).resolve().parents[1] / "templates/stock-transfer-approval/1.0.0.yaml"
SKIPPED_METHODS = frozenset({"OPTIONS", "HEAD"})
#: Values for body fields, so every generated body is valid for its schema.
SAMPLE_FIELDS: dict[str, Any] = {
    "name": "isolation-probe",
    "reason": "isolation probe",
    "slug": "isolation-probe",
    "code": "PROBE-1",
    "timezone": "Europe/Paris",
    "kind": "msp",
    "email": "isolation-probe@example.com",
    "password": "isolation-probe-password",
    "version": "1.0.0",
    "partner_id": "01a20000-0000-7000-8000-000000000000",
    "source": "id: probe",
    "value": "isolation-probe-value",
    "template_id": "stock-transfer-approval",
    "deployments": [],
    "generation": 0,
    "token": "sobt_isolation-probe",
    "key": "isolation-probe",
    "assignee": "isolation-probe@example.com",
    "body": "isolation probe",
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2026-01-01T01:00:00Z",
    "hostname": "isolation-probe.example.com",
    "effective_from": "2026-01",
    "currency": "EUR",
    "items": [{"meter": "runs", "unit_price": "1"}],
    "amount": 1,
    "period": "2026-01",
}
#: Values of a field that differ by body schema.
SAMPLE_OVERRIDES: dict[str, dict[str, Any]] = {
    "NotificationChannelCreate": {"kind": "email"},
    "PriceBookCreate": {"kind": "wholesale"},
}
#: Below this many cross-tree probes the route discovery must have gone wrong.
MIN_PROBES = 40
PROBLEM_JSON = "application/problem+json"
_PATH_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_PUBLIC = [re.compile(p) for p in PUBLIC_PATHS]


# --- the route table --------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str
    path_params: tuple[str, ...]
    body: dict[str, Any] | None
    returns_page: bool
    #: Query parameters that filter by a tenancy id (e.g. ``?partner_id=``).
    scoped_query: tuple[str, ...]

    @property
    def scoped_path_params(self) -> tuple[str, ...]:
        return tuple(p for p in self.path_params if p in SCOPED_PARAMS)

    @property
    def is_list(self) -> bool:
        last = self.template.rstrip("/").rsplit("/", 1)[-1]
        return self.method == "GET" and not _PATH_PARAM.fullmatch(last)

    def url(self, values: Mapping[str, object]) -> str:
        return _PATH_PARAM.sub(lambda m: str(values[m.group(1)]), self.template)


def _body_struct(handler: HTTPRouteHandler) -> type[msgspec.Struct] | None:
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    for candidate in (data.annotation, *data.args):
        if isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
            return candidate
    raise AssertionError(f"{handler}: cannot tell the body schema of {data.annotation!r}")


def sample_body(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """A body valid for ``struct``: its required fields, or one optional field if none are."""
    fields = msgspec.structs.fields(struct)
    names = [f.encode_name for f in fields if f.required]
    if not names:
        names = [f.encode_name for f in fields if f.encode_name in SAMPLE_FIELDS][:1]
    unknown = [n for n in names if n not in SAMPLE_FIELDS]
    assert not unknown, f"add sample values for {struct.__name__} fields {unknown}"
    samples = {**SAMPLE_FIELDS, **SAMPLE_OVERRIDES.get(struct.__name__, {})}
    body = {n: samples[n] for n in names}
    # The server decodes the same way: a 404 can then never be a validation failure.
    msgspec.json.decode(msgspec.json.encode(body), type=struct)
    return body


def endpoints(app: Litestar) -> list[Endpoint]:
    """Every authenticated (method, path) the application serves."""
    found: list[Endpoint] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or any(p.match(route.path) for p in _PUBLIC):
            continue
        path_params = tuple(_PATH_PARAM.findall(route.path))
        for handler in route.route_handlers:
            signature = handler.parsed_fn_signature
            struct = _body_struct(handler)
            returns_page = signature.return_type.origin is Page
            query = tuple(
                name
                for name in signature.parameters
                if name in SCOPED_PARAMS and name not in path_params
            )
            for method in sorted(handler.http_methods - SKIPPED_METHODS):
                found.append(
                    Endpoint(
                        method=method,
                        template=route.path,
                        path_params=path_params,
                        body=sample_body(struct) if struct else None,
                        returns_page=returns_page,
                        scoped_query=query,
                    )
                )
    return found


# --- the trees ----------------------------------------------------------------------------


@dataclass
class Side:
    """One tree plus a user and an API client it owns, and its other regions and stores."""

    tree: Tree
    user_id: UUID
    client_id: UUID
    #: A template private to the tree's partner.
    template_id: UUID
    #: That template deployed at the tree's tenant.
    deployment_id: UUID
    extra_region_ids: list[UUID] = field(default_factory=list)
    extra_store_ids: list[UUID] = field(default_factory=list)

    def values(self) -> dict[str, UUID]:
        t = self.tree
        return {
            "partner_id": t.partner_id,
            "tenant_id": t.tenant_id,
            "region_id": t.region_id,
            "store_id": t.store_id,
            "user_id": self.user_id,
            "client_id": self.client_id,
            "template_id": self.template_id,
            "deployment_id": self.deployment_id,
        }

    def all_ids(self) -> set[str]:
        own = {str(v) for v in self.values().values()}
        return own | {str(i) for i in (*self.extra_region_ids, *self.extra_store_ids)}


async def identities(world: World, tree: Tree) -> tuple[UUID, UUID, UUID, UUID]:
    """A user and an API client homed in ``tree``'s tenant, a template private to its
    partner and a deployment of it at the tenant, made through the services."""
    label = secrets.token_hex(4)
    grant = ids.GrantSpec(role=Role.RETAILER_ADMIN, tenant_id=tree.tenant_id)

    async def build(c: Ctx) -> tuple[UUID, UUID, UUID, UUID]:
        user, _ = await identity.create_user(
            c,
            ids.UserCreate(
                email=f"ops-{label}@example.com",
                name=f"Ops {label}",
                password="correct horse battery",
                grants=[grant],
            ),
        )
        client, _, _ = await identity.create_client(
            c, ids.ClientCreate(name=f"erp-{label}", grants=[grant])
        )
        partner = await tenancy.get_partner(c, tree.partner_id)
        source = TEMPLATE.read_text().replace("owner: platform", f"owner: partner:{partner.slug}")
        published = await catalog.publish(c, source)
        store = world.app.state.secrets
        await secret_service.create(
            c, store, "tenants", tree.tenant_id, "erp-api-key", "tenant-value"
        )
        await secret_service.create(
            c, store, "partners", tree.partner_id, "erp-api-key", "partner-value"
        )
        binding = {"base_url": "https://erp.example.com", "auth": {"type": "none"}}
        deployment, _ = await deployments.create_deployment(
            c,
            tree.tenant_id,
            deployment_schemas.DeploymentCreate(
                template_id="stock-transfer-approval",
                version="1.0.0",
                params={"auto_approve_below": 100},
                bindings={name: binding for name in ("erp", "wms", "ecommerce")},
            ),
        )
        return user.id, client.id, published.template.id, deployment.id

    made: tuple[UUID, UUID, UUID, UUID] = await world.run(build)
    return made


async def add_store(world: World, tree: Tree, region_id: UUID | None = None) -> UUID:
    async def build(c: Ctx) -> UUID:
        store = await tenancy.create_store(
            c,
            tree.tenant_id,
            ts.StoreCreate(code=f"S-{secrets.token_hex(3)}", name="Store", region_id=region_id),
        )
        return store.id

    store_id: UUID = await world.run(build)
    return store_id


async def add_region(world: World, tree: Tree) -> UUID:
    async def build(c: Ctx) -> UUID:
        region = await tenancy.create_region(
            c, tree.tenant_id, ts.RegionCreate(code=f"R-{secrets.token_hex(3)}", name="South")
        )
        return region.id

    region_id: UUID = await world.run(build)
    return region_id


@dataclass
class Sides:
    a: Side
    b: Side
    #: In tree A: a second store in A's region, and a sibling region with its own store.
    a_store_same_region: UUID
    a_sibling_region: UUID
    a_sibling_store: UUID
    tokens: dict[str, str]


@pytest.fixture(scope="module")
async def sides(world: World) -> Sides:
    tree_a, tree_b = await world.tree(), await world.tree()
    a = Side(tree_a, *await identities(world, tree_a))
    b = Side(tree_b, *await identities(world, tree_b))
    b.extra_region_ids.append(await add_region(world, tree_b))
    b.extra_store_ids.append(await add_store(world, tree_b, b.extra_region_ids[0]))
    same_region = await add_store(world, tree_a, tree_a.region_id)
    sibling_region = await add_region(world, tree_a)
    sibling_store = await add_store(world, tree_a, sibling_region)
    a.extra_region_ids.append(sibling_region)
    a.extra_store_ids += [same_region, sibling_store]
    t = tree_a
    tokens = {
        "partner_admin@A": t.partner_token,
        "retailer_admin@A": t.tenant_token,
        "regional_manager@A": await world.token(
            Grant(
                Role.REGIONAL_MANAGER,
                partner_id=t.partner_id,
                tenant_id=t.tenant_id,
                region_id=t.region_id,
            )
        ),
        "store_manager@A": await world.token(
            Grant(
                Role.STORE_MANAGER,
                partner_id=t.partner_id,
                tenant_id=t.tenant_id,
                region_id=t.region_id,
                store_id=t.store_id,
            )
        ),
    }
    return Sides(a, b, same_region, sibling_region, sibling_store, tokens)


# --- probes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    token: str
    endpoint: Endpoint
    url: str

    def __str__(self) -> str:
        return f"{self.token}: {self.endpoint.method} {self.url}"


def cross_tree_probes(
    found: list[Endpoint], tokens: list[str], mine: Mapping[str, UUID], theirs: Mapping[str, UUID]
) -> Iterator[Probe]:
    """For each scoped endpoint, every mix of A's and B's ids with at least one of B's."""
    for endpoint in found:
        scoped = endpoint.scoped_path_params
        if not scoped:
            continue
        others = [p for p in endpoint.path_params if p not in SCOPED_PARAMS]
        unknown = [p for p in others if p not in OTHER_PARAMS]
        assert not unknown, f"{endpoint.template}: teach this test the path parameter(s) {unknown}"
        for owners in itertools.product((mine, theirs), repeat=len(scoped)):
            if all(o is mine for o in owners):
                continue
            values: dict[str, object] = {p: o[p] for p, o in zip(scoped, owners, strict=True)}
            for extra in itertools.product(*(OTHER_PARAMS[p] for p in others)):
                values.update(zip(others, extra, strict=True))
                for token in tokens:
                    yield Probe(token, endpoint, endpoint.url(values))


def expected_probe_count(found: list[Endpoint], tokens: int) -> int:
    """The count computed from the route table alone, independently of the generator."""
    total = 0
    for endpoint in found:
        k = len(endpoint.scoped_path_params)
        if k:
            variants = 1
            for p in endpoint.path_params:
                variants *= len(OTHER_PARAMS.get(p, ("",)))
            total += (2**k - 1) * variants
    return total * tokens


async def send(client: AsyncClient, token: str, endpoint: Endpoint, url: str) -> Response:
    return await client.request(
        endpoint.method,
        url,
        headers=bearer(token),
        json=endpoint.body if endpoint.method in {"POST", "PATCH", "PUT"} else None,
    )


def not_found_problem(response: Response) -> str | None:
    """Why ``response`` is not a 404 problem document, or None."""
    content_type = response.headers.get("content-type", "")
    if response.status_code != 404 or not content_type.startswith(PROBLEM_JSON):
        return f"{response.status_code} {content_type}: {response.text[:200]}"
    body = response.json()
    if body.get("status") != 404 or not str(body.get("type", "")).endswith("not-found"):
        return f"problem body is not a not-found: {body}"
    return None


async def row_state(settings: Settings, side: Side) -> dict[str, Any]:
    """Version (and status) of every row a tree owns, read as the superuser past RLS."""
    conn = await asyncpg.connect(settings.admin_database_url.replace("+asyncpg", ""))
    try:
        rows = await conn.fetch(
            """
            SELECT 'partner' AS kind, id, version, status FROM partners WHERE id = $1
            UNION ALL SELECT 'tenant', id, version, status FROM tenants WHERE partner_id = $1
            UNION ALL SELECT 'region', id, version, name FROM regions WHERE partner_id = $1
            UNION ALL SELECT 'store', id, version, name FROM stores WHERE partner_id = $1
            UNION ALL SELECT 'user', id, version, name FROM users WHERE partner_id = $1
            UNION ALL SELECT 'client', id, version, name FROM api_clients WHERE partner_id = $1
            UNION ALL SELECT 'deployment', id, version, status FROM deployments WHERE partner_id = $1
            UNION ALL SELECT 'generation', id, generation, '' FROM desired_states
                WHERE partner_id = $1
            UNION ALL SELECT 'bootstrap', id, version, '' FROM bootstrap_tokens
                WHERE partner_id = $1
            """,
            side.tree.partner_id,
        )
        audit = await conn.fetchval(
            "SELECT count(*) FROM audit_entries WHERE partner_id = $1 OR tenant_id = $2",
            side.tree.partner_id,
            side.tree.tenant_id,
        )
    finally:
        await conn.close()
    state: dict[str, Any] = {f"{r['kind']}:{r['id']}": (r["version"], r["status"]) for r in rows}
    state["audit_entries"] = audit
    return state


def list_refusal(
    token: str, endpoint: Endpoint, query: Mapping[str, str], response: Response
) -> str | None:
    """Why a list read's status is wrong, or None.

    Any token may be refused (403/404 problem) except on its own lists: A's partner admin
    reads every list under A, A's retailer admin every list not under a partner id. The
    runtime API (``/runtime/``) is no one's list here: it serves runtime tokens only.
    """
    if response.status_code == 200:
        return None
    content_type = response.headers.get("content-type", "")
    if response.status_code not in (403, 404) or not content_type.startswith(PROBLEM_JSON):
        return f"{response.status_code} {content_type}: {response.text[:200]}"
    own_list = (
        not query
        and not endpoint.template.startswith("/runtime/")
        and (
            token == "partner_admin@A"
            or (token == "retailer_admin@A" and "partner_id" not in endpoint.path_params)
        )
    )
    return f"{response.status_code} on A's own list" if own_list else None


# --- tests --------------------------------------------------------------------------------


async def test_other_trees_objects_are_404_on_every_route(
    app: Litestar,
    client: AsyncClient,
    settings: Settings,
    sides: Sides,
    capsys: pytest.CaptureFixture[str],
    record_property: Any,
) -> None:
    found = endpoints(app)
    covered = {p for e in found for p in e.scoped_path_params}
    assert covered == set(SCOPED_PARAMS), f"no route found for {set(SCOPED_PARAMS) - covered}"
    tokens = list(sides.tokens)
    probes = list(cross_tree_probes(found, tokens, sides.a.values(), sides.b.values()))
    record_property("isolation_probes", len(probes))
    with capsys.disabled():
        print(f"\n[isolation] {len(probes)} cross-tree probes over {len(found)} endpoints")
    assert len(probes) == expected_probe_count(found, len(tokens))
    assert len(probes) >= MIN_PROBES, f"only {len(probes)} probes: route discovery broke"

    before_b, before_a = await row_state(settings, sides.b), await row_state(settings, sides.a)
    failures: list[str] = []
    for probe in probes:
        response = await send(client, sides.tokens[probe.token], probe.endpoint, probe.url)
        if (why := not_found_problem(response)) is not None:
            failures.append(f"{probe} -> {why}")
    assert not failures, f"{len(failures)}/{len(probes)} probes leaked:\n" + "\n".join(failures)

    after_b = await row_state(settings, sides.b)
    # The tenant the lifecycle probes aimed at: same version, still active.
    tenant_key = f"tenant:{sides.b.tree.tenant_id}"
    assert after_b[tenant_key] == before_b[tenant_key]
    assert after_b[tenant_key][1] == "active"
    assert after_b == before_b, "a probe changed tree B"
    assert await row_state(settings, sides.a) == before_a, "a probe changed tree A"


async def test_sibling_regions_stores_are_404_for_region_and_store_grants(
    app: Litestar, client: AsyncClient, settings: Settings, sides: Sides
) -> None:
    """Within tenant A: a regional manager of region 1 and a store manager of store 1 must
    not reach region 2 or its store (nor, for the store manager, the other store of region 1)."""
    a = sides.a
    hidden: dict[str, list[tuple[UUID, UUID]]] = {
        "regional_manager@A": [(sides.a_sibling_region, sides.a_sibling_store)],
        "store_manager@A": [
            (sides.a_sibling_region, sides.a_sibling_store),
            (a.tree.region_id, sides.a_store_same_region),
        ],
    }
    found = [e for e in endpoints(app) if {"region_id", "store_id"} & set(e.path_params)]
    assert found, "no region or store routes found"
    before = await row_state(settings, a)
    failures: list[str] = []
    count = 0
    for token, pairs in hidden.items():
        for region_id, store_id in pairs:
            values = {**a.values(), "region_id": region_id, "store_id": store_id}
            for endpoint in found:
                own_region = token == "store_manager@A" and region_id == a.tree.region_id
                if own_region and "store_id" not in endpoint.path_params:
                    continue  # region 1 is above the store manager's own store
                url = endpoint.url(values)
                count += 1
                response = await send(client, sides.tokens[token], endpoint, url)
                if (why := not_found_problem(response)) is not None:
                    failures.append(f"{token}: {endpoint.method} {url} -> {why}")
    assert not failures, "\n".join(failures)
    assert count >= 2 * len(found)
    assert await row_state(settings, a) == before

    stores_url = f"/api/v1/tenants/{a.tree.tenant_id}/stores?limit=200"
    expected_stores = {
        "regional_manager@A": {a.tree.store_id, sides.a_store_same_region},
        "store_manager@A": {a.tree.store_id},
        "retailer_admin@A": {a.tree.store_id, sides.a_store_same_region, sides.a_sibling_store},
    }
    for token, wanted in expected_stores.items():
        listed = await client.get(stores_url, headers=bearer(sides.tokens[token]))
        assert listed.status_code == 200, f"{token}: {listed.text}"
        assert {UUID(s["id"]) for s in listed.json()["items"]} == wanted, token
    own = await client.get(
        f"/api/v1/tenants/{a.tree.tenant_id}/stores/{a.tree.store_id}",
        headers=bearer(sides.tokens["store_manager@A"]),
    )
    assert own.status_code == 200, own.text


async def test_lists_show_none_of_the_other_trees_ids(
    app: Litestar, client: AsyncClient, sides: Sides, record_property: Any
) -> None:
    lists = [e for e in endpoints(app) if e.is_list]
    assert len([e for e in lists if e.returns_page]) >= 5, "list routes were not discovered"
    theirs = sides.b.all_ids()
    mine, b_values = sides.a.values(), sides.b.values()
    seen_by_partner_admin: set[str] = set()
    failures: list[str] = []
    reads = 0

    for endpoint in lists:
        # Nested lists are read under A's own ids, unfiltered and filtered by B's ids.
        queries: list[dict[str, str]] = [{}]
        queries += [{q: str(b_values[q])} for q in endpoint.scoped_query]
        for token_name, token in sides.tokens.items():
            for query in queries:
                params = {**query, "limit": "200"} if endpoint.returns_page else query
                url = endpoint.url(mine)
                response = await client.get(url, params=params, headers=bearer(token))
                reads += 1
                where = f"{token_name}: GET {url} {query or ''}"
                # A 404 may echo the id the caller sent; anything else of B's is a leak.
                leaked = sorted(i for i in theirs - set(query.values()) if i in response.text)
                if leaked:
                    failures.append(f"{where} -> shows B's ids {leaked}")
                if (why := list_refusal(token_name, endpoint, query, response)) is not None:
                    failures.append(f"{where} -> {why}")
                elif response.status_code == 200 and endpoint.returns_page:
                    listed = {str(item.get("id")) for item in response.json()["items"]}
                    if listed & theirs:
                        failures.append(f"{where} -> B's items {sorted(listed & theirs)}")
                    if token_name == "partner_admin@A":
                        seen_by_partner_admin |= listed

    record_property("isolation_list_reads", reads)
    assert not failures, "\n".join(failures)
    # The lists are not vacuously clean: A's admin does see A's own objects in them.
    expected_own = {str(v) for v in mine.values()}
    assert expected_own <= seen_by_partner_admin, expected_own - seen_by_partner_admin
