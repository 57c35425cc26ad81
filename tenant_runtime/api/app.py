"""``create_runtime_app()``: the tenant runtime's Litestar application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import httpx
from litestar import Litestar
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from tenant_runtime import tracing
from tenant_runtime.api.auth import PUBLIC_PATHS, BearerAuthMiddleware, TokenVerifier
from tenant_runtime.api.brand import brand_css, brand_image
from tenant_runtime.api.hooks import WebhookSources, receive_webhook
from tenant_runtime.api.portal import STATIC, TEMPLATES, portal, portal_login, portal_run
from tenant_runtime.api.ports import RuntimePort
from tenant_runtime.api.problems import EXCEPTION_HANDLERS
from tenant_runtime.api.requests import RequestIdMiddleware, UsageMiddleware
from tenant_runtime.api.routes import (
    AiDecisionController,
    DeadLetterController,
    InsightController,
    RunController,
    TaskController,
    TriageExampleController,
)
from tenant_runtime.api.system import healthz, readyz
from tenant_runtime.secrets import SecretCache

log = logging.getLogger("storeops.runtime.api")

MAX_BODY_BYTES = 1024 * 1024
JWKS_PATH = "/.well-known/jwks.json"
DEFAULT_AUDIENCE = "storeops-api"
STOP_SECONDS = 10.0


class MetricsController(PrometheusController):
    path = "/metrics"
    openmetrics_format = False


def _tracing_middleware() -> list[Any]:
    """A server span and HTTP metrics per request (W3C context taken from the caller's
    headers), when exported: an uninstrumented runtime pays nothing per request. Litestar starts the span
    before routing; :func:`name_span_by_route` names it by route once routed."""
    if not tracing.instrumented():
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig

    config = OpenTelemetryConfig(
        exclude=["/metrics", "/healthz", "/readyz", "/portal/static", "/portal/brand"],
        exclude_spans=["receive", "send"],
        scope_span_details_extractor=tracing.span_before_routing,
    )
    return [config.middleware, tracing.name_span_by_route]


def _background(
    runtime: RuntimePort,
) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    """Embedded mode: the runtime's in-process pump runs beside the API for its lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(runtime.background(stop))
        try:
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(task, timeout=STOP_SECONDS)
            except TimeoutError:
                log.warning("the in-process pump did not stop within %s s", STOP_SECONDS)

    return lifespan


def create_runtime_app(
    runtime: RuntimePort,
    *,
    webhook_secrets: Mapping[str, Sequence[str]] | None = None,
    jwks: dict[str, Any] | None = None,
    control_plane_url: str | None = None,
    issuer: str | None = None,
    audience: str = DEFAULT_AUDIENCE,
    secrets: SecretCache | None = None,
    http: httpx.AsyncClient | None = None,
    brand_name: str = "StoreOps",
    background: bool | None = None,
) -> Litestar:
    """The runtime's API, webhooks and portal.

    Unset arguments come from the runtime's settings. Tokens are checked against ``jwks``
    when given and against ``{control_plane_url}/.well-known/jwks.json`` (fetched, and
    refetched on an unknown key id); the issuer is the control plane's URL unless
    ``issuer`` says otherwise. ``webhook_secrets`` maps a source (erp, pos...) to the
    secrets it signs with: ``whsec_`` values, or ``secret://name`` resolved through the
    runtime's secret cache. ``background`` (default: embedded mode, no Redis) runs the
    runtime's in-process pump for the app's lifetime. ``brand_name`` names the portal
    only until the runtime holds a brand from its desired state.
    """
    settings = runtime.settings
    url = settings.control_plane_url if control_plane_url is None else control_plane_url
    base = url.rstrip("/") if url else None
    hooks = settings.webhook_secrets if webhook_secrets is None else webhook_secrets
    # Embedded mode pumps steps in-process; any runtime with a link home follows its
    # desired state: both run in the background for the app's lifetime.
    embedded = (
        (not settings.redis_url or bool(settings.control_plane_url))
        if background is None
        else background
    )
    token_issuer = issuer or base
    if token_issuer is None:
        raise ValueError("the runtime needs the control plane's URL (or an issuer) to check tokens")
    verifier = TokenVerifier(
        issuer=token_issuer,
        audience=audience,
        tenant_id=settings.tenant_id,
        jwks=jwks,
        jwks_url=f"{base}{JWKS_PATH}" if base else None,
        http=http,
    )
    prometheus = PrometheusConfig(
        app_name="storeops_tenant_runtime", group_path=True, exclude=["/metrics"]
    )
    return Litestar(
        route_handlers=[
            healthz,
            readyz,
            MetricsController,
            RunController,
            TaskController,
            DeadLetterController,
            AiDecisionController,
            TriageExampleController,
            InsightController,
            receive_webhook,
            portal,
            portal_run,
            portal_login,
            brand_css,
            brand_image,
            create_static_files_router(
                path="/portal/static", directories=[STATIC], name="portal-static"
            ),
        ],
        middleware=[
            *_tracing_middleware(),
            RequestIdMiddleware,
            DefineMiddleware(UsageMiddleware, counter=runtime.usage),
            prometheus.middleware,
            DefineMiddleware(BearerAuthMiddleware, exclude=PUBLIC_PATHS),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
            security=[{"bearer": []}],
            title="StoreOps tenant runtime",
            version="1.0.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
        ),
        lifespan=[_background(runtime)] if embedded else [],
        request_max_body_size=MAX_BODY_BYTES,
        state=State(
            {
                "runtime": runtime,
                "verifier": verifier,
                "webhook_sources": WebhookSources(hooks, secrets or runtime.secrets),
                "control_plane_url": base,
                "http": http,
                "brand_name": brand_name,
            }
        ),
        debug=False,
    )
