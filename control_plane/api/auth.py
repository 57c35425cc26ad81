"""Bearer-token authentication and the per-request service context."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from control_plane.context import Ctx
from control_plane.db import Database
from control_plane.errors import Forbidden, Unauthorized
from control_plane.identity.principal import Principal
from control_plane.identity.tokens import TokenService

#: Paths served without a token.
PUBLIC_PATHS = [
    "^/oauth/token$",
    "^/.well-known/",
    "^/api/v1/auth/login$",
    "^/healthz$",
    "^/readyz$",
    "^/metrics$",
    "^/schema",
]


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send an access token as 'Authorization: Bearer <token>'")
        tokens: TokenService = connection.app.state.tokens
        principal = await tokens.verify(token.strip())
        return AuthenticationResult(user=principal, auth=token)


async def provide_ctx(request: Request[Principal, str, Any]) -> AsyncGenerator[Ctx, None]:
    """A session scoped to the caller's grants, committed when the handler succeeds."""
    db: Database = request.app.state.db
    principal = request.user
    async with db.session(principal.scope()) as session, session.begin():
        yield Ctx(session=session, principal=principal, request_id=request.state.get("request_id"))


def requires(permission: str) -> Any:
    """A guard: the caller must hold ``permission`` somewhere (the service checks where)."""

    def guard(connection: ASGIConnection[Any, Principal, Any, Any], _: Any) -> None:
        if not connection.user.has(permission):
            raise Forbidden(f"this action needs the '{permission}' permission")

    guard.__name__ = f"requires_{permission.replace(':', '_')}"
    return guard
