"""The billing API, CLI and portal page over telemetry sent through the real ingest: price
books and their refusals, usage to date, drafts, closing a period (twice), invoices and
their exports in the seller's brand, credit notes, and who may see what."""

from __future__ import annotations

import csv
import io
import json
import secrets
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from litestar import Litestar

from control_plane import jobs
from control_plane.billing import service
from control_plane.billing.export import LINE_COLUMNS, USAGE_COLUMNS
from control_plane.billing.meters import period_bounds, period_of, previous_period
from control_plane.cli import main
from control_plane.config import Settings, get_settings
from control_plane.contracts.telemetry import Kind
from control_plane.identity.principal import Grant
from control_plane.identity.roles import Role
from control_plane.web.session import COOKIE
from tests.branding.conftest import PALETTE, png, publish_theme, upload
from tests.conftest import Tree, World, bearer
from tests.telemetry.conftest import event, post_ok, runtime_token, superuser

API = "/api/v1/billing"


def periods(today: datetime) -> tuple[str, str]:
    """Two months back (billed and closed here), and last month (closed later, with late
    usage of the first): both have ended, so both may be closed."""
    last = previous_period(period_of(today.date()))
    return previous_period(last), last


@dataclass
class Billing:
    a: Tree
    b: Tree
    platform: str
    period: str
    following: str
    #: The partners' product names (their published themes).
    product_a: str
    product_b: str
    books: dict[str, str]
    #: Names the trees were built with (``p-<label>`` slug, ``Tenant <label>`` retailer).
    labels: tuple[str, str]


async def _book(client: httpx.AsyncClient, token: str, **body: Any) -> str:
    made = await client.post(f"{API}/price-books", json=body, headers=bearer(token))
    assert made.status_code == 201, made.text
    book_id: str = made.json()["id"]
    return book_id


async def _runs(
    client: httpx.AsyncClient, world: World, tree: Tree, at: datetime, count: int
) -> None:
    token = await runtime_token(world, tree)
    made = [
        event(Kind.RUN_STARTED, at + timedelta(minutes=i), template_id="price-sync", store="S1")
        for i in range(count)
    ]
    await post_ok(client, token, tree, made)


async def _brand(client: httpx.AsyncClient, tree: Tree, product: str) -> None:
    path = f"/api/v1/partners/{tree.partner_id}/brand"
    logo = await upload(client, tree.partner_token, path, png((120, 40)))
    assert logo.status_code == 201, logo.text
    await publish_theme(
        client,
        tree.partner_token,
        path,
        product_name=product,
        colors=PALETTE,
        logo=logo.json()["sha256"],
    )


