"""The generic REST connector against ``httpx.MockTransport``: auth modes, secret:// credentials
and their rotation, idempotency keys, retries and backoff, Retry-After, error classes, and
OAuth2 client credentials through authlib with the token endpoint mocked."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Callable, Iterator
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from control_plane.contracts.dsl import Retry
from tenant_runtime.connectors import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    ConnectorAuth,
    ConnectorConfigError,
    ConnectorError,
    ErrorClass,
    OAuth2ClientCredentials,
    RestConnector,
    RetryPolicy,
    parse_retry_after,
)
from tenant_runtime.secrets import SecretCache, SecretUnavailable

BASE = "https://erp.example.test/api/v2"
TOKEN_URL = "https://idp.example.test/oauth/token"
KEY = "run-0191/step-reserve/call-1"
WALL = 1_750_000_000.0

Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeProvider:
    """A secret provider whose values the test changes (rotation) and whose reads it counts."""

    def __init__(self, **values: str) -> None:
        self.values = {k.replace("_", "-"): v for k, v in values.items()}
        self.reads: list[str] = []

    async def get(self, name: str) -> str:
        self.reads.append(name)
        if name not in self.values:
            raise SecretUnavailable(f"secret {name!r}: not found")
        return self.values[name]


class Recorder:
    """Records the sleeps the connector asks for (no real sleeping)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Server:
    """A scripted API: each request takes the next response (the last one repeats)."""

    def __init__(self, *responses: httpx.Response | Exception | Handler) -> None:
        self.script = list(responses) or [httpx.Response(200, json={"ok": True})]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)


def connector(
    handler: Handler,
    auth: ConnectorAuth | None = None,
    *,
    provider: FakeProvider | None = None,
    cache: SecretCache | None = None,
    retry: RetryPolicy | None = None,
    sleep: Recorder | None = None,
    clock: Clock | None = None,
    **kwargs: Any,
) -> RestConnector:
    secrets = cache or SecretCache(provider or FakeProvider())
    return RestConnector(
        BASE,
        auth,
        timeout=kwargs.pop("timeout", 5.0),
        retry=retry or RetryPolicy(attempts=3, initial=1.0, max=30.0),
        secrets=secrets,
        transport=httpx.MockTransport(handler),
        sleep=sleep or Recorder(),
        uniform=kwargs.pop("uniform", lambda low, high: high),
        clock=clock or Clock(),
        now=kwargs.pop("now", Clock(WALL)),
        **kwargs,
    )


def walk(value: Any, seen: set[int] | None = None) -> Iterator[str]:
    """Every string reachable from an object's attributes (for "nothing resolved is kept")."""
    seen = seen if seen is not None else set()
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("latin-1")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from walk(k, seen)
            yield from walk(v, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from walk(v, seen)
    elif hasattr(value, "__dict__") and type(value).__module__.startswith("tenant_runtime"):
        yield from walk(vars(value), seen)


# --- requests ---------------------------------------------------------------------------


async def test_posts_json_to_the_operation_path_and_returns_the_object() -> None:
    server = Server(httpx.Response(201, json={"reservation": "R-1"}))
    async with connector(server) as erp:
        result = await erp.call("reserve_stock", {"sku": "A-1", "qty": 2}, idempotency_key=KEY)
    assert result == {"reservation": "R-1"}
    (request,) = server.requests
    assert request.method == "POST"
    assert str(request.url) == f"{BASE}/reserve_stock"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"sku": "A-1", "qty": 2}
    assert request.headers["idempotency-key"] == KEY
    assert "authorization" not in request.headers


