"""Bearer-token authentication and the per-request service context."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import select

from control_plane.context import Ctx
from control_plane.db import Database
from control_plane.errors import Forbidden, NotFound, Unauthorized
from control_plane.identity.models import ApiClient, User
from control_plane.identity.principal import Principal
from control_plane.identity.tokens import TokenService
from control_plane.tenancy.models import Partner, Region, Store, Tenant

#: Paths served without a token.
PUBLIC_PATHS = [
    "^/oauth/token$",
    "^/.well-known/",
    "^/api/v1/auth/login$",
    "^/healthz$",
    "^/readyz$",
    "^/metrics$",
    "^/schema",
    # Pages sign in with their own cookie middleware (control_plane.web.session).
    "^/login$",
    "^/logout$",
    "^/noc",
    "^/portal",
    "^/static/",
    # The brand of a Host and its images are public: a login page needs them.
    "^/api/v1/brand$",
    "^/brand-assets/",
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
    """The caller's service context; a session it opened commits if the handler succeeds."""
    ctx = Ctx(request.user, request.state.get("request_id"), db=request.app.state.db)
    try:
        yield ctx
    except BaseException:
        if (session := ctx.opened) is not None:
            await session.rollback()
            await session.close()
        raise
    if (session := ctx.opened) is not None:
        try:
            await session.commit()
        finally:
            await session.close()


#: Path parameters that name a tenancy-owned object, and its model.
PATH_OBJECTS: dict[str, Any] = {
    "partner_id": Partner,
    "tenant_id": Tenant,
    "region_id": Region,
    "store_id": Store,
    "user_id": User,
    "client_id": ApiClient,
}


async def _hidden_object(connection: ASGIConnection[Any, Principal, Any, Any]) -> str | None:
    """The first object named in the path that the caller cannot see, if any."""
    named = [(k, v) for k, v in connection.path_params.items() if k in PATH_OBJECTS]
    if not named:
        return None
    db: Database = connection.app.state.db
    async with db.session(connection.user.scope()) as session:
        for name, value in named:
            model = PATH_OBJECTS[name]
            if await session.scalar(select(model.id).where(model.id == value)) is None:
                return f"{name.removesuffix('_id')} {value} does not exist"
    return None


def requires(permission: str) -> Any:
    """A guard: the caller must hold ``permission`` somewhere (the service checks where).

    Refused on an object another tenant owns, the answer is 404, never 403 (invariant 4).
    """

    async def guard(connection: ASGIConnection[Any, Principal, Any, Any], _: Any) -> None:
        if not connection.user.has(permission):
            if (missing := await _hidden_object(connection)) is not None:
                raise NotFound(missing)
            raise Forbidden(f"this action needs the '{permission}' permission")

    guard.__name__ = f"requires_{permission.replace(':', '_')}"
    return guard