@pytest.fixture(scope="module")
async def billing(client: httpx.AsyncClient, world: World, settings: Settings) -> Billing:
    """Partners A and B, each with a retailer, a published brand, a wholesale book from the
    platform and a resale book of their own, and usage in a past period, metered."""
    now = datetime.now(UTC)
    period, following = periods(now)
    used_at = datetime.combine(period_bounds(period)[0] + timedelta(days=9), time(12), UTC)
    label = secrets.token_hex(3)
    labels = (f"bill-a-{label}", f"bill-b-{label}")
    a, b = await world.tree(labels[0]), await world.tree(labels[1])
    conn = await superuser(settings)
    try:
        horizon = await conn.fetchval("SELECT horizon FROM telemetry_retention WHERE id = 1")
        # Onboarded before the period, as retailers billed for it were.
        await conn.execute(
            "UPDATE tenants SET created_at = $1 WHERE id = ANY($2::uuid[])",
            used_at - timedelta(days=30),
            [a.tenant_id, b.tenant_id],
        )
    finally:
        await conn.close()
    assert horizon is None or horizon <= used_at, f"retention dropped {period}: {horizon}"
    state = Billing(
        a=a,
        b=b,
        platform=await world.token(Grant(Role.PLATFORM_ADMIN)),
        period=period,
        following=following,
        product_a=f"Acme Cloud {label}",
        product_b=f"Bluepeak Ops {label}",
        books={},
        labels=labels,
    )
    await _brand(client, a, state.product_a)
    await _brand(client, b, state.product_b)

    steps = [{"up_to": 5, "unit_price": "10"}, {"unit_price": "5"}]
    state.books["wholesale_a"] = await _book(
        client, state.platform, kind="wholesale", name="Wholesale A", effective_from=period,
        currency="EUR", partner_id=str(a.partner_id),
        items=[{"meter": "runs", "unit_price": "100"}, {"meter": "steps", "tiers": steps}],
    )  # fmt: skip
    state.books["wholesale_b"] = await _book(
        client, state.platform, kind="wholesale", name="Wholesale B", effective_from=period,
        currency="EUR", partner_id=str(b.partner_id), minimum_fee=1000,
        items=[{"meter": "runs", "unit_price": "50"}],
    )  # fmt: skip
    state.books["resale_a"] = await _book(
        client, a.partner_token, kind="resale", name="Acme retail", effective_from=period,
        currency="EUR", partner_id=str(a.partner_id), minimum_fee=2000,
        items=[{"meter": "runs", "included": 1, "unit_price": "250"},
               {"meter": "api_calls", "unit_price": "0.5"}],
    )  # fmt: skip
    state.books["resale_b"] = await _book(
        client, b.partner_token, kind="resale", name="Bluepeak retail", effective_from=period,
        currency="EUR", partner_id=str(b.partner_id),
        items=[{"meter": "runs", "unit_price": "300"}],
    )  # fmt: skip

    await _runs(client, world, a, used_at, 5)
    token = await runtime_token(world, a)
    more = [event(Kind.STEP_FINISHED, used_at, template_id="price-sync") for _ in range(7)]
    more.append(event(Kind.USAGE, used_at, data={"api_calls": 40}))
    await post_ok(client, token, a, more)
    await _runs(client, world, b, used_at, 3)
    await world.run(lambda c: service.remeter(c.session, period, now))
    return state


@pytest.fixture(scope="module")
async def closed(client: httpx.AsyncClient, billing: Billing) -> dict[str, dict[str, Any]]:
    """The period closed once through the API: A's and B's invoices by kind and partner."""
    done = await client.post(
        f"{API}/close", json={"period": billing.period}, headers=bearer(billing.platform)
    )
    assert done.status_code == 200, done.text
    mine = {str(billing.a.partner_id): "a", str(billing.b.partner_id): "b"}
    return {
        f"{i['kind']}_{mine[i['partner_id']]}": i
        for i in done.json()["issued"]
        if i["partner_id"] in mine
    }