async def test_per_operation_path_templates_take_payload_values_url_encoded() -> None:
    server = Server()
    erp = connector(
        server,
        paths={"cancel_order": "/orders/{order_id}/cancel", "create_ticket": "tickets"},
    )
    await erp.call("cancel_order", {"order_id": "A/7 ?x", "why": "dup"}, idempotency_key=KEY)
    await erp.call("create_ticket", {}, idempotency_key=KEY)
    await erp.call("other_op", {}, idempotency_key=KEY)
    paths = [r.url.raw_path.decode() for r in server.requests]
    assert paths == ["/api/v2/orders/A%2F7%20%3Fx/cancel", "/api/v2/tickets", "/api/v2/other_op"]
    with pytest.raises(ConnectorConfigError, match="order_id"):
        await erp.call("cancel_order", {}, idempotency_key=KEY)
    with pytest.raises(ConnectorConfigError, match="path segment"):
        await erp.call("cancel_order", {"order_id": ".."}, idempotency_key=KEY)
    for bad in ["/x/{a.b}", "/x/{0}", "/x/{a!r}", "/x/{"]:
        with pytest.raises(ConnectorConfigError):
            connector(server, paths={"op": bad})


async def test_responses_decode_to_dicts() -> None:
    server = Server(
        httpx.Response(204),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, text="<html>ok</html>"),
    )
    erp = connector(server)
    assert await erp.call("a", {}, idempotency_key=KEY) == {}
    assert await erp.call("a", {}, idempotency_key=KEY) == {"result": [1, 2]}
    with pytest.raises(ConnectorError) as info:
        await erp.call("a", {}, idempotency_key=KEY)
    assert info.value.error_class is ErrorClass.RESPONSE


async def test_timeout_applies_to_each_request() -> None:
    server = Server()
    await connector(server, timeout=2.5).call("a", {}, idempotency_key=KEY)
    timeouts = server.requests[0].extensions["timeout"]
    assert timeouts == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}


async def test_bad_configuration_is_refused() -> None:
    secrets = SecretCache(FakeProvider())
    for url in ["ftp://x", "erp.example", "https://user:pw@erp.example", "https://x/?k=v"]:
        with pytest.raises(ConnectorConfigError) as info:
            RestConnector(url, None, timeout=1, retry=RetryPolicy(), secrets=secrets)
        assert "pw" not in str(info.value)
    for key in ["", "a\r\nX-Evil: 1", "é"]:
        with pytest.raises(ConnectorConfigError):
            await connector(Server()).call("a", {}, idempotency_key=key)
    with pytest.raises(ConnectorConfigError):
        ApiKeyAuth("k", header="Bad Header")
    with pytest.raises(ConnectorConfigError):
        ApiKeyAuth("k", header="Idempotency-Key")


# --- auth modes -------------------------------------------------------------------------


async def test_bearer_token() -> None:
    server = Server()
    provider = FakeProvider(erp_token="tok-123")
    await connector(server, BearerAuth("secret://erp-token"), provider=provider).call(
        "a", {}, idempotency_key=KEY
    )
    assert server.requests[0].headers["authorization"] == "Bearer tok-123"
    assert provider.reads == ["erp-token"]


async def test_basic_auth() -> None:
    server = Server()
    provider = FakeProvider(erp_password="p@ss:wörd")
    auth = BasicAuth("storeops", "secret://erp-password")
    await connector(server, auth, provider=provider).call("a", {}, idempotency_key=KEY)
    expected = base64.b64encode("storeops:p@ss:wörd".encode()).decode()
    assert server.requests[0].headers["authorization"] == f"Basic {expected}"
    assert "storeops" in repr(auth) and "wörd" not in repr(auth)


async def test_api_key_in_a_configurable_header() -> None:
    server = Server()
    provider = FakeProvider(pos_key="k-999")
    await connector(server, ApiKeyAuth("secret://pos-key"), provider=provider).call(
        "a", {}, idempotency_key=KEY
    )
    await connector(
        server, ApiKeyAuth("secret://pos-key", header="X-Store-Key"), provider=provider
    ).call("a", {}, idempotency_key=KEY)
    assert server.requests[0].headers["x-api-key"] == "k-999"
    assert server.requests[1].headers["x-store-key"] == "k-999"
    assert "x-api-key" not in server.requests[1].headers


async def test_literal_credentials_work_but_are_never_shown() -> None:
    server = Server()
    auth = BearerAuth("literal-token")
    await connector(server, auth).call("a", {}, idempotency_key=KEY)
    assert server.requests[0].headers["authorization"] == "Bearer literal-token"
    assert "literal-token" not in repr(auth)
    assert "literal-token" not in repr(connector(server, auth))


