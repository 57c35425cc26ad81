"""How a connector authenticates: bearer token, HTTP basic, API key header, or OAuth2 client
credentials.

Every credential field holds either a literal or a ``secret://name`` reference. References
are resolved through the runtime's :class:`~tenant_runtime.secrets.SecretCache` on every
request (the cache bounds how long a value lives, so rotated secrets are picked up once its
TTL passes); resolved values are never kept on these objects. The one thing cached is the
OAuth2 access token, until it expires.
"""

from __future__ import annotations

import asyncio
import base64
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx

from tenant_runtime.connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    ErrorClass,
    classify_status,
)
from tenant_runtime.connectors.retry import parse_retry_after
from tenant_runtime.secrets import SCHEME, SecretCache

__all__ = [
    "ApiKeyAuth",
    "AuthContext",
    "BasicAuth",
    "BearerAuth",
    "ConnectorAuth",
    "Credentials",
    "NoAuth",
    "OAuth2ClientCredentials",
    "excerpt",
]

EXCERPT_LENGTH = 200
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")


def _show(value: str) -> str:
    """A credential field for a repr: references as they are, literals hidden."""
    return value if value.startswith(SCHEME) else "<literal>"


def excerpt(text: str, sensitive: tuple[str, ...], limit: int = EXCERPT_LENGTH) -> str:
    """A short, single-line prefix of ``text`` with every ``sensitive`` value masked."""
    # Mask before cutting, so a credential straddling the cut cannot leak its first half.
    for value in sorted(sensitive, key=len, reverse=True):
        if value:
            text = text.replace(value, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class AuthContext:
    """What an auth method may use while authorizing one request."""

    secrets: SecretCache
    operation: str
    timeout: httpx.Timeout
    transport: httpx.AsyncBaseTransport | None = None
    clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True, repr=False)
class Credentials:
    """Headers for one request, and the values that must never appear in an error."""

    headers: dict[str, str]
    sensitive: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Credentials(headers={sorted(self.headers)})"


class ConnectorAuth(Protocol):
    async def credentials(self, ctx: AuthContext) -> Credentials: ...

    def invalidate(self) -> bool:
        """Drop cached credentials after the server refused them; True if anything was
        dropped (so one immediate retry can help)."""
        ...


async def _resolve(ctx: AuthContext, field_name: str, value: str) -> str:
    resolved = await ctx.secrets.resolve(value)
    if not isinstance(resolved, str) or not resolved:
        raise ConnectorConfigError(f"credential {field_name!r} resolved to no value")
    if any(c in resolved for c in _FORBIDDEN_IN_HEADERS):
        raise ConnectorConfigError(f"credential {field_name!r} contains a line break")
    return resolved


@dataclass(frozen=True)
class NoAuth:
    async def credentials(self, ctx: AuthContext) -> Credentials:
        return Credentials({})

    def invalidate(self) -> bool:
        return False


@dataclass(frozen=True)
class BearerAuth:
    """``Authorization: Bearer <token>``."""

    token: str

    def __repr__(self) -> str:
        return f"BearerAuth(token={_show(self.token)!r})"

    async def credentials(self, ctx: AuthContext) -> Credentials:
        token = await _resolve(ctx, "token", self.token)
        return Credentials({"Authorization": f"Bearer {token}"}, (token,))

    def invalidate(self) -> bool:
        return False


@dataclass(frozen=True)
class BasicAuth:
    """``Authorization: Basic base64(username:password)`` (RFC 7617, UTF-8)."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password={_show(self.password)!r})"

    async def credentials(self, ctx: AuthContext) -> Credentials:
        username = await _resolve(ctx, "username", self.username)
        password = await _resolve(ctx, "password", self.password)
        if ":" in username:
            raise ConnectorConfigError("credential 'username' must not contain ':'")
        encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return Credentials({"Authorization": f"Basic {encoded}"}, (password, encoded))

    def invalidate(self) -> bool:
        return False


@dataclass(frozen=True)
class ApiKeyAuth:
    """The key in a header of the connector's choosing (``X-API-Key`` unless told)."""

    key: str
    header: str = "X-API-Key"

    def __post_init__(self) -> None:
        if (
            not self.header
            or not self.header.isascii()
            or any(c in self.header for c in ' :\t"(),/;<=>?@[\\]{}\r\n')
        ):
            raise ConnectorConfigError("API key header name is not a valid HTTP header name")
        if self.header.lower() in {"idempotency-key", "content-type", "content-length", "host"}:
            raise ConnectorConfigError(f"API key header may not be {self.header!r}")

    def __repr__(self) -> str:
        return f"ApiKeyAuth(key={_show(self.key)!r}, header={self.header!r})"

    async def credentials(self, ctx: AuthContext) -> Credentials:
        key = await _resolve(ctx, "key", self.key)
        return Credentials({self.header: key}, (key,))

    def invalidate(self) -> bool:
        return False


def _oauth2_client_class() -> Any:
    """authlib's httpx integration. Without the ``httpx2`` package it runs on httpx and warns
    that this is deprecated; httpx is what StoreOps uses (and passes transports for), so that
    one warning is silenced here rather than in every log."""
    import authlib.deprecate  # noqa: F401  (installs authlib's own filter first)

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The httpx module is deprecated")
        from authlib.integrations.httpx_client import AsyncOAuth2Client
    return AsyncOAuth2Client


