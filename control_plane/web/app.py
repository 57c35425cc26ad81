"""The pages' router: cookie (or bearer) sign-in, HTML error pages, and static files."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from control_plane.errors import EXCEPTION_HANDLERS, StoreOpsError, problem_response
from control_plane.web import (
    noc,
    portal,
    portal_brand,
    portal_rollouts,
    portal_tenants,
    session,
    stream,
)
from control_plane.web.brand import BrandMiddleware, brand_of
from control_plane.web.paths import static_dir
from control_plane.web.render import page


def _error_page(request: Request[Any, Any, Any], exc: StoreOpsError) -> Response[Any]:
    if isinstance(exc, session.LoginRequired):
        return session.login_required(request, exc)
    if not session.wants_html(request):
        return problem_response(request, exc)
    return page(
        "noc/error.html",
        status_code=exc.status,
        brand=brand_of(request.scope),
        title=exc.title,
        detail=exc.detail,
    )


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    response = EXCEPTION_HANDLERS[HTTPException](request, exc)
    if not session.wants_html(request):
        return response
    return page(
        "noc/error.html",
        status_code=exc.status_code,
        brand=brand_of(request.scope),
        title="Error",
        detail=str(exc.detail),
    )


def web_handlers() -> list[ControllerRouterHandler]:
    pages = Router(
        path="/",
        route_handlers=[
            *noc.HANDLERS,
            stream.fleet_stream,
            *portal.HANDLERS,
            *portal_tenants.HANDLERS,
            *portal_rollouts.HANDLERS,
            *portal_brand.HANDLERS,
        ],
        middleware=[BrandMiddleware, DefineMiddleware(session.SessionAuthMiddleware)],
        exception_handlers={StoreOpsError: _error_page, HTTPException: _http_error},
        include_in_schema=False,
    )
    signin = Router(
        path="/",
        route_handlers=[session.login_page, session.login_form, session.logout],
        middleware=[BrandMiddleware],
        exception_handlers={StoreOpsError: _error_page},
        include_in_schema=False,
    )
    static = create_static_files_router(
        path="/static", directories=[static_dir()], include_in_schema=False
    )
    return [pages, signin, static]