async def test_rotated_secrets_are_picked_up_after_the_cache_ttl() -> None:
    server = Server()
    provider = FakeProvider(erp_token="v1")
    cache_clock = Clock(0.0)
    cache = SecretCache(provider, ttl=60, clock=cache_clock)
    erp = connector(server, BearerAuth("secret://erp-token"), cache=cache)
    await erp.call("a", {}, idempotency_key=KEY)
    provider.values["erp-token"] = "v2"  # rotated in Vault
    cache_clock.now = 59.0
    await erp.call("a", {}, idempotency_key=KEY)
    cache_clock.now = 61.0
    await erp.call("a", {}, idempotency_key=KEY)
    seen = [r.headers["authorization"] for r in server.requests]
    assert seen == ["Bearer v1", "Bearer v1", "Bearer v2"]
    assert provider.reads == ["erp-token", "erp-token"]


async def test_resolved_credentials_are_not_kept_on_the_connector() -> None:
    provider = FakeProvider(
        erp_token="RESOLVED-TOKEN", erp_password="RESOLVED-PASSWORD", pos_key="RESOLVED-KEY"
    )
    auths: list[ConnectorAuth] = [
        BearerAuth("secret://erp-token"),
        BasicAuth("svc", "secret://erp-password"),
        ApiKeyAuth("secret://pos-key"),
    ]
    for auth in auths:
        erp = connector(Server(), auth, provider=provider)
        await erp.call("a", {}, idempotency_key=KEY)
        erp.secrets = None  # type: ignore[assignment]  # the cache legitimately holds values
        assert not [s for s in walk(erp) if "RESOLVED" in s]


async def test_an_unavailable_secret_fails_the_call_without_a_request() -> None:
    server = Server()
    with pytest.raises(SecretUnavailable, match="erp-token"):
        await connector(server, BearerAuth("secret://erp-token")).call("a", {}, idempotency_key=KEY)
    assert server.requests == []


# --- retries ----------------------------------------------------------------------------


async def test_the_same_idempotency_key_on_every_retry() -> None:
    server = Server(
        httpx.Response(503),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(502),
        httpx.Response(200, json={"ok": 1}),
    )
    sleep = Recorder()
    erp = connector(server, retry=RetryPolicy(attempts=5, initial=1, max=30), sleep=sleep)
    assert await erp.call("a", {"n": 1}, idempotency_key=KEY) == {"ok": 1}
    assert [r.headers["idempotency-key"] for r in server.requests] == [KEY] * 5
    assert {r.content for r in server.requests} == {b'{"n":1}'}
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0]


async def test_retry_after_seconds_is_honoured() -> None:
    server = Server(
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": "0"}),
        httpx.Response(200, json={}),
    )
    sleep = Recorder()
    await connector(server, sleep=sleep, retry=RetryPolicy(attempts=3)).call(
        "a", {}, idempotency_key=KEY
    )
    assert sleep.delays == [7.0, 0.0]


async def test_retry_after_http_date_is_honoured() -> None:
    server = Server(
        httpx.Response(429, headers={"Retry-After": formatdate(WALL + 42, usegmt=True)}),
        httpx.Response(429, headers={"Retry-After": formatdate(WALL - 42, usegmt=True)}),
        httpx.Response(200, json={}),
    )
    sleep = Recorder()
    policy = RetryPolicy(attempts=3, max=60)
    erp = connector(server, sleep=sleep, now=Clock(WALL), retry=policy)
    await erp.call("a", {}, idempotency_key=KEY)
    assert sleep.delays == [42.0, 0.0]  # a date already past: retry at once


async def test_retry_after_beyond_the_policy_max_is_handed_to_the_engine() -> None:
    server = Server(httpx.Response(429, headers={"Retry-After": "3600"}))
    sleep = Recorder()
    with pytest.raises(ConnectorError) as info:
        await connector(server, sleep=sleep, retry=RetryPolicy(attempts=5, max=300)).call(
            "a", {}, idempotency_key=KEY
        )
    assert sleep.delays == [] and len(server.requests) == 1
    assert info.value.error_class is ErrorClass.RATE_LIMITED
    assert info.value.retry_after == 3600.0