class _Borrowed(httpx.AsyncBaseTransport):
    """Lends the connector's transport to the token client without letting it close it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None


@dataclass
class _Token:
    access_token: str = field(repr=False)
    expires_at: float | None  # on the context's clock; None: no expiry given


class OAuth2ClientCredentials:
    """OAuth2 client credentials grant through authlib's ``AsyncOAuth2Client``.

    The access token is cached and reused until ``leeway`` seconds before it expires (by
    ``expires_in``), then fetched anew; a 401 from the API drops it early. The client id
    and secret are resolved for each token request and held only by the short-lived
    token client. Concurrent calls share one token request.
    """

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        leeway: float = 30.0,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        url = httpx.URL(token_endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConnectorConfigError("token_endpoint must be an http(s) URL")
        if auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ConnectorConfigError(f"unsupported token endpoint auth method {auth_method!r}")
        self.token_endpoint = token_endpoint
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.auth_method = auth_method
        self.leeway = leeway
        #: Further token request parameters (``audience``, ``resource``...), not secrets.
        self.extra = dict(extra or {})
        self._token: _Token | None = None
        self._lock = asyncio.Lock()
        #: How many tokens were fetched (for metrics and tests).
        self.fetches = 0

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_endpoint={self.token_endpoint!r}, "
            f"client_id={_show(self.client_id)!r}, client_secret={_show(self.client_secret)!r})"
        )

    def _valid(self, token: _Token | None, now: float) -> bool:
        return token is not None and (token.expires_at is None or now < token.expires_at)

    async def credentials(self, ctx: AuthContext) -> Credentials:
        token = self._token
        if not self._valid(token, ctx.clock()):
            async with self._lock:
                token = self._token
                if not self._valid(token, ctx.clock()):
                    token = self._token = await self._fetch(ctx)
        assert token is not None
        return Credentials({"Authorization": f"Bearer {token.access_token}"}, (token.access_token,))

    def invalidate(self) -> bool:
        dropped, self._token = self._token is not None, None
        return dropped

    async def _fetch(self, ctx: AuthContext) -> _Token:
        client_id = await _resolve(ctx, "client_id", self.client_id)
        client_secret = await _resolve(ctx, "client_secret", self.client_secret)
        # authlib's client_secret_basic header is base64("id:secret") in Latin-1.
        basic = f"{client_id}:{client_secret}".encode("latin-1", "replace")
        sensitive = (
            client_secret,
            quote(client_secret, safe=""),
            base64.b64encode(basic).decode("ascii"),
        )

        def check_response(response: httpx.Response) -> httpx.Response:
            if response.is_success:
                return response
            error_class = classify_status(response.status_code)
            code = ""
            try:
                body = response.json()
                if isinstance(body, dict) and isinstance(body.get("error"), str):
                    code = f" ({excerpt(body['error'], sensitive, 60)})"
            except ValueError:
                pass
            raise ConnectorError(
                error_class,
                f"token endpoint answered {response.status_code}{code}",
                operation=ctx.operation,
                status=response.status_code,
                body_excerpt=excerpt(response.text, sensitive),
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )

        transport = _Borrowed(ctx.transport) if ctx.transport is not None else None
        client_class = _oauth2_client_class()
        client = client_class(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method=self.auth_method,
            scope=self.scope,
            token_endpoint=self.token_endpoint,
            grant_type="client_credentials",
            timeout=ctx.timeout,
            transport=transport,
            follow_redirects=False,
        )
        client.register_compliance_hook("access_token_response", check_response)
        started = ctx.clock()
        try:
            async with client:
                token = await client.fetch_token(
                    self.token_endpoint, grant_type="client_credentials", **self.extra
                )
        except ConnectorError:
            raise
        except httpx.TimeoutException:
            raise ConnectorError(
                ErrorClass.TIMEOUT, "token endpoint timed out", operation=ctx.operation
            ) from None
        except httpx.TransportError as exc:
            raise ConnectorError(
                ErrorClass.CONNECTION,
                f"token endpoint unreachable ({type(exc).__name__})",
                operation=ctx.operation,
            ) from None
        except Exception as exc:  # authlib's OAuthError, a 2xx that is no token...
            error = getattr(exc, "error", None) or type(exc).__name__
            raise ConnectorError(
                ErrorClass.RESPONSE,
                f"token endpoint refused the grant ({excerpt(str(error), sensitive, 60)})",
                operation=ctx.operation,
            ) from None
        self.fetches += 1
        access_token = token.get("access_token")
        token_type = str(token.get("token_type") or "bearer")
        if not isinstance(access_token, str) or not access_token:
            raise ConnectorError(
                ErrorClass.RESPONSE, "token endpoint sent no access_token", operation=ctx.operation
            )
        if token_type.lower() != "bearer":
            raise ConnectorError(
                ErrorClass.RESPONSE,
                f"token endpoint sent an unsupported token_type {token_type[:20]!r}",
                operation=ctx.operation,
            )
        if any(c in access_token for c in _FORBIDDEN_IN_HEADERS):
            raise ConnectorError(
                ErrorClass.RESPONSE,
                "token endpoint sent a malformed token",
                operation=ctx.operation,
            )
        expires_in = token.get("expires_in")
        expires_at: float | None = None
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            lifetime = float(expires_in)
            # Refresh ``leeway`` early, but never use less than half a short token's life.
            expires_at = started + max(lifetime - self.leeway, lifetime / 2)
        return _Token(access_token=access_token, expires_at=expires_at)
