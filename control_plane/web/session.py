"""Signing in to the pages: ``/login`` sets the access token in an HttpOnly cookie, and the
page routes accept that cookie (or a bearer header) through their own middleware.

The API itself never reads the cookie: a cross-site request can carry a cookie, not a
header. Page forms that change something also check that they were posted from this origin.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.params import QueryParameter
from litestar.response import Redirect

from control_plane.api.params import Form
from control_plane.db import Database
from control_plane.db.scope import Scope
from control_plane.errors import StoreOpsError, Unauthorized, problem_response
from control_plane.identity import service as identity
from control_plane.identity.principal import Principal
from control_plane.identity.roles import Role
from control_plane.identity.tokens import TokenService
from control_plane.web.brand import CURRENT
from control_plane.web.render import SECURITY_HEADERS, page

COOKIE = "storeops_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Unauthorized):
    """No valid session: pages redirect to ``/login``, streams and JSON get a 401."""


class CrossOrigin(StoreOpsError):
    status, type_, title = 403, "cross-origin", "Cross-origin form post refused"


def _token(connection: ASGIConnection[Any, Any, Any, Any]) -> tuple[str | None, bool]:
    """The access token, and whether it came from the cookie (which a browser would also
    send along with another site's form)."""
    scheme, _, value = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    return connection.cookies.get(COOKIE) or None, True


def _same_origin(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    source = connection.headers.get("origin") or connection.headers.get("referer")
    if not source:
        return False
    return urlsplit(source).netloc == connection.headers.get("host", "")


class SessionAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        token, from_cookie = _token(connection)
        if token is None:
            raise LoginRequired("sign in at /login first")
        tokens: TokenService = connection.app.state.tokens
        try:
            principal = await tokens.verify(token)
        except StoreOpsError:
            raise LoginRequired("your session has expired; sign in again at /login") from None
        method = connection.scope.get("method", "GET")
        if method not in SAFE_METHODS and from_cookie and not _same_origin(connection):
            raise CrossOrigin("forms are accepted only from this site's own pages")
        return AuthenticationResult(user=principal, auth=token)


def wants_html(request: Request[Any, Any, Any]) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def login_required(request: Request[Any, Any, Any], exc: LoginRequired) -> Response[Any]:
    if wants_html(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"/login?next={quote(target, safe='')}")
    return problem_response(request, exc)


#: Roles the partner portal serves (control_plane.web.portal checks the same).
PORTAL_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.PARTNER_ADMIN, Role.PARTNER_OPERATOR})


def _landing(principal: Principal) -> str:
    """Where sign-in leads by default: partner staff on a partner's or retailer's own host
    go to the partner portal; everyone else to the NOC (scoped to what they may see)."""
    staff = any(g.role in PORTAL_ROLES for g in principal.grants)
    return "/portal" if staff and CURRENT.get().source != "platform" else "/noc"


def _next(raw: str | None) -> str:
    """Only a path on this site (never //host or a scheme): an open redirect otherwise;
    empty when none was asked for (the landing then depends on who signs in)."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return ""


@get("/login", include_in_schema=False)
async def login_page(
    next_: Annotated[str | None, QueryParameter(name="next")] = None,
) -> Response[str]:
    return page("noc/login.html", next=_next(next_), error=None)


@post("/login", include_in_schema=False, status_code=303)
async def login_form(
    request: Request[Any, Any, Any],
    data: Form,
) -> Response[Any]:
    target = _next(data.get("next"))
    email, password = data.get("email", "").strip(), data.get("password", "")
    db: Database = request.app.state.db
    tokens: TokenService = request.app.state.tokens
    try:
        if not email or not password:
            raise Unauthorized("enter your email and password")
        async with db.session(Scope.system()) as session:
            principal = await identity.authenticate_user(session, email, password)
    except Unauthorized as exc:
        return page("noc/login.html", status_code=401, next=target, error=exc.detail, email=email)
    token, ttl = await tokens.issue(principal)
    target = target or _landing(principal)
    response: Response[Any] = Redirect(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        COOKIE,
        token,
        max_age=ttl,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@post("/logout", include_in_schema=False, status_code=303)
async def logout() -> Response[Any]:
    response: Response[Any] = Redirect("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