async def test_unreadable_retry_after_falls_back_to_backoff() -> None:
    server = Server(
        httpx.Response(429, headers={"Retry-After": "soon"}), httpx.Response(200, json={})
    )
    sleep = Recorder()
    await connector(server, sleep=sleep).call("a", {}, idempotency_key=KEY)
    assert sleep.delays == [1.0]


async def test_400_is_not_retried_and_the_error_is_precise_and_redacted() -> None:
    echo = "invalid field 'qty'; your header was Bearer tok-SECRET-123 " + "x" * 500
    server = Server(httpx.Response(400, text=echo))
    sleep = Recorder()
    provider = FakeProvider(erp_token="tok-SECRET-123")
    with pytest.raises(ConnectorError) as info:
        await connector(
            server, BearerAuth("secret://erp-token"), provider=provider, sleep=sleep
        ).call("reserve_stock", {}, idempotency_key=KEY)
    error = info.value
    assert len(server.requests) == 1 and sleep.delays == []
    assert (error.error_class, error.status, error.attempts) == (ErrorClass.CLIENT, 400, 1)
    assert error.body_excerpt.startswith("invalid field 'qty'")
    assert len(error.body_excerpt) <= 200
    assert "tok-SECRET-123" not in str(error) and "***" in str(error)
    assert "reserve_stock" in str(error) and "400" in str(error)


async def test_basic_auth_credentials_are_redacted_from_error_bodies() -> None:
    provider = FakeProvider(erp_password="hunter2-long")
    encoded = base64.b64encode(b"svc:hunter2-long").decode()
    server = Server(httpx.Response(403, text=f"denied Basic {encoded} / hunter2-long"))
    with pytest.raises(ConnectorError) as info:
        await connector(server, BasicAuth("svc", "secret://erp-password"), provider=provider).call(
            "a", {}, idempotency_key=KEY
        )
    assert encoded not in str(info.value) and "hunter2" not in str(info.value)


@pytest.mark.parametrize("status", [401, 403, 404, 410, 422])
async def test_other_4xx_are_never_retried(status: int) -> None:
    server = Server(httpx.Response(status, headers={"Retry-After": "1"}))
    with pytest.raises(ConnectorError) as info:
        await connector(server).call("a", {}, idempotency_key=KEY)
    assert len(server.requests) == 1
    assert info.value.error_class is ErrorClass.CLIENT and info.value.status == status


async def test_409_is_retried_only_when_the_policy_says_so() -> None:
    server = Server(httpx.Response(409, text="busy"), httpx.Response(200, json={}))
    with pytest.raises(ConnectorError) as info:
        await connector(server).call("a", {}, idempotency_key=KEY)
    assert info.value.error_class is ErrorClass.CONFLICT and len(server.requests) == 1

    server = Server(httpx.Response(409, text="busy"), httpx.Response(200, json={}))
    policy = RetryPolicy.of(retry_on=["timeout", "connection", "5xx", 429, 409])
    assert await connector(server, retry=policy).call("a", {}, idempotency_key=KEY) == {}
    assert len(server.requests) == 2


async def test_classes_outside_retry_on_are_not_retried() -> None:
    server = Server(httpx.ReadTimeout("slow"), httpx.Response(200, json={}))
    policy = RetryPolicy.of(retry_on=["5xx"])
    with pytest.raises(ConnectorError) as info:
        await connector(server, retry=policy).call("a", {}, idempotency_key=KEY)
    assert info.value.error_class is ErrorClass.TIMEOUT and len(server.requests) == 1


