"""HTTP routes: token endpoints, JWKS, users and API clients."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote
from uuid import UUID

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, IfMatch, Limit
from control_plane.api.responses import one, page, to_schema
from control_plane.db import Database, Scope
from control_plane.errors import InvalidInput, StoreOpsError, Unauthorized
from control_plane.identity import schemas, service
from control_plane.identity.models import ApiClient, RoleGrant, User
from control_plane.identity.principal import Principal
from control_plane.identity.tokens import TokenService


def _user(user: User, grants: list[RoleGrant]) -> schemas.User:
    return to_schema(user, schemas.User, grants=[service.grant_out(g) for g in grants])


def _client(client: ApiClient, grants: list[RoleGrant]) -> schemas.Client:
    return to_schema(client, schemas.Client, grants=[service.grant_out(g) for g in grants])


class OAuthError(StoreOpsError):
    """RFC 6749 §5.2 errors, carried as problem details with the OAuth members added."""

    status, type_, title = 400, "oauth-error", "OAuth token request refused"

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description, error=error, error_description=description)
        self.status = status


@post(
    "/oauth/token",
    operation_id="issueToken",
    tags=["auth"],
    status_code=200,
    description="OAuth 2.0 client credentials grant (RFC 6749 §4.4). Form-encoded body; "
    "client authentication by HTTP Basic or client_id/client_secret fields.",
)
async def oauth_token(request: Request[Any, Any, Any]) -> Response[schemas.TokenResponse]:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise OAuthError(
            "invalid_request", "send the token request as application/x-www-form-urlencoded"
        )
    form = dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )
    if form.get("grant_type") != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type", "only grant_type=client_credentials is supported"
        )
    client_id, secret = _client_credentials(request.headers.get("authorization"), form)
    db: Database = request.app.state.db
    tokens: TokenService = request.app.state.tokens
    async with db.session(Scope.system()) as session:
        try:
            principal = await service.authenticate_client(
                session, client_id, secret, form.get("scope")
            )
        except Unauthorized as exc:
            raise OAuthError("invalid_client", exc.detail, status=401) from None
        except InvalidInput as exc:
            raise OAuthError("invalid_scope", exc.detail) from None
    return await _token_response(tokens, principal)


async def _token_response(
    tokens: TokenService, principal: Principal
) -> Response[schemas.TokenResponse]:
    token, ttl = await tokens.issue(principal)
    body = schemas.TokenResponse(
        access_token=token,
        token_type="Bearer",  # noqa: S106 - the RFC 6750 token type, not a secret
        expires_in=ttl,
        scope=" ".join(sorted({g.role.value for g in principal.grants})),
    )
    return Response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _client_credentials(authorization: str | None, form: dict[str, str]) -> tuple[str, str]:
    if authorization and authorization.lower().startswith("basic "):
        try:
            raw = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise OAuthError(
                "invalid_client", "the Basic credentials are not valid base64", 401
            ) from None
        client_id, sep, secret = raw.partition(":")
        if not sep:
            raise OAuthError(
                "invalid_client", "Basic credentials must be client_id:client_secret", 401
            )
        return unquote(client_id), unquote(secret)
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if not form_id or not form_secret:
        raise OAuthError(
            "invalid_client",
            "client authentication is required (HTTP Basic or client_secret_post)",
            401,
        )
    return form_id, form_secret


@post("/api/v1/auth/login", operation_id="login", tags=["auth"], status_code=200)
async def login(
    request: Request[Any, Any, Any], data: JSONBody[schemas.LoginRequest]
) -> Response[schemas.TokenResponse]:
    db: Database = request.app.state.db
    tokens: TokenService = request.app.state.tokens
    async with db.session(Scope.system()) as session:
        principal = await service.authenticate_user(session, data.email, data.password)
    return await _token_response(tokens, principal)


@get("/.well-known/jwks.json", operation_id="jwks", tags=["auth"])
async def jwks(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    tokens: TokenService = request.app.state.tokens
    return Response(await tokens.keyring.jwks(), headers={"Cache-Control": "public, max-age=60"})


class UserController(Controller):
    path = "/api/v1/users"
    tags = ["users"]
    guards = [requires("users:read")]

    @post(
        "/", operation_id="createUser", guards=[requires("users:write")], opt={"idempotent": True}
    )
    async def create(
        self, ctx: CtxDep, data: JSONBody[schemas.UserCreate]
    ) -> Response[schemas.User]:
        user, grants = await service.create_user(ctx, data)
        return Response(_user(user, grants), status_code=201, headers={"ETag": user.etag})

    @get("/", operation_id="listUsers")
    async def list_(
        self,
        ctx: CtxDep,
        partner_id: FromQuery[UUID | None] = None,
        tenant_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.User]:
        rows, nxt = await service.list_users(
            ctx, partner_id=partner_id, tenant_id=tenant_id, limit=limit, cursor=cursor
        )
        grants = await service.grants_by_owner(ctx.session, users=[r.id for r in rows])
        return page(rows, nxt, schemas.User, lambda r: _user(r, grants[r.id]))

    @get("/{user_id:uuid}", operation_id="getUser")
    async def get_(self, ctx: CtxDep, user_id: FromPath[UUID]) -> Response[schemas.User]:
        user, grants = await service.get_user(ctx, user_id)
        return Response(_user(user, grants), headers={"ETag": user.etag})

    @patch("/{user_id:uuid}", operation_id="updateUser", guards=[requires("users:write")])
    async def update(
        self,
        ctx: CtxDep,
        user_id: FromPath[UUID],
        data: JSONBody[schemas.UserUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.User]:
        user, grants = await service.update_user(ctx, user_id, data, if_match)
        return Response(_user(user, grants), headers={"ETag": user.etag})


class ClientController(Controller):
    path = "/api/v1/clients"
    tags = ["clients"]
    guards = [requires("clients:read")]

    @post(
        "/",
        operation_id="createClient",
        guards=[requires("clients:write")],
        opt={"idempotent": True},
    )
    async def create(
        self, ctx: CtxDep, data: JSONBody[schemas.ClientCreate]
    ) -> Response[schemas.ClientCreated]:
        client, grants, secret = await service.create_client(ctx, data)
        body = schemas.ClientCreated(
            **{f: getattr(_client(client, grants), f) for f in schemas.Client.__struct_fields__},
            client_secret=secret,
        )
        return Response(
            body, status_code=201, headers={"ETag": client.etag, "Cache-Control": "no-store"}
        )

    @get("/", operation_id="listClients")
    async def list_(
        self, ctx: CtxDep, limit: Limit = 50, cursor: Cursor = None
    ) -> Page[schemas.Client]:
        rows, nxt = await service.list_clients(ctx, limit=limit, cursor=cursor)
        grants = await service.grants_by_owner(ctx.session, clients=[r.id for r in rows])
        return page(rows, nxt, schemas.Client, lambda r: _client(r, grants[r.id]))

    @get("/{client_id:uuid}", operation_id="getClient")
    async def get_(self, ctx: CtxDep, client_id: FromPath[UUID]) -> Response[schemas.Client]:
        client, grants = await service.get_client(ctx, client_id)
        return Response(_client(client, grants), headers={"ETag": client.etag})

    @patch("/{client_id:uuid}", operation_id="updateClient", guards=[requires("clients:write")])
    async def update(
        self,
        ctx: CtxDep,
        client_id: FromPath[UUID],
        data: JSONBody[schemas.ClientUpdate],
        if_match: IfMatch = None,
    ) -> Response[schemas.Client]:
        client, grants = await service.update_client(ctx, client_id, data, if_match)
        return Response(_client(client, grants), headers={"ETag": client.etag})


__all__ = ["ClientController", "UserController", "jwks", "login", "oauth_token", "one"]