def problem(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    for word in words:
        assert word in body["detail"], (word, body["detail"])
    return body


# --- price books ----------------------------------------------------------------------------


async def test_price_book_refusals_say_what_is_wrong(
    client: httpx.AsyncClient, billing: Billing
) -> None:
    a = billing.a
    base = {
        "kind": "resale", "name": "Bad", "effective_from": billing.period, "currency": "EUR",
        "partner_id": str(a.partner_id), "items": [{"meter": "runs", "unit_price": "1"}],
    }  # fmt: skip

    async def refused(token: str = a.partner_token, **change: Any) -> dict[str, Any]:
        response = await client.post(
            f"{API}/price-books", json={**base, **change}, headers=bearer(token)
        )
        return problem(response, 422)

    def fields(body: dict[str, Any]) -> dict[str, str]:
        return {e["field"]: e["message"] for e in body["errors"]}

    before = await client.get(f"{API}/price-books?limit=200", headers=bearer(a.partner_token))
    assert "not a month written YYYY-MM" in (await refused(effective_from="2026-13"))["detail"]
    unknown = fields(await refused(items=[{"meter": "coffee", "unit_price": "1"}]))
    assert "'coffee' is not a meter; use one of runs, steps" in unknown["items[0].meter"]
    assert "ISO 4217" in fields(await refused(currency="euro"))["currency"]
    last = [{"up_to": 10, "unit_price": "2"}, {"up_to": 20, "unit_price": "1"}]
    tiers = fields(await refused(items=[{"meter": "steps", "tiers": last}]))
    assert tiers == {"items[0].tiers[1]": "the last tier has no up_to"}
    middle = [{"unit_price": "2"}, {"unit_price": "1"}]
    assert fields(await refused(items=[{"meter": "steps", "tiers": middle}])) == {
        "items[0].tiers[0]": "every tier but the last needs up_to"
    }
    both = [{"meter": "runs", "unit_price": "1", "tiers": [{"unit_price": "1"}]}]
    assert fields(await refused(items=both)) == {"items[0]": "give either unit_price or tiers"}
    price = fields(await refused(items=[{"meter": "runs", "unit_price": "ten"}]))
    assert price == {"items[0].unit_price": "'ten' is not a decimal number"}
    negative = fields(await refused(items=[{"meter": "runs", "unit_price": "-1"}]))
    assert "0 or more" in negative["items[0].unit_price"]
    dimension = fields(await refused(items=[{"meter": "steps", "dimension": "inventory",
                                             "unit_price": "1"}]))  # fmt: skip
    assert dimension == {"items[0].dimension": "only runs have dimensions, not steps"}
    twice = fields(await refused(items=[base["items"][0], base["items"][0]]))
    assert twice == {"items[1]": "runs/* is priced twice"}
    wholesale = fields(
        await refused(billing.platform, kind="wholesale", tenant_id=str(a.tenant_id))
    )
    assert wholesale["tenant_id"] == "wholesale books price partners, not retailers"
    foreign = fields(await refused(billing.platform, tenant_id=str(billing.b.tenant_id)))
    assert "is not this partner's" in foreign["tenant_id"]
    # A later book keeps the currency: invoices mix in late usage priced by earlier books.
    dollars = fields(await refused(currency="USD"))
    assert "is in EUR; keep it" in dollars["currency"]
    # Wholesale prices are the platform's to set.
    response = await client.post(
        f"{API}/price-books", json={**base, "kind": "wholesale"}, headers=bearer(a.partner_token)
    )
    problem(response, 403, "billing:wholesale")
    after = await client.get(f"{API}/price-books?limit=200", headers=bearer(a.partner_token))
    assert after.json()["items"] == before.json()["items"]


async def test_partners_and_retailers_see_only_their_books(
    client: httpx.AsyncClient, billing: Billing
) -> None:
    a, b, books = billing.a, billing.b, billing.books

    async def listed(token: str) -> set[str]:
        response = await client.get(f"{API}/price-books?limit=200", headers=bearer(token))
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    assert {books["wholesale_a"], books["resale_a"]} <= await listed(a.partner_token)
    seen_by_b = await listed(b.partner_token)
    assert {books["wholesale_b"], books["resale_b"]} <= seen_by_b
    assert not {books["wholesale_a"], books["resale_a"]} & seen_by_b
    one = await client.get(
        f"{API}/price-books/{books['resale_a']}", headers=bearer(a.partner_token)
    )
    assert one.status_code == 200 and one.json()["items"][1]["unit_price"] == "0.5"
    hidden = await client.get(
        f"{API}/price-books/{books['resale_a']}", headers=bearer(b.partner_token)
    )
    problem(hidden, 404)


# --- usage and drafts -----------------------------------------------------------------------


async def test_usage_to_date_is_metered_by_the_job(
    client: httpx.AsyncClient, app: Litestar, world: World, billing: Billing
) -> None:
    a, b = billing.a, billing.b
    at = datetime.now(UTC) - timedelta(minutes=10)
    await _runs(client, world, a, at, 2)
    assert await jobs.run_job(app.state.db, jobs.registered()["billing.meter"]) > 0
    period = period_of(at.date())

    response = await client.get(f"{API}/usage?period={period}", headers=bearer(a.partner_token))
    assert response.status_code == 200, response.text
    usage = response.json()
    assert usage["metered_at"] is not None
    mine = [r for r in usage["rows"] if r["tenant_id"] == str(a.tenant_id)]
    assert {(r["meter"], r["quantity"]) for r in mine} >= {("runs", 2), ("tenant_days", 1)}
    retailer = await client.get(f"{API}/usage?period={period}", headers=bearer(a.tenant_token))
    assert {r["tenant_id"] for r in retailer.json()["rows"]} == {str(a.tenant_id)}

    other = await client.get(f"{API}/usage?period={period}", headers=bearer(b.partner_token))
    assert str(a.tenant_id) not in other.text
    for query in (f"tenant_id={a.tenant_id}", f"partner_id={a.partner_id}"):
        problem(await client.get(f"{API}/usage?{query}", headers=bearer(b.partner_token)), 404)
    bad = await client.get(f"{API}/usage?period=2026-1", headers=bearer(a.partner_token))
    problem(bad, 422, "'2026-1' is not a month written YYYY-MM")


async def test_drafts_price_the_usage_so_far(client: httpx.AsyncClient, billing: Billing) -> None:
    a, b, period = billing.a, billing.b, billing.period

    async def draft(token: str, query: str = "", month: str = period) -> dict[str, Any]:
        response = await client.get(f"{API}/draft?period={month}{query}", headers=bearer(token))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    wholesale = await draft(a.partner_token)
    assert (wholesale["kind"], wholesale["book"]["id"]) == (
        "wholesale",
        billing.books["wholesale_a"],
    )
    # 5 runs at 1.00; 7 steps: 5 at 0.10 and 2 at 0.05.
    assert [(x["meter"], x["amount"]) for x in wholesale["lines"]] == [("runs", 500), ("steps", 60)]
    assert (wholesale["total"], wholesale["currency"]) == (560, "EUR")

    resale = await draft(a.tenant_token)
    assert resale == await draft(a.partner_token, f"&tenant_id={a.tenant_id}")
    # 4 runs past the one included at 2.50, 40 API calls at 0.005: topped up to 20.00.
    assert [(x["type"], x["amount"]) for x in resale["lines"]] == [
        ("usage", 20), ("usage", 1000), ("minimum", 980)
    ]  # fmt: skip
    assert resale["total"] == 2000 and resale["book"]["name"] == "Acme retail"

    none = await draft(a.partner_token, month="2020-01")
    assert none["book"] is None and none["total"] == 0
    assert "no wholesale price book is in effect for 2020-01" in none["note"]
    for query in (f"tenant_id={b.tenant_id}", f"partner_id={b.partner_id}"):
        hidden = await client.get(f"{API}/draft?{query}", headers=bearer(a.partner_token))
        problem(hidden, 404)
    wrong = await client.get(
        f"{API}/draft?partner_id={a.partner_id}&tenant_id={b.tenant_id}",
        headers=bearer(billing.platform),
    )
    problem(wrong, 422, "is not a retailer of partner")
    problem(await client.get(f"{API}/draft", headers=bearer(billing.platform)), 422, "give")


# --- close ----------------------------------------------------------------------------------


async def test_closing_through_the_api_is_platform_only_and_idempotent(
    client: httpx.AsyncClient, billing: Billing, closed: dict[str, dict[str, Any]]
) -> None:
    totals = {key: (i["total"], i["currency"]) for key, i in closed.items()}
    assert totals == {
        "wholesale_a": (560, "EUR"),
        "resale_a": (2000, "EUR"),
        "wholesale_b": (1000, "EUR"),  # 3 runs at 0.50, topped up to 10.00
        "resale_b": (900, "EUR"),
    }
    again = await client.post(
        f"{API}/close", json={"period": billing.period}, headers=bearer(billing.platform)
    )
    assert again.status_code == 200, again.text
    assert again.json()["issued"] == [] and again.json()["unchanged"] >= 4
    listed = await client.get(
        f"{API}/invoices?period={billing.period}&partner_id={billing.a.partner_id}&limit=200",
        headers=bearer(billing.platform),
    )
    kinds = sorted(i["kind"] for i in listed.json()["items"] if i["kind"] != "credit_note")
    assert kinds == ["resale", "wholesale"]

    refused = await client.post(
        f"{API}/close", json={"period": billing.period}, headers=bearer(billing.a.partner_token)
    )
    problem(refused, 403, "billing:close")
    now = period_of(datetime.now(UTC).date())
    still_open = await client.post(
        f"{API}/close", json={"period": now}, headers=bearer(billing.platform)
    )
    problem(still_open, 422, f"period {now} is still open")
    bad = await client.post(
        f"{API}/close", json={"period": "November"}, headers=bearer(billing.platform)
    )
    problem(bad, 422, "YYYY-MM")
    # What is invoiced stays priced as it was.
    repriced = await client.post(
        f"{API}/price-books",
        json={"kind": "resale", "name": "Cheaper", "effective_from": billing.period,
              "currency": "EUR", "partner_id": str(billing.a.partner_id),
              "items": [{"meter": "runs", "unit_price": "1"}]},
        headers=bearer(billing.a.partner_token),
    )  # fmt: skip
    problem(repriced, 422, f"{billing.period} is invoiced already")


# --- invoices and exports -------------------------------------------------------------------


async def test_invoice_json_csv_and_documents(
    client: httpx.AsyncClient, billing: Billing, closed: dict[str, dict[str, Any]]
) -> None:
    a = billing.a
    resale, wholesale = closed["resale_a"], closed["wholesale_a"]
    url = f"{API}/invoices/{resale['id']}"

    detail = await client.get(url, headers=bearer(a.partner_token))
    assert detail.status_code == 200 and detail.headers["etag"]
    body = detail.json()
    assert [line["type"] for line in body["lines"]] == ["usage", "usage", "minimum"]
    usage = {(u["meter"], u["quantity"], u["line"]) for u in body["usage"]}
    assert usage == {("api_calls", 40, 1), ("runs", 5, 2)}
    assert {u["tenant_id"] for u in body["usage"]} == {str(a.tenant_id)}

    lines = await client.get(url, params={"format": "csv"}, headers=bearer(a.partner_token))
    assert lines.headers["content-type"].startswith("text/csv")
    assert f'filename="{resale["number"]}.csv"' in lines.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(lines.text)))
    assert tuple(rows[0]) == LINE_COLUMNS
    assert [(r["line"], r["amount_minor"], r["amount"], r["currency"]) for r in rows] == [
        ("1", "20", "0.20", "EUR"), ("2", "1000", "10.00", "EUR"), ("3", "980", "9.80", "EUR")
    ]  # fmt: skip
    used = await client.get(url, params={"format": "usage-csv"}, headers=bearer(a.partner_token))
    used_rows = list(csv.DictReader(io.StringIO(used.text)))
    assert tuple(used_rows[0]) == USAGE_COLUMNS and len(used_rows) == 2
    assert {r["tenant"] for r in used_rows} == {f"Tenant {billing.labels[0]}"}

    document = await client.get(url, params={"format": "html"}, headers=bearer(a.partner_token))
    assert document.headers["content-type"].startswith("text/html")
    assert billing.product_a in document.text and billing.product_b not in document.text
    assert "data:image/png;base64," in document.text
    assert '<td class="num" data-total>20.00 EUR</td>' in document.text
    assert resale["usage_digest"] in document.text
    platform_doc = await client.get(
        f"{API}/invoices/{wholesale['id']}", params={"format": "html"},
        headers=bearer(a.partner_token),
    )  # fmt: skip
    assert "StoreOps" in platform_doc.text and billing.product_a not in platform_doc.text
    printed = await client.get(url, params={"format": "pdf"}, headers=bearer(a.partner_token))
    assert printed.headers["content-type"] == "application/pdf"
    assert printed.content.startswith(b"%PDF-")
    unknown = await client.get(url, params={"format": "xml"}, headers=bearer(a.partner_token))
    assert unknown.status_code == 400