async def test_exhausted_retries_raise_the_last_error_classified() -> None:
    cases: list[tuple[httpx.Response | Exception, ErrorClass]] = [
        (httpx.Response(500, text="boom"), ErrorClass.SERVER),
        (httpx.Response(429), ErrorClass.RATE_LIMITED),
        (httpx.ConnectError("refused"), ErrorClass.CONNECTION),
        (httpx.RemoteProtocolError("reset"), ErrorClass.CONNECTION),
        (httpx.ConnectTimeout("slow"), ErrorClass.TIMEOUT),
        (httpx.ReadTimeout("slow"), ErrorClass.TIMEOUT),
    ]
    for outcome, error_class in cases:
        server = Server(outcome)
        sleep = Recorder()
        with pytest.raises(ConnectorError) as info:
            await connector(server, sleep=sleep).call("a", {}, idempotency_key=KEY)
        assert info.value.error_class is error_class
        assert info.value.attempts == 3 and len(server.requests) == 3 and len(sleep.delays) == 2
        assert "after 3 attempts" in str(info.value)
        assert info.value.matches([error_class.value])
        assert not info.value.matches(["409"])


def test_errors_match_dsl_retry_on_lists() -> None:
    error = ConnectorError(ErrorClass.RATE_LIMITED, "answered 429", operation="a", status=429)
    assert error.matches(["timeout", 429]) and error.matches(["429"])
    assert not error.matches(["5xx", "409"])
    with pytest.raises(ValueError, match="unknown error class"):
        error.matches(["teapot"])


# --- backoff ----------------------------------------------------------------------------


async def test_backoff_is_exponential_bounded_by_max_and_jittered_within_range() -> None:
    policy = RetryPolicy(attempts=8, initial=1.0, max=10.0, jitter=0.5)
    rng = random.Random(7)
    draws: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return rng.uniform(low, high)

    sleep = Recorder()
    server = Server(httpx.Response(503))
    with pytest.raises(ConnectorError):
        await connector(server, retry=policy, sleep=sleep, uniform=uniform).call(
            "a", {}, idempotency_key=KEY
        )
    caps = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert draws == [(cap / 2, cap) for cap in caps]
    assert len(sleep.delays) == 7
    for delay, cap in zip(sleep.delays, caps, strict=True):
        assert cap / 2 <= delay <= cap <= policy.max
    assert len(set(sleep.delays)) == 7  # jittered, not a fixed ladder


def test_backoff_bounds_and_variants() -> None:
    policy = RetryPolicy(initial=2.0, max=60.0, jitter=0.5)
    assert [policy.bounds(n) for n in (1, 2, 3)] == [(1.0, 2.0), (2.0, 4.0), (4.0, 8.0)]
    assert policy.bounds(200) == (30.0, 60.0)  # large retry numbers do not overflow
    full = RetryPolicy(initial=2.0, max=60.0, jitter=1.0)
    assert full.bounds(3) == (0.0, 8.0)
    none = RetryPolicy(initial=2.0, max=60.0, jitter=0.0)
    assert none.delay(3, random.uniform) == 8.0
    fixed = RetryPolicy(initial=5.0, max=60.0, backoff="fixed", jitter=0.2)
    assert fixed.bounds(1) == fixed.bounds(9) == (4.0, 5.0)
    # A misbehaving random source cannot push a delay out of range.
    assert policy.delay(3, lambda low, high: 1e9) == 8.0
    assert policy.delay(3, lambda low, high: -1.0) == 4.0
    rng = random.Random(1)
    for n in range(1, 30):
        low, high = policy.bounds(n)
        for _ in range(20):
            assert low <= policy.delay(n, rng.uniform) <= high <= policy.max


