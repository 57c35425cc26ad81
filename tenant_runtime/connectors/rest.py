"""A generic REST connector: one JSON ``POST`` per operation, authenticated, idempotent,
retried with backoff.

``call(operation, payload, idempotency_key=...)`` posts ``payload`` as JSON to
``{base_url}/{path}``, where ``path`` is the operation's template (``{operation}`` unless
``paths`` says otherwise; ``{name}`` placeholders take top-level payload values,
URL-encoded). Every attempt carries the same ``Idempotency-Key`` — the engine derives it from
run, step and call, so a retried POST is safe — and freshly resolved credentials.

Retries follow the :class:`RetryPolicy`: the classes in its ``retry_on`` (by default
timeouts, connection errors, 5xx and 429) are retried with jittered exponential backoff or
after ``Retry-After``; any other 4xx fails at once. What finally fails raises
:class:`ConnectorError`, classified for the step's ``retry_on`` list; its message holds the
status and a short body excerpt with the credentials of the request masked.

Each call is one client span (method, URL template, host, operation, final status; never a
credential, a payload or a response body) and every attempt carries the W3C ``traceparent``
and ``tracestate`` headers, so the retailer's side can join the run's trace.
"""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from tenant_runtime import tracing
from tenant_runtime.connectors.auth import (
    AuthContext,
    ConnectorAuth,
    Credentials,
    NoAuth,
    OAuth2ClientCredentials,
    excerpt,
)
from tenant_runtime.connectors.errors import (
    ConnectorConfigError,
    ConnectorError,
    ErrorClass,
    classify_status,
)
from tenant_runtime.connectors.retry import RetryPolicy, parse_retry_after
from tenant_runtime.secrets import SecretCache

__all__ = ["IDEMPOTENCY_HEADER", "RestConnector"]

IDEMPOTENCY_HEADER = "Idempotency-Key"
_USER_AGENT = "StoreOps-Runtime"
_json_encoder = msgspec.json.Encoder()

Sleep = Callable[[float], Awaitable[None]]


def _template_fields(template: str) -> list[str]:
    fields: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise ConnectorConfigError(f"path template {template!r} is malformed") from None
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ConnectorConfigError(
                f"path template {template!r}: placeholders are plain names, like {{order_id}}"
            )
        fields.append(name)
    return fields