async def test_a_partner_never_reads_another_partners_invoices(
    client: httpx.AsyncClient, billing: Billing, closed: dict[str, dict[str, Any]]
) -> None:
    b = billing.b
    listed = await client.get(f"{API}/invoices?limit=200", headers=bearer(b.partner_token))
    assert listed.status_code == 200
    assert {i["partner_id"] for i in listed.json()["items"]} == {str(b.partner_id)}
    for key in ("resale_a", "wholesale_a"):
        for fmt in ("json", "csv", "html", "pdf"):
            response = await client.get(
                f"{API}/invoices/{closed[key]['id']}",
                params={"format": fmt},
                headers=bearer(b.partner_token),
            )
            problem(response, 404)
    filtered = await client.get(
        f"{API}/invoices?partner_id={billing.a.partner_id}", headers=bearer(b.partner_token)
    )
    assert filtered.json()["items"] == []


async def test_a_retailer_sees_only_its_own_resale_invoices(
    client: httpx.AsyncClient, billing: Billing, closed: dict[str, dict[str, Any]]
) -> None:
    a = billing.a
    listed = await client.get(f"{API}/invoices?limit=200", headers=bearer(a.tenant_token))
    assert {(i["kind"], i["tenant_id"]) for i in listed.json()["items"]} <= {
        ("resale", str(a.tenant_id)), ("credit_note", str(a.tenant_id))
    }  # fmt: skip
    assert closed["resale_a"]["id"] in {i["id"] for i in listed.json()["items"]}
    wholesale = await client.get(
        f"{API}/invoices/{closed['wholesale_a']['id']}", headers=bearer(a.tenant_token)
    )
    problem(wholesale, 404)
    # Its partner's brand, though the retailer cannot read the partner itself.
    document = await client.get(
        f"{API}/invoices/{closed['resale_a']['id']}", params={"format": "html"},
        headers=bearer(a.tenant_token),
    )  # fmt: skip
    assert document.status_code == 200 and billing.product_a in document.text


