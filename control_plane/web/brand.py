"""The brand of the request being rendered: resolved from its Host (or a draft's preview
token) once per page request, before sign-in is checked, so the login page and error
pages wear it too."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from control_plane.branding.resolve import brand_for_request
from control_plane.contracts.brand import DEFAULT, Brand

CURRENT: ContextVar[Brand] = ContextVar("storeops_brand", default=DEFAULT)


def brand_of(scope: Any) -> Brand:
    """The brand resolved for this request (its scope state), else the current one."""
    found = scope.get("state", {}).get("brand") if isinstance(scope, dict) else None
    return found if isinstance(found, Brand) else CURRENT.get()


class BrandMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        connection: ASGIConnection[Any, Any, Any, Any] = ASGIConnection(scope)
        brand = await brand_for_request(
            scope["app"].state.db,
            connection.headers.get("host"),
            "",
            connection.query_params.get("preview"),
        )
        scope.setdefault("state", {})["brand"] = brand
        token = CURRENT.set(brand)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT.reset(token)