class RestConnector:
    """One retailer endpoint. ``auth`` is :class:`BearerAuth`, :class:`BasicAuth`,
    :class:`ApiKeyAuth`, :class:`OAuth2ClientCredentials` or :class:`NoAuth` (``None``).

    ``timeout`` bounds each attempt (seconds or an ``httpx.Timeout``). ``transport``
    replaces the network (tests pass ``httpx.MockTransport``); it serves the token endpoint
    too. ``sleep``, ``uniform`` (jitter) and ``clock`` (monotonic, for token expiry) and
    ``now`` (wall time, for ``Retry-After`` dates) are injectable.
    """

    def __init__(
        self,
        base_url: str,
        auth: ConnectorAuth | None,
        *,
        timeout: float | httpx.Timeout,
        retry: RetryPolicy,
        secrets: SecretCache,
        transport: httpx.AsyncBaseTransport | None = None,
        paths: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Sleep = asyncio.sleep,
        uniform: Callable[[float, float], float] = random.uniform,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConnectorConfigError("base_url must be an http(s) URL")
        if url.userinfo or url.query or url.fragment:
            raise ConnectorConfigError("base_url may not carry credentials, a query or a fragment")
        self.base_url = str(url).rstrip("/")
        self._host = url.host
        self.auth: ConnectorAuth = auth if auth is not None else NoAuth()
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.retry = retry
        self.secrets = secrets
        self.transport = transport
        self.paths = dict(paths or {})
        for template in self.paths.values():
            _template_fields(template)
        self.headers = dict(headers or {})
        self.sleep = sleep
        self.uniform = uniform
        self.clock = clock
        self.now = now
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"RestConnector({self.base_url!r}, {self.auth!r})"

    # --- lifecycle -------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self.transport,
                timeout=self.timeout,
                follow_redirects=False,
                headers={"User-Agent": _USER_AGENT},
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> RestConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- requests --------------------------------------------------------------------

    def url_for(self, operation: str, payload: Mapping[str, Any]) -> str:
        template = self.paths.get(operation, "{operation}")
        values: dict[str, str] = {}
        for name in _template_fields(template):
            if name == "operation":
                raw: Any = operation
            elif name in payload:
                raw = payload[name]
            else:
                raise ConnectorConfigError(
                    f"{operation}: the path needs {name!r}, which the payload lacks"
                )
            if isinstance(raw, bool) or raw is None or isinstance(raw, dict | list):
                raise ConnectorConfigError(f"{operation}: {name!r} cannot go in a path")
            text = str(raw)
            if text in ("", ".", ".."):
                raise ConnectorConfigError(f"{operation}: {name!r} is not a path segment")
            values[name] = quote(text, safe="")
        return f"{self.base_url}/{template.format_map(values).lstrip('/')}"

    async def call(
        self, operation: str, payload: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """POST ``payload`` for ``operation``; the decoded JSON object answered (``{}`` for
        an empty body, ``{"result": value}`` for JSON that is not an object)."""
        if (
            not (idempotency_key.isascii() and idempotency_key.isprintable())
            or not 0 < len(idempotency_key) <= 255
        ):
            raise ConnectorConfigError("idempotency_key must be 1-255 printable ASCII characters")
        url = self.url_for(operation, payload)
        body = _json_encoder.encode(payload)
        template = self.paths.get(operation, "{operation}").replace("{operation}", operation)
        attributes = {
            "http.request.method": "POST",
            "url.template": f"{self.base_url}/{template.lstrip('/')}",
            "server.address": self._host,
            "storeops.connector.operation": operation,
        }
        began = time.monotonic()
        outcome = "error"
        try:
            if not tracing.active():
                result = await self._call(operation, url, body, idempotency_key)
            else:
                # Errors are recorded by class only: their messages may quote a response body.
                with tracing.tracer.start_as_current_span(
                    f"POST {operation}",
                    kind=SpanKind.CLIENT,
                    attributes=attributes,
                    record_exception=False,
                    set_status_on_exception=False,
                ) as span:
                    try:
                        result = await self._call(operation, url, body, idempotency_key)
                    except ConnectorError as exc:
                        if exc.status is not None:
                            span.set_attribute("http.response.status_code", exc.status)
                        if exc.attempts > 1:
                            span.set_attribute("http.request.resend_count", exc.attempts - 1)
                        span.set_attribute("error.type", exc.error_class.value)
                        span.set_status(Status(StatusCode.ERROR, exc.error_class.value))
                        raise
                    except BaseException as exc:
                        span.set_attribute("error.type", type(exc).__name__)
                        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                        raise
            outcome = "ok"
            return result
        except ConnectorError as exc:
            outcome = exc.error_class.value
            raise
        finally:
            tracing.connector_duration.record(
                time.monotonic() - began,
                {
                    "server.address": attributes["server.address"],
                    "storeops.connector.operation": operation,
                    "outcome": outcome,
                },
            )

    async def _call(
        self, operation: str, url: str, body: bytes, idempotency_key: str
    ) -> dict[str, Any]:
        ctx = AuthContext(
            secrets=self.secrets,
            operation=operation,
            timeout=self.timeout,
            transport=self.transport,
            clock=self.clock,
        )
        attempt = 0
        reauthorized = False
        while True:
            attempt += 1
            try:
                response, credentials = await self._attempt(ctx, url, body, idempotency_key)
            except ConnectorError as exc:
                error = exc
            else:
                if (
                    response.status_code == 401
                    and not reauthorized
                    and isinstance(self.auth, OAuth2ClientCredentials)
                    and self.auth.invalidate()
                ):
                    # A token revoked before its expiry: fetch a new one, once, at no cost.
                    reauthorized = True
                    attempt -= 1
                    continue
                if response.is_success:
                    self._traced_attempt(response, attempt)
                    return self._decode(operation, response, credentials)
                error = self._http_error(operation, response, credentials)
            if error.error_class not in self.retry.retry_on or attempt >= self.retry.attempts:
                raise error.with_attempts(attempt)
            if error.retry_after is not None:
                if error.retry_after > self.retry.max:
                    raise error.with_attempts(attempt)
                delay = error.retry_after
            else:
                delay = self.retry.delay(attempt, self.uniform)
            await self.sleep(delay)

    async def _attempt(
        self, ctx: AuthContext, url: str, body: bytes, idempotency_key: str
    ) -> tuple[httpx.Response, Credentials]:
        credentials = await self.auth.credentials(ctx)
        headers = {
            **self.headers,
            **credentials.headers,
            "Content-Type": "application/json",
            "Accept": "application/json",
            IDEMPOTENCY_HEADER: idempotency_key,
        }
        tracing.inject(headers)
        try:
            response = await self._http().post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ConnectorError(
                ErrorClass.TIMEOUT, f"timed out ({type(exc).__name__})", operation=ctx.operation
            ) from None
        except httpx.UnsupportedProtocol:
            raise ConnectorConfigError("base_url has an unsupported scheme") from None
        except httpx.TransportError as exc:
            raise ConnectorError(
                ErrorClass.CONNECTION,
                f"connection failed ({type(exc).__name__})",
                operation=ctx.operation,
            ) from None
        return response, credentials

    @staticmethod
    def _traced_attempt(response: httpx.Response, attempt: int) -> None:
        if tracing.active():
            span = trace.get_current_span()
            span.set_attribute("http.response.status_code", response.status_code)
            if attempt > 1:
                span.set_attribute("http.request.resend_count", attempt - 1)

    def _http_error(
        self, operation: str, response: httpx.Response, credentials: Credentials
    ) -> ConnectorError:
        status = response.status_code
        error_class = classify_status(status)
        retry_after = None
        if error_class in (ErrorClass.RATE_LIMITED, ErrorClass.SERVER, ErrorClass.CONFLICT):
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self.now)
        return ConnectorError(
            error_class,
            f"answered {status}",
            operation=operation,
            status=status,
            body_excerpt=excerpt(response.text, credentials.sensitive),
            retry_after=retry_after,
        )

    def _decode(
        self, operation: str, response: httpx.Response, credentials: Credentials
    ) -> dict[str, Any]:
        if response.status_code == 204 or not response.content.strip():
            return {}
        try:
            value = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise ConnectorError(
                ErrorClass.RESPONSE,
                f"answered {response.status_code} with a body that is not JSON",
                operation=operation,
                status=response.status_code,
                body_excerpt=excerpt(response.text, credentials.sensitive),
            ) from None
        if isinstance(value, dict):
            return value
        return {"result": value}