async def test_credit_notes_correct_an_invoice_up_to_what_is_left(
    client: httpx.AsyncClient, billing: Billing, closed: dict[str, dict[str, Any]]
) -> None:
    a, b = billing.a, billing.b
    resale = closed["resale_a"]
    url = f"{API}/invoices/{resale['id']}/credit-notes"

    made = await client.post(
        url, json={"amount": 500, "reason": "outage on the 3rd"}, headers=bearer(a.partner_token)
    )
    assert made.status_code == 201, made.text
    note = made.json()
    assert (note["kind"], note["total"], note["credits_invoice_id"]) == (
        "credit_note", -500, resale["id"]
    )  # fmt: skip
    assert note["lines"][0]["description"] == f"Credit on {resale['number']}: outage on the 3rd"
    over = await client.post(
        url, json={"amount": 1501, "reason": "again"}, headers=bearer(a.partner_token)
    )
    problem(over, 422, "1501 is not between 1 and the 1500 minor units left")
    zero = await client.post(
        url, json={"amount": 0, "reason": "x"}, headers=bearer(a.partner_token)
    )
    problem(zero, 422, "minor units left")
    silent = await client.post(
        url, json={"amount": 1, "reason": " "}, headers=bearer(a.partner_token)
    )
    problem(silent, 422, "say why")
    wholesale = f"{API}/invoices/{closed['wholesale_a']['id']}/credit-notes"
    forbidden = await client.post(
        wholesale, json={"amount": 1, "reason": "x"}, headers=bearer(a.partner_token)
    )
    problem(forbidden, 403)
    foreign = await client.post(
        url, json={"amount": 1, "reason": "x"}, headers=bearer(b.partner_token)
    )
    problem(foreign, 404)

    document = await client.get(
        f"{API}/invoices/{note['id']}", params={"format": "html"}, headers=bearer(a.tenant_token)
    )
    assert "Credit note" in document.text and resale["number"] in document.text
    assert billing.product_a in document.text
    listed = await client.get(f"{API}/invoices?kind=credit_note", headers=bearer(a.tenant_token))
    assert [i["id"] for i in listed.json()["items"]] == [note["id"]]
    # Another partner's credit note in the same period gets the next number, not the same.
    other = await client.post(
        f"{API}/invoices/{closed['resale_b']['id']}/credit-notes",
        json={"amount": 100, "reason": "goodwill"},
        headers=bearer(b.partner_token),
    )
    assert other.status_code == 201, other.text
    assert other.json()["number"] != note["number"]


