"""Access tokens against the real app: RFC 8725 refusals, key rotation and retirement,
the OAuth2 client-credentials grant and password login."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg  # type: ignore[import-untyped]
import httpx
import msgspec
import pytest
from joserfc import jwt
from joserfc.jwk import OKPKey, RSAKey
from litestar import Litestar
from sqlalchemy import select

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.db import utcnow
from control_plane.errors import Unauthorized
from control_plane.identity import admin
from control_plane.identity import schemas as ids
from control_plane.identity import service as identity
from control_plane.identity.keys import LoadedKey
from control_plane.identity.models import ApiClient, SigningKey
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.identity.tokens import TokenService
from tests.conftest import World, bearer

API = "/api/v1/tenants"


# --- helpers ------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def claims_for(settings: Settings, partner_id: UUID, **override: Any) -> dict[str, Any]:
    """Claims exactly like the ones TokenService.issue writes, for a partner admin."""
    now = int(utcnow().timestamp())
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "aud": settings.jwt_audience,
        "sub": f"user:forged-{secrets.token_hex(4)}",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": secrets.token_hex(16),
        "kind": "user",
        "name": "forged",
        "scope": Role.PARTNER_ADMIN.value,
        "grants": msgspec.to_builtins([Grant(Role.PARTNER_ADMIN, partner_id=partner_id)]),
    }
    claims.update(override)
    return claims


def sign(key: LoadedKey, claims: dict[str, Any], **header: Any) -> str:
    hdr: dict[str, Any] = {"alg": key.algorithm, "kid": key.kid, "typ": "at+jwt", **header}
    return jwt.encode(hdr, claims, key.key, algorithms=[key.algorithm])


_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def hmac_token(secret: bytes, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWS signed by hand with HMAC (libraries rightly refuse public keys as secrets)."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    mac = hmac.new(secret, signing_input.encode(), _HMAC[header["alg"]]).digest()
    return f"{signing_input}.{b64url(mac)}"


def kid_of(token: str) -> str:
    header = json.loads(b64url_decode(token.split(".")[0]))
    return str(header["kid"])


async def signing_key(app: Litestar) -> LoadedKey:
    tokens: TokenService = app.state.tokens
    return await tokens.keyring.signing_key()


async def rotate(world: World, settings: Settings) -> tuple[SigningKey, list[SigningKey]]:
    async def go(c: Ctx) -> tuple[SigningKey, list[SigningKey]]:
        return await admin.rotate(c, settings)

    result: tuple[SigningKey, list[SigningKey]] = await world.run(go)
    world.app.state.tokens.keyring.invalidate()
    return result


async def jwks_kids(client: httpx.AsyncClient) -> set[str]:
    res = await client.get("/.well-known/jwks.json")
    assert res.status_code == 200, res.text
    return {k["kid"] for k in res.json()["keys"]}


def assert_401(res: httpx.Response, reason: str | None = None) -> None:
    """401 problem+json; ``reason`` pins why, so a refusal cannot pass for another cause."""
    assert res.status_code == 401, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert body["type"] == "urn:storeops:problem:unauthorized"
    assert body["status"] == 401
    assert body["title"]
    assert body["detail"]
    assert res.headers["www-authenticate"].startswith("Bearer")
    if reason is not None:
        assert reason in body["detail"], body["detail"]


async def get_as(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(API, headers=bearer(token))


# --- RFC 8725: tokens the API must refuse --------------------------------------------------


async def test_forged_token_with_real_key_is_accepted(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    """The control case: the forging helpers build tokens the app accepts, so the
    refusals below are about the one thing each of them changes."""
    tree = await world.tree()
    token = sign(await signing_key(app), claims_for(settings, tree.partner_id))
    res = await get_as(client, token)
    assert res.status_code == 200, res.text
    assert {t["id"] for t in res.json()["items"]} == {str(tree.tenant_id)}


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_refused(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World, alg: str
) -> None:
    tree = await world.tree()
    key = await signing_key(app)
    header = {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
    claims = claims_for(settings, tree.partner_id)
    for signature in ("", b64url(b"x" * 64)):
        token = f"{segment(header)}.{segment(claims)}.{signature}"
        assert_401(await get_as(client, token), f"algorithm {alg!r} is not accepted")


async def test_hs256_signed_with_the_public_key_is_refused(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    """Key confusion: an HMAC over the published public key must not verify."""
    tree = await world.tree()
    key = await signing_key(app)
    published = next(
        k
        for k in (await client.get("/.well-known/jwks.json")).json()["keys"]
        if k["kid"] == key.kid
    )
    assert not {"d", "p", "q"} & published.keys(), "JWKS must not publish private parts"
    public: OKPKey | RSAKey = (
        OKPKey.import_key(published) if published["kty"] == "OKP" else RSAKey.import_key(published)
    )
    secrets_to_try = [
        public.as_pem(private=False),
        json.dumps(published).encode(),
        json.dumps(published, separators=(",", ":"), sort_keys=True).encode(),
    ]
    if published["kty"] == "OKP":
        secrets_to_try.append(b64url_decode(published["x"]))
    else:
        secrets_to_try.append(b64url_decode(published["n"]))
    claims = claims_for(settings, tree.partner_id)
    for secret in secrets_to_try:
        for alg in _HMAC:
            token = hmac_token(secret, {"alg": alg, "kid": key.kid, "typ": "at+jwt"}, claims)
            assert_401(await get_as(client, token), f"{alg!r} is not accepted")


@pytest.mark.parametrize(
    "override",
    [
        pytest.param({"aud": "someone-else"}, id="wrong-aud"),
        pytest.param({"aud": ["someone-else", "another"]}, id="wrong-aud-list"),
        pytest.param({"iss": "https://evil.example"}, id="wrong-iss"),
        pytest.param({"iss": "http://testserver/other"}, id="iss-prefix"),
    ],
)
async def test_wrong_audience_or_issuer_is_refused(
    client: httpx.AsyncClient,
    app: Litestar,
    settings: Settings,
    world: World,
    override: dict[str, Any],
) -> None:
    tree = await world.tree()
    token = sign(await signing_key(app), claims_for(settings, tree.partner_id, **override))
    claim = next(iter(override))
    assert_401(await get_as(client, token), f"Invalid claim: '{claim}'")


async def test_missing_essential_claims_are_refused(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    tree = await world.tree()
    key = await signing_key(app)
    for claim in ("aud", "iss", "exp", "sub", "jti"):
        claims = claims_for(settings, tree.partner_id)
        del claims[claim]
        assert_401(await get_as(client, sign(key, claims)), f"Missing claim: '{claim}'")


async def test_expired_token_is_refused(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    tree = await world.tree()
    now = int(utcnow().timestamp())
    expired = claims_for(settings, tree.partner_id, iat=now - 3600, nbf=now - 3600, exp=now - 1800)
    assert_401(await get_as(client, sign(await signing_key(app), expired)), "expired")


async def test_not_yet_valid_token_is_refused(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    tree = await world.tree()
    later = int(utcnow().timestamp()) + 3600
    early = claims_for(settings, tree.partner_id, iat=later, nbf=later, exp=later + 600)
    assert_401(await get_as(client, sign(await signing_key(app), early)), "in the future")


async def test_unknown_kid_is_refused(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    tree = await world.tree()
    claims = claims_for(settings, tree.partner_id)
    real = await signing_key(app)
    # The real key under a kid the server never issued.
    unknown = "unknown or retired key"
    assert_401(await get_as(client, sign(real, claims, kid=secrets.token_hex(16))), unknown)
    # A key of our own, carrying a kid of our own.
    stranger = OKPKey.generate_key("Ed25519")
    token = jwt.encode(
        {"alg": "Ed25519", "kid": secrets.token_hex(16), "typ": "at+jwt"},
        claims,
        stranger,
        algorithms=["Ed25519"],
    )
    assert_401(await get_as(client, token), unknown)
    # A key of our own, claiming the server's kid.
    token = jwt.encode(
        {"alg": "Ed25519", "kid": real.kid, "typ": "at+jwt"},
        claims,
        stranger,
        algorithms=["Ed25519"],
    )
    assert_401(await get_as(client, token), "signature")
    # No kid at all.
    header = {"alg": real.algorithm, "typ": "at+jwt"}
    token = jwt.encode(header, claims, real.key, algorithms=[real.algorithm])
    assert_401(await get_as(client, token), "no key id")


async def test_tampered_payload_is_refused(
    client: httpx.AsyncClient, world: World, app: Litestar
) -> None:
    tree = await world.tree()
    mine, other = tree, await world.tree()
    token = mine.partner_token
    assert (await get_as(client, token)).status_code == 200
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))

    escalated = {**claims, "grants": [{"role": "platform_admin"}], "scope": "platform_admin"}
    sideways = {
        **claims,
        "grants": msgspec.to_builtins([Grant(Role.PARTNER_ADMIN, partner_id=other.partner_id)]),
    }
    longer = {**claims, "exp": claims["exp"] + 86_400}
    for forged in (escalated, sideways, longer, {**claims, "sub": "user:someone-else"}):
        assert_401(await get_as(client, f"{header}.{segment(forged)}.{signature}"), "signature")
    # A flipped bit in the signature is refused too.
    sig = bytearray(b64url_decode(signature))
    sig[0] ^= 1
    assert_401(await get_as(client, f"{header}.{payload}.{b64url(bytes(sig))}"), "signature")
    # ...and the original still works: nothing above poisoned the verified-token cache.
    assert (await get_as(client, token)).status_code == 200


async def test_missing_or_garbage_authorization_is_refused(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    assert_401(await client.get(API))
    for value in (
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer ....",
        "Bearer !!!.@@@.###",
        f"Bearer {b64url(b'[1,2]')}.{b64url(b'{}')}.",
        f"Basic {base64.b64encode(b'user:pass').decode()}",
        f"Token {tree.partner_token}",
        tree.partner_token,
    ):
        assert_401(await client.get(API, headers={"Authorization": value}))


# --- key rotation and retirement -----------------------------------------------------------


async def test_rotation_keeps_old_tokens_until_the_old_key_is_retired(
    client: httpx.AsyncClient, app: Litestar, settings: Settings, world: World
) -> None:
    tree = await world.tree()
    grant = Grant(Role.PARTNER_ADMIN, partner_id=tree.partner_id)
    tokens: TokenService = app.state.tokens

    # A key of this test's own, so retiring it cannot break tokens other tests hold.
    first, _ = await rotate(world, settings)
    old_token = await world.token(grant)
    assert kid_of(old_token) == first.kid
    assert (await get_as(client, old_token)).status_code == 200

    second, previous = await rotate(world, settings)
    assert [k.kid for k in previous] == [first.kid]
    assert previous[0].status == "verifying"
    assert previous[0].retires_at is not None
    assert previous[0].retires_at > utcnow()

    new_token = await world.token(grant)
    assert kid_of(new_token) == second.kid != first.kid
    assert (await get_as(client, old_token)).status_code == 200
    assert (await get_as(client, new_token)).status_code == 200
    assert {first.kid, second.kid} <= await jwks_kids(client)
    # The old token is now in the verified-token cache: retirement must reach it there too.
    assert old_token in tokens._verified

    async def retire(c: Ctx) -> SigningKey | None:
        return await admin.retire(c, first.kid)

    retired = await world.run(retire)
    assert retired is not None
    assert retired.status == "retired"
    tokens.keyring.invalidate()

    assert_401(await get_as(client, old_token), "unknown or retired key")
    with pytest.raises(Unauthorized):
        await tokens.verify(old_token)
    assert (await get_as(client, new_token)).status_code == 200
    kids = await jwks_kids(client)
    assert second.kid in kids
    assert first.kid not in kids
    # Tokens issued after the retirement are signed by the current key.
    assert kid_of(await world.token(grant)) == second.kid


async def test_the_signing_key_cannot_be_retired(world: World, app: Litestar) -> None:
    current = await signing_key(app)

    async def retire(c: Ctx) -> SigningKey | None:
        return await admin.retire(c, current.kid)

    with pytest.raises(ValueError, match="current signing key"):
        await world.run(retire)

    async def unknown(c: Ctx) -> SigningKey | None:
        return await admin.retire(c, "no-such-kid")

    assert await world.run(unknown) is None


async def test_rotated_key_stops_verifying_after_retires_at(
    app: Litestar, settings: Settings, world: World
) -> None:
    """No retire call: a verifying key lapses on its own at ``retires_at``."""
    tree = await world.tree()
    tokens: TokenService = app.state.tokens
    outgoing, _ = await rotate(world, settings)
    _, previous = await rotate(world, settings)
    retires_at = previous[0].retires_at
    assert previous[0].kid == outgoing.kid
    assert retires_at is not None

    loaded = await tokens.keyring.verification_key(outgoing.kid, utcnow())
    assert loaded is not None
    assert not loaded.signing

    def at(moment: datetime) -> int:
        return int(moment.timestamp())

    # Valid in every other respect around retires_at, so only the key's lapse can fail it.
    claims = claims_for(
        settings,
        tree.partner_id,
        iat=at(retires_at - timedelta(minutes=2)),
        nbf=at(retires_at - timedelta(minutes=2)),
        exp=at(retires_at + timedelta(minutes=10)),
    )
    token = sign(loaded, claims)
    before = await tokens.verify(token, now=retires_at - timedelta(seconds=30))
    assert before.subject == claims["sub"]
    # Verified once, the token sits in the cache; the cache must not outlive the key.
    with pytest.raises(Unauthorized, match="retired"):
        await tokens.verify(token, now=retires_at + timedelta(seconds=1))
    with pytest.raises(Unauthorized, match="retired"):
        await tokens.verify(token, now=retires_at + timedelta(minutes=5))


# --- OAuth2 client credentials -------------------------------------------------------------


async def make_client(world: World, partner_id: UUID) -> tuple[ApiClient, str]:
    data = ids.ClientCreate(
        name="ERP connector",
        grants=[ids.GrantSpec(role=Role.PARTNER_ADMIN, partner_id=partner_id)],
    )

    async def go(c: Ctx) -> tuple[ApiClient, str]:
        client, _, secret = await identity.create_client(c, data)
        return client, secret

    result: tuple[ApiClient, str] = await world.run(go)
    return result


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {**FORM, "Authorization": f"Basic {raw}"}


def assert_oauth_error(res: httpx.Response, status: int, error: str) -> None:
    assert res.status_code == status, res.text
    assert res.headers["content-type"].startswith("application/problem+json")
    body = res.json()
    assert body["error"] == error
    assert body["error_description"]
    assert body["status"] == status
    assert "access_token" not in body


async def test_client_credentials_with_http_basic(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree, other = await world.tree(), await world.tree()
    api_client, secret = await make_client(world, tree.partner_id)
    res = await client.post(
        "/oauth/token",
        content="grant_type=client_credentials",
        headers=basic(api_client.client_id, secret),
    )
    assert res.status_code == 200, res.text
    assert res.headers["cache-control"] == "no-store"
    body = res.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["scope"] == "partner_admin"
    claims = json.loads(b64url_decode(body["access_token"].split(".")[1]))
    assert claims["sub"] == f"client:{api_client.client_id}"
    assert claims["kind"] == "client"

    listed = await client.get(API, headers=bearer(body["access_token"]))
    assert listed.status_code == 200, listed.text
    assert {t["id"] for t in listed.json()["items"]} == {str(tree.tenant_id)}
    theirs = await client.get(f"{API}/{other.tenant_id}", headers=bearer(body["access_token"]))
    assert theirs.status_code == 404


async def test_client_credentials_with_client_secret_post(
    client: httpx.AsyncClient, world: World
) -> None:
    tree = await world.tree()
    api_client, secret = await make_client(world, tree.partner_id)
    res = await client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": api_client.client_id,
            "client_secret": secret,
            "scope": "partner_admin",
        },
    )
    assert res.status_code == 200, res.text
    token = res.json()["access_token"]
    created = await client.post(
        f"{API}/{tree.tenant_id}/regions",
        json={"code": "south", "name": "South"},
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text


async def test_client_credentials_refusals(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    api_client, secret = await make_client(world, tree.partner_id)
    cid = api_client.client_id

    wrong = await client.post(
        "/oauth/token",
        content="grant_type=client_credentials",
        headers=basic(cid, secret + "x"),
    )
    assert_oauth_error(wrong, 401, "invalid_client")
    wrong_post = await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": "nope"},
    )
    assert_oauth_error(wrong_post, 401, "invalid_client")
    unknown = await client.post(
        "/oauth/token",
        content="grant_type=client_credentials",
        headers=basic("so_unknown", secret),
    )
    assert_oauth_error(unknown, 401, "invalid_client")
    anonymous = await client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert_oauth_error(anonymous, 401, "invalid_client")

    password_grant = await client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": "a@example.com", "password": "x" * 12},
        headers={"Authorization": basic(cid, secret)["Authorization"]},
    )
    assert_oauth_error(password_grant, 400, "unsupported_grant_type")
    as_json = await client.post(
        "/oauth/token",
        json={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
    )
    assert_oauth_error(as_json, 400, "invalid_request")
    too_much_scope = await client.post(
        "/oauth/token",
        content="grant_type=client_credentials&scope=platform_admin",
        headers=basic(cid, secret),
    )
    assert_oauth_error(too_much_scope, 400, "invalid_scope")


async def test_client_secret_is_stored_only_as_a_digest(
    client: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    tree = await world.tree()
    api_client, secret = await make_client(world, tree.partner_id)

    async def load(c: Ctx) -> ApiClient | None:
        return await c.session.scalar(select(ApiClient).where(ApiClient.id == api_client.id))

    stored = await world.run(load)
    assert stored is not None
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in stored.secret_hash

    # Nowhere in the database, not in the client row nor in its audit entry.
    conn = await asyncpg.connect(settings.admin_database_url.replace("+asyncpg", ""))
    try:
        row = await conn.fetchrow(
            "SELECT row_to_json(c)::text AS j FROM api_clients c WHERE id = $1", api_client.id
        )
        audit = await conn.fetch(
            "SELECT row_to_json(a)::text AS j FROM audit_entries a WHERE target_id = $1",
            str(api_client.id),
        )
    finally:
        await conn.close()
    assert row is not None
    assert secret not in row["j"]
    assert len(audit) == 1
    assert secret not in audit[0]["j"]
    assert stored.secret_hash not in audit[0]["j"]

    # The API never shows the secret again either.
    listed = await client.get(
        f"/api/v1/clients/{api_client.id}", headers=bearer(tree.partner_token)
    )
    assert listed.status_code == 200, listed.text
    assert secret not in listed.text
    assert "secret" not in listed.json()


# --- password login ------------------------------------------------------------------------


async def make_user(world: World, tenant_id: UUID, password: str) -> tuple[UUID, str]:
    email = f"ops-{secrets.token_hex(4)}@example.com"
    data = ids.UserCreate(
        email=email,
        name="Store Ops",
        password=password,
        grants=[ids.GrantSpec(role=Role.RETAILER_ADMIN, tenant_id=tenant_id)],
    )

    async def go(c: Ctx) -> UUID:
        user, _ = await identity.create_user(c, data)
        return user.id

    user_id: UUID = await world.run(go)
    return user_id, email


async def test_login_issues_a_working_token(client: httpx.AsyncClient, world: World) -> None:
    tree, other = await world.tree(), await world.tree()
    password = "correct horse battery staple"
    user_id, email = await make_user(world, tree.tenant_id, password)

    res = await client.post(
        "/api/v1/auth/login", json={"email": email.upper(), "password": password}
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "retailer_admin"
    assert res.headers["cache-control"] == "no-store"
    token = body["access_token"]
    claims = json.loads(b64url_decode(token.split(".")[1]))
    assert claims["sub"] == f"user:{user_id}"

    mine = await client.get(f"{API}/{tree.tenant_id}", headers=bearer(token))
    assert mine.status_code == 200, mine.text
    theirs = await client.get(f"{API}/{other.tenant_id}", headers=bearer(token))
    assert theirs.status_code == 404


async def test_login_refusals(client: httpx.AsyncClient, world: World) -> None:
    tree = await world.tree()
    password = "a long enough password"
    user_id, email = await make_user(world, tree.tenant_id, password)

    wrong = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password + "!"}
    )
    assert_401(wrong)
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": password}
    )
    assert_401(unknown)
    assert unknown.json()["detail"] == wrong.json()["detail"], "do not reveal which emails exist"

    async def deactivate(c: Ctx) -> None:
        await identity.update_user(c, user_id, ids.UserUpdate(active=False), None)

    await world.run(deactivate)
    deactivated = await client.post(
        "/api/v1/auth/login", json={"email": email, "password": password}
    )
    assert_401(deactivated)
    assert "access_token" not in deactivated.json()


async def test_principal_without_roles_is_authenticated_but_forbidden(
    client: httpx.AsyncClient, app: Litestar
) -> None:
    """401 is about the token; a valid token without the permission is a 403."""
    principal = Principal(subject="user:nobody", kind="user", name="nobody")
    token, _ = await app.state.tokens.issue(principal)
    res = await client.get(API, headers=bearer(token))
    assert res.status_code == 403, res.text
    assert res.json()["type"] == "urn:storeops:problem:forbidden"