def test_policy_validation_and_dsl_mapping() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"attempts": 0}, "attempts"),
        ({"initial": -1}, "delays"),
        ({"jitter": 1.5}, "jitter"),
        ({"backoff": "linear"}, "backoff"),
        ({"retry_on": frozenset({ErrorClass.CLIENT})}, "never retryable: 4xx"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            RetryPolicy(**bad)
    policy = RetryPolicy.from_dsl(
        Retry(attempts=5, initial="5s", max="2m", retry_on=["timeout", "5xx", 429, 409])
    )
    assert (policy.attempts, policy.initial, policy.max, policy.backoff) == (
        5,
        5.0,
        120.0,
        "exponential",
    )
    assert policy.retry_on == {
        ErrorClass.TIMEOUT,
        ErrorClass.SERVER,
        ErrorClass.RATE_LIMITED,
        ErrorClass.CONFLICT,
    }
    default = RetryPolicy.from_dsl(None)
    assert (default.attempts, default.initial, default.max) == (3, 2.0, 300.0)
    assert RetryPolicy.from_dsl(Retry(initial="1h30m")).initial == 5400.0


def test_parse_retry_after() -> None:
    now = Clock(WALL)
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(formatdate(WALL + 90, usegmt=True), now=now) == 90.0
    assert parse_retry_after(formatdate(WALL - 90, usegmt=True), now=now) == 0.0
    for bad in [None, "", "-5", "1.5", "tomorrow", "Wed, 21 Oct 2015 07:28:00 -0000"]:
        assert parse_retry_after(bad, now=now) is None


# --- OAuth2 client credentials ------------------------------------------------------------


class IdP:
    """A token endpoint (authlib talks to it through the same MockTransport) and an API that
    accepts only the token issued last."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.issued = 0
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        self.token_script: list[httpx.Response] = []
        self.revoked: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            self.token_requests.append(request)
            if self.token_script:
                return self.token_script.pop(0)
            self.issued += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"at-{self.issued}",
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                },
            )
        self.api_requests.append(request)
        if request.headers.get("authorization") in self.revoked:
            return httpx.Response(401, json={"error": "invalid_token"})
        return httpx.Response(200, json={"seen": request.headers.get("authorization")})


def oauth(**kwargs: Any) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        TOKEN_URL, "secret://erp-client-id", "secret://erp-client-secret", **kwargs
    )


def oauth_provider() -> FakeProvider:
    return FakeProvider(erp_client_id="storeops-tenant-7", erp_client_secret="cs-TOP-SECRET")


async def test_oauth2_token_fetched_once_and_reused() -> None:
    idp = IdP()
    auth = oauth(scope="orders:write")
    clock = Clock(1000.0)
    erp = connector(idp, auth, provider=oauth_provider(), clock=clock)
    for _ in range(3):
        assert await erp.call("a", {}, idempotency_key=KEY) == {"seen": "Bearer at-1"}
    assert len(idp.token_requests) == 1 and auth.fetches == 1
    token_request = idp.token_requests[0]
    form = parse_qs(token_request.content.decode())
    assert form["grant_type"] == ["client_credentials"] and form["scope"] == ["orders:write"]
    expected = base64.b64encode(b"storeops-tenant-7:cs-TOP-SECRET").decode()
    assert token_request.headers["authorization"] == f"Basic {expected}"
    assert "idempotency-key" not in token_request.headers
    assert all(r.headers["idempotency-key"] == KEY for r in idp.api_requests)


async def test_oauth2_token_refreshed_after_expiry() -> None:
    idp = IdP(expires_in=3600)
    clock = Clock(1000.0)
    erp = connector(idp, oauth(leeway=30), provider=oauth_provider(), clock=clock)
    await erp.call("a", {}, idempotency_key=KEY)
    clock.now = 1000.0 + 3600 - 31  # still valid
    await erp.call("a", {}, idempotency_key=KEY)
    clock.now = 1000.0 + 3600 - 29  # within the leeway: refreshed ahead of expiry
    await erp.call("a", {}, idempotency_key=KEY)
    clock.now += 10_000  # long expired
    await erp.call("a", {}, idempotency_key=KEY)
    seen = [r.headers["authorization"] for r in idp.api_requests]
    assert seen == ["Bearer at-1", "Bearer at-1", "Bearer at-2", "Bearer at-3"]
    assert len(idp.token_requests) == 3


async def test_oauth2_client_secret_post_and_rotated_client_secret() -> None:
    idp = IdP(expires_in=60)
    provider = oauth_provider()
    cache_clock = Clock(0.0)
    cache = SecretCache(provider, ttl=300, clock=cache_clock)
    clock = Clock(0.0)
    erp = connector(idp, oauth(auth_method="client_secret_post"), cache=cache, clock=clock)
    await erp.call("a", {}, idempotency_key=KEY)
    provider.values["erp-client-secret"] = "cs-ROTATED"
    cache_clock.now = clock.now = 301.0
    await erp.call("a", {}, idempotency_key=KEY)
    forms = [parse_qs(r.content.decode()) for r in idp.token_requests]
    assert [f["client_secret"] for f in forms] == [["cs-TOP-SECRET"], ["cs-ROTATED"]]
    assert all(f["client_id"] == ["storeops-tenant-7"] for f in forms)
    assert "authorization" not in idp.token_requests[0].headers


async def test_oauth2_concurrent_calls_share_one_token_request() -> None:
    idp = IdP()
    erp = connector(idp, oauth(), provider=oauth_provider())
    await asyncio.gather(*(erp.call("a", {}, idempotency_key=f"k{i}") for i in range(8)))
    assert len(idp.token_requests) == 1 and len(idp.api_requests) == 8


async def test_oauth2_a_revoked_token_is_replaced_once() -> None:
    idp = IdP()
    sleep = Recorder()
    erp = connector(idp, oauth(), provider=oauth_provider(), sleep=sleep)
    await erp.call("a", {}, idempotency_key=KEY)
    idp.revoked.add("Bearer at-1")
    assert await erp.call("a", {}, idempotency_key=KEY) == {"seen": "Bearer at-2"}
    assert sleep.delays == []
    # A 401 that a fresh token does not cure is an error, after one replacement only.
    idp.revoked.add("Bearer at-2")
    idp.revoked.add("Bearer at-3")
    with pytest.raises(ConnectorError) as info:
        await erp.call("a", {}, idempotency_key=KEY)
    assert info.value.status == 401 and len(idp.token_requests) == 3


async def test_oauth2_token_endpoint_errors_are_classified_and_redacted() -> None:
    idp = IdP()
    idp.token_script = [
        httpx.Response(401, json={"error": "invalid_client", "echo": "cs-TOP-SECRET"})
    ]
    erp = connector(idp, oauth(), provider=oauth_provider())
    with pytest.raises(ConnectorError) as info:
        await erp.call("a", {}, idempotency_key=KEY)
    assert info.value.error_class is ErrorClass.CLIENT and info.value.status == 401
    assert "invalid_client" in str(info.value) and "cs-TOP-SECRET" not in str(info.value)
    assert idp.api_requests == [] and len(idp.token_requests) == 1


async def test_oauth2_token_endpoint_outage_is_retried_under_the_policy() -> None:
    idp = IdP()
    idp.token_script = [httpx.Response(503, headers={"Retry-After": "3"}), httpx.Response(502)]
    sleep = Recorder()
    erp = connector(idp, oauth(), provider=oauth_provider(), sleep=sleep)
    assert await erp.call("a", {}, idempotency_key=KEY) == {"seen": "Bearer at-1"}
    assert sleep.delays == [3.0, 2.0] and len(idp.token_requests) == 3


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"token_type": "Bearer"}, "no access_token"),
        ({"access_token": "x", "token_type": "mac"}, "token_type"),
        ({"error": "unauthorized_client"}, "unauthorized_client"),
    ],
)
async def test_oauth2_unusable_token_responses(body: dict[str, str], fragment: str) -> None:
    idp = IdP()
    idp.token_script = [httpx.Response(200, json=body)]
    with pytest.raises(ConnectorError, match=fragment) as info:
        await connector(idp, oauth(), provider=oauth_provider()).call("a", {}, idempotency_key=KEY)
    assert info.value.error_class is ErrorClass.RESPONSE


async def test_oauth2_keeps_only_the_access_token() -> None:
    idp = IdP()
    auth = oauth()
    erp = connector(idp, auth, provider=oauth_provider())
    await erp.call("a", {}, idempotency_key=KEY)
    erp.secrets = None  # type: ignore[assignment]
    kept = list(walk(erp))
    assert not [s for s in kept if "cs-TOP-SECRET" in s or "storeops-tenant-7" in s]
    assert "cs-TOP-SECRET" not in repr(auth) and "secret://erp-client-secret" in repr(auth)