# --- the partner portal ---------------------------------------------------------------------


async def test_portal_invoices_page_links_the_exports(
    client: httpx.AsyncClient, billing: Billing, closed: dict[str, dict[str, Any]]
) -> None:
    a = billing.a
    cookie = {"Cookie": f"{COOKIE}={a.partner_token}"}
    page = await client.get("/portal/invoices", headers=cookie)
    assert page.status_code == 200, page.text
    for key in ("wholesale_a", "resale_a"):
        assert f'data-invoice="{closed[key]["number"]}"' in page.text
    assert closed["wholesale_b"]["number"] not in page.text
    assert "data-draft-total" in page.text
    link = f"/portal/invoices/{closed['resale_a']['id']}?format=html"
    assert f'href="{link}"' in page.text
    document = await client.get(link, headers=cookie)
    assert document.status_code == 200 and billing.product_a in document.text
    other = await client.get(link, headers={"Cookie": f"{COOKIE}={billing.b.partner_token}"})
    assert other.status_code == 404


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("STOREOPS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("STOREOPS_HOME", str(settings.home))
    monkeypatch.setenv("STOREOPS_PUBLIC_URL", "http://testserver")
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def invoke(cli: CliRunner, command: str, code: int = 0) -> Result:
    result = cli.invoke(main, shlex.split(command))
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
async def late(
    client: httpx.AsyncClient, world: World, billing: Billing, closed: dict[str, dict[str, Any]]
) -> None:
    """Two more runs of A's retailer in the closed period, arriving after its close."""
    at = datetime.combine(period_bounds(billing.period)[0] + timedelta(days=11), time(9), UTC)
    await _runs(client, world, billing.a, at, 2)


def test_cli_close_twice_bills_late_usage_once(
    cli: CliRunner,
    billing: Billing,
    closed: dict[str, dict[str, Any]],
    late: None,
    tmp_path: Path,
) -> None:
    first = invoke(cli, f"billing close --period {billing.following}").output
    assert f"issued W-{billing.following}-" in first and "unchanged" in first
    assert "0 issued" in invoke(cli, f"billing close --period {billing.following}").output

    listed = invoke(
        cli, f"billing invoices --period {billing.following} --partner {billing.a.partner_id}"
    ).output
    # Late runs of the closed period: 2 at 1.00 wholesale; 2 at 2.50 resale, on top of
    # the new period's own 20.00 minimum.
    assert "2.00 EUR" in listed and "25.00 EUR" in listed
    usage = invoke(
        cli, f"billing usage --period {billing.period} --partner {billing.a.partner_id}"
    ).output
    assert "runs" in usage and " 7 " in usage
    # Every invoice reproduces from what it billed; A's late runs were all billed since.
    checked = invoke(cli, f"billing verify --period {billing.period}").output
    assert "invoice(s) reproduced exactly" in checked and "DIFFERS" not in checked
    for kind in ("wholesale_a", "resale_a"):
        line = next(x for x in checked.splitlines() if x.startswith(closed[kind]["number"]))
        assert line == f"{closed[kind]['number']}: reproduced", line

    book = tmp_path / "book.json"
    upcoming = period_of(datetime.now(UTC).date())  # closed periods keep their prices
    body = {"kind": "resale", "name": "CLI book", "effective_from": upcoming,
            "currency": "EUR", "partner_id": f"p-{billing.labels[0]}",
            "items": [{"meter": "tenant_days", "unit_price": "100"}]}  # fmt: skip
    book.write_text(json.dumps(body))
    assert (
        "created resale price book 'CLI book'" in invoke(cli, f"billing book create {book}").output
    )
    book.write_text(json.dumps({**body, "currency": "euro"}))
    refused = invoke(cli, f"billing book create {book}", code=1).output.strip().splitlines()
    assert len(refused) == 1 and "'euro' is not an ISO 4217 code" in refused[0]
