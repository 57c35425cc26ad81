"""``create_app()``: the control-plane Litestar application."""

from __future__ import annotations

import asyncio

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from redis.asyncio import Redis

from control_plane import jobs, observability
from control_plane.alerts.routes import (
    AlertController,
    AlertRuleController,
    list_tenant_alert_rules,
)
from control_plane.alerts.routes_config import (
    MaintenanceWindowController,
    NotificationChannelController,
    SilenceController,
)
from control_plane.api.auth import PUBLIC_PATHS, BearerAuthMiddleware, provide_ctx
from control_plane.api.idempotency import IdempotencyMiddleware
from control_plane.api.requests import RequestIdMiddleware, configure_logging
from control_plane.api.system import healthz, readyz
from control_plane.audit.routes import list_audit
from control_plane.billing.routes import ROUTES as BILLING_ROUTES
from control_plane.branding.routes import ROUTES as BRANDING_ROUTES
from control_plane.catalog.routes import CatalogController
from control_plane.config import Settings, get_settings
from control_plane.db import Database
from control_plane.deployments.routes import DeploymentController
from control_plane.errors import EXCEPTION_HANDLERS
from control_plane.health.noc_routes import ROUTES as NOC_API_ROUTES
from control_plane.health.routes import get_tenant_health
from control_plane.identity.keys import KeyRing
from control_plane.identity.routes import ClientController, UserController, jwks, login, oauth_token
from control_plane.identity.tokens import TokenService
from control_plane.insights.routes import ROUTES as INSIGHT_ROUTES
from control_plane.reports.routes import get_sla_report
from control_plane.rollouts.routes import RolloutController
from control_plane.runtimelink.routes import ROUTES as RUNTIME_LINK_ROUTES
from control_plane.secrets.factory import make_store
from control_plane.secrets.routes import (
    PartnerSecretController,
    TenantSecretController,
    issue_runtime_access,
    provide_secret_store,
    resolve_secret,
)
from control_plane.telemetry.routes import TelemetryController, ingest_telemetry
from control_plane.tenancy.routes import PartnerController, TenantController
from control_plane.web import web_handlers


class MetricsController(PrometheusController):
    path = "/metrics"
    openmetrics_format = False


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    observability.setup()  # OTEL_* variables; nothing is installed when none is set
    db = Database(settings)
    keyring = KeyRing(db)
    tokens = TokenService(settings, keyring)

    # Redis connects lazily, on first use.
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None

    stop_jobs = asyncio.Event()
    background: list[asyncio.Task[None]] = []

    async def startup() -> None:
        if settings.runs_jobs_inline:
            background.append(asyncio.create_task(jobs.loop(db, stop_jobs)))

    async def shutdown() -> None:
        stop_jobs.set()
        await asyncio.gather(*background, return_exceptions=True)
        if redis is not None:
            await redis.aclose()
        await db.dispose()

    prometheus = PrometheusConfig(
        app_name="storeops_control_plane", group_path=True, exclude=["/metrics"]
    )
    return Litestar(
        route_handlers=[
            healthz,
            readyz,
            MetricsController,
            oauth_token,
            login,
            jwks,
            list_audit,
            PartnerController,
            TenantController,
            UserController,
            ClientController,
            CatalogController,
            TenantSecretController,
            PartnerSecretController,
            issue_runtime_access,
            resolve_secret,
            DeploymentController,
            *RUNTIME_LINK_ROUTES,
            ingest_telemetry,
            TelemetryController,
            *INSIGHT_ROUTES,
            get_tenant_health,
            AlertController,
            AlertRuleController,
            SilenceController,
            MaintenanceWindowController,
            NotificationChannelController,
            list_tenant_alert_rules,
            *BRANDING_ROUTES,
            get_sla_report,
            RolloutController,
            *NOC_API_ROUTES,
            *BILLING_ROUTES,
            *web_handlers(),
        ],
        dependencies={
            "ctx": Provide(provide_ctx),
            "store": Provide(provide_secret_store, sync_to_thread=False),
        },
        middleware=[
            *observability.middleware(),
            RequestIdMiddleware,
            prometheus.middleware,
            DefineMiddleware(BearerAuthMiddleware, exclude=PUBLIC_PATHS),
            IdempotencyMiddleware,
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
                }
            ),
            security=[{"bearer": []}],
            title="StoreOps control plane",
            version="1.0.0",
            path="/schema",
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin()],
        ),
        request_max_body_size=settings.max_body_bytes,
        on_startup=[startup],
        on_shutdown=[shutdown],
        state=State(
            {
                "settings": settings,
                "db": db,
                "tokens": tokens,
                "redis": redis,
                "secrets": make_store(settings),
            }
        ),
        debug=False,
    )
