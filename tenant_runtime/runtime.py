"""One tenant's runtime assembled from its settings: database, directory (deployments and
stores), connectors with their secret provider, the engine, the brand its portal and
emails show, and the mailer. The API process, the worker and the embedded demo all build
it the same way."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import msgspec
from croniter import croniter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from control_plane.contracts import dsl
from control_plane.contracts.brand import DEFAULT, Brand
from control_plane.contracts.validate import lint
from tenant_runtime import __version__
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.connectors import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2ClientCredentials,
    RestConnector,
    RetryPolicy,
)
from tenant_runtime.connectors.auth import ConnectorAuth
from tenant_runtime.connectors.bindings import BoundConnectors
from tenant_runtime.engine import state
from tenant_runtime.engine.directory import Deployment, Directory, StoreInfo
from tenant_runtime.engine.executor import Connectors, Engine, UnknownTemplate
from tenant_runtime.link import ControlPlane, LinkError, TelemetrySender, credentials_file
from tenant_runtime.mailer import Mailer
from tenant_runtime.secrets import (
    BrokerProvider,
    SecretCache,
    SecretProvider,
    SecretUnavailable,
    VaultProvider,
)
from tenant_runtime.triage.patterns import raise_insights

log = logging.getLogger(__name__)

#: A schedule tick older than this when first seen is skipped, not fired late.
SCHEDULE_CATCH_UP = timedelta(minutes=10)


class _NoSecrets:
    async def get(self, name: str) -> str:
        raise SecretUnavailable(f"secret {name!r}: this runtime has no secret provider configured")


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def has_credentials(settings: RuntimeSettings) -> bool:
    return (
        bool(settings.client_id and settings.client_secret) or credentials_file(settings).is_file()
    )


def secret_provider(settings: RuntimeSettings, link: ControlPlane | None) -> SecretProvider:
    if settings.secrets_from == "broker":
        client = httpx.AsyncClient(base_url=settings.control_plane_url, timeout=10.0)
        if settings.runtime_token:  # a fixed token (tests, short-lived tools)
            return BrokerProvider(client, lambda: settings.runtime_token)
        if link is None:
            raise ValueError("the secret broker needs STOREOPS_RUNTIME_CONTROL_PLANE_URL")
        return BrokerProvider(client, link.token)  # the runtime's own, kept fresh
    if settings.secrets_from == "vault":
        return VaultProvider(
            settings.vault_addr,
            settings.tenant_id,
            settings.vault_role_id,
            settings.vault_wrapped_secret_id,
            mount=settings.vault_mount,
            prefix=settings.vault_prefix,
        )
    return _NoSecrets()


def connector_auth(spec: dict[str, Any] | None) -> ConnectorAuth:
    """``{"type": "bearer", "token": "secret://erp-token"}`` and the like."""
    spec = dict(spec or {})
    kind = spec.pop("type", "none")
    try:
        if kind == "none":
            return NoAuth()
        if kind == "bearer":
            return BearerAuth(spec["token"])
        if kind == "basic":
            return BasicAuth(spec["username"], spec["password"])
        if kind == "api_key":
            return ApiKeyAuth(spec["key"], spec.get("header", "X-API-Key"))
        if kind == "oauth2":
            return OAuth2ClientCredentials(
                spec["token_endpoint"],
                spec["client_id"],
                spec["client_secret"],
                scope=spec.get("scope"),
            )
    except KeyError as exc:
        raise ValueError(f"connector auth {kind!r} needs {exc.args[0]!r}") from None
    raise ValueError(
        f"connector auth type must be none, bearer, basic, api_key or oauth2, not {kind!r}"
    )


def bound_connectors(settings: RuntimeSettings, secrets: SecretCache) -> BoundConnectors:
    bound = {
        name: RestConnector(
            str(spec["base_url"]),
            connector_auth(spec.get("auth")),
            timeout=float(spec.get("timeout", 10.0)),
            retry=RetryPolicy(attempts=int(spec.get("attempts", 3)), initial=0.2, max=2.0),
            secrets=secrets,
            transport=httpx.AsyncHTTPTransport(retries=0),
        )
        for name, spec in settings.bindings.items()
    }
    return BoundConnectors(bound)


class SharedBindings:
    """The connector bindings every engine of a process uses; the agent replaces them."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.version = 0

    def update(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.version += 1


class LiveConnectors:
    """Connectors built from the current bindings, rebuilt (in the calling event loop, where
    their HTTP clients live) when the bindings change."""

    def __init__(
        self, settings: RuntimeSettings, secrets: SecretCache, shared: SharedBindings
    ) -> None:
        self.settings = settings
        self.secrets = secrets
        self.shared = shared
        self._version = -1
        self._bound: BoundConnectors | None = None

    async def call(
        self, connector: str, operation: str, payload: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        if self._bound is None or self._version != self.shared.version:
            settings = replace(self.settings, bindings=self.shared.spec)
            self._bound, self._version = (
                bound_connectors(settings, self.secrets),
                self.shared.version,
            )
        return await self._bound.call(
            connector, operation, payload, idempotency_key=idempotency_key
        )


def load_directory(settings: RuntimeSettings) -> Directory:
    """Deployments and stores from the desired-state file (empty without one), contacts
    from the settings."""
    if settings.desired_file is None:
        return Directory(contacts=dict(settings.contacts))
    try:
        desired = json.loads(settings.desired_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"desired state {settings.desired_file}: {exc}") from None
    deployments = {
        template_id: Deployment(
            load_template(settings.templates_dir, template_id, str(spec["version"])),
            dict(spec.get("params") or {}),
        )
        for template_id, spec in (desired.get("deployments") or {}).items()
    }
    stores = {
        store_id: StoreInfo.from_settings(store_id, data)
        for store_id, data in (desired.get("stores") or {}).items()
    }
    return Directory(deployments, stores, dict(settings.contacts))


def load_template(root: Path, template_id: str, version: str) -> dsl.Template:
    path = root / template_id / f"{version}.yaml"
    if not path.is_file():
        raise ValueError(f"template {template_id} {version}: no file {path}")
    template, problems = lint(path.read_text(), f"{template_id}/{version}.yaml")
    if template is None or problems:
        first = problems[0] if problems else "unreadable"
        raise ValueError(f"template {template_id} {version} does not lint: {first}")
    return template


class Runtime:
    def __init__(
        self,
        settings: RuntimeSettings,
        *,
        connectors: Connectors | None = None,
        directory: Directory | None = None,
        ring: Callable[[list[UUID]], None] | None = None,
        worker: str = "runtime",
        clock: Callable[[], datetime] | None = None,
        bindings: SharedBindings | None = None,
    ) -> None:
        self.settings = settings
        self.bindings = bindings or SharedBindings(dict(settings.bindings))
        self.directory = directory if directory is not None else load_directory(settings)
        self.db: AsyncEngine = create_async_engine(
            settings.database_url,
            # msgspec writes and reads the JSON columns (run input, outputs, the outbox)
            # several times faster than the standard library.
            json_serializer=_json_text,
            json_deserializer=msgspec.json.decode,
            **(
                {}
                if settings.database_url.startswith("sqlite")
                else {"pool_size": settings.worker_threads + 2}
            ),
        )
        self.link = ControlPlane(settings) if settings.control_plane_url else None
        self.secrets = SecretCache(secret_provider(settings, self.link))
        #: Usage meters this process counts in memory (API calls, webhooks), reported with
        #: each heartbeat; a crash loses at most one heartbeat's worth.
        self.usage: Counter[str] = Counter()
        self._started = time.monotonic()
        self._next_heartbeat = self._next_send = self._next_insights = 0.0
        #: A link home with credentials: the desired state (and the brand) will come.
        self.follows = self.link is not None and has_credentials(settings)
        self.sender = (
            TelemetrySender(self.db, settings, self.link.post_telemetry, name=worker)
            if self.link is not None and self.follows
            else None
        )
        self._wake = asyncio.Event()
        if ring is None:  # embedded: steps run in-process, woken as soon as they are rung

            def ring(step_row_ids: list[UUID]) -> None:
                self.engine.bells.extend(step_row_ids)
                self._wake.set()

        self.engine = Engine(
            self.db,
            connectors
            if connectors is not None
            else LiveConnectors(settings, self.secrets, self.bindings),
            directory=self.directory,
            worker=worker,
            lease=timedelta(seconds=settings.lease_seconds),
            ring=ring,
            clock=clock,
        )
        self.engine.follows_desired_state = self.link is not None
        #: The tenant's brand from its desired state; None until the first pull (or from a
        #: control plane that sends none): pages and emails then show the platform's.
        self.brand: Brand | None = None
        #: Whether a desired state from the control plane has been applied here.
        self.pulled = False
        self.mailer = Mailer(self.db, settings, self.directory, self.engine.clock)

    @property
    def deployments(self) -> dict[str, Deployment]:
        return self.directory.deployments

    @property
    def stores(self) -> dict[str, StoreInfo]:
        return self.directory.stores

    def rebind(self, bindings: dict[str, Any]) -> None:
        """Connect the engine to the endpoints the desired state binds (over the settings')."""
        self.bindings.update({**self.settings.bindings, **bindings})

    async def start(
        self,
        template_id: str,
        payload: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        store: str | None = None,
    ) -> UUID:
        deployment = self.directory.deployments.get(template_id)
        if deployment is None:
            known = ", ".join(sorted(self.directory.deployments)) or "none"
            raise UnknownTemplate(
                f"template {template_id!r} is not deployed here (deployed: {known})"
            )
        store = store or payload.get("store_id") or None
        return await self.engine.start(
            deployment.template,
            deployment.params,
            payload,
            idempotency_key=idempotency_key,
            store=str(store) if store else None,
        )

    async def fire_schedules(self) -> int:
        """Start one run per schedule tick: the tick's idempotency key makes a second
        worker's attempt at the same tick a no-op."""
        fired = 0
        now = self.engine.clock()
        for template_id, deployment in self.directory.deployments.items():
            for trigger in deployment.template.triggers:
                if not isinstance(trigger, dsl.ScheduleTrigger):
                    continue
                local = now.astimezone(ZoneInfo(trigger.timezone))
                tick = croniter(trigger.cron, local).get_prev(datetime).astimezone(UTC)
                if now - tick > SCHEDULE_CATCH_UP:
                    continue
                key = f"schedule:{template_id}:{tick.isoformat()}"
                async with self.db.connect() as conn:
                    if await state.run_by_key(conn, key):
                        continue
                try:
                    started = await self.engine.launch(
                        deployment.template,
                        deployment.params,
                        {"scheduled_for": tick.isoformat()},
                        idempotency_key=key,
                    )
                except IntegrityError:
                    continue  # another worker fired this tick at the same moment
                fired += started.created
        return fired

    async def maintain(self, *, ring_again_after: timedelta) -> int:
        """One round of the housekeeping every runtime does: ring for overdue steps, fire
        due timers, escalations and schedule ticks; a heartbeat and the telemetry home when
        they are due."""
        done = await self.engine.sweep(ring_again_after=ring_again_after)
        done += await self.engine.tick()
        done += await self.fire_schedules()
        now = time.monotonic()
        if now >= self._next_insights and (self.pulled or not self.follows):
            self._next_insights = now + self.settings.insight_seconds
            try:
                done += len(await raise_insights(self.engine, self.engine.triage.settings))
            except Exception:  # never let it stop the housekeeping; tried again tomorrow
                log.exception("the recurring-pattern pass failed")
        done += await self.send_mail()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.settings.heartbeat_seconds
            await self.engine.heartbeat(
                version=__version__,
                uptime_s=int(now - self._started),
                workers=self.settings.worker_threads,
                instance=self.engine.worker,
            )
            await self.flush_usage()
        if self.sender is not None and now >= self._next_send:
            try:
                await self.sender.drain()
                self.sender.failures = 0
                self._next_send = now + min(self.settings.sweep_seconds * 5, 5.0)
            except LinkError as exc:
                self.sender.failures += 1
                self._next_send = now + self.sender.backoff()
                log.warning("telemetry not sent (%s); retrying later", exc)
        return done

    async def send_mail(self) -> int:
        """Deliver the email notifications that are due, in the tenant's brand. A runtime
        that follows its desired state waits for its first pull, so no email goes out in
        the platform's look only because the worker just started."""
        if self.follows and not self.pulled:
            return 0
        return await self.mailer.deliver(self.brand or DEFAULT)

    async def flush_usage(self) -> None:
        """Report the usage counted since the last report (a ``usage`` event)."""
        if self.usage:
            counts = dict(self.usage)
            self.usage.clear()  # the same counter: the API's middleware keeps counting into it
            await self.engine.report("usage", [{"data": counts}], instance=self.engine.worker)

    async def background(self, stop: asyncio.Event | None = None) -> None:
        """Until ``stop``: follow the desired state (with a link home), and in embedded mode
        execute rung steps in-process and keep house."""
        stop = stop or asyncio.Event()
        following = None
        if self.link is not None and has_credentials(self.settings):
            from tenant_runtime.agent import Agent

            following = asyncio.create_task(Agent(self).follow(stop))
        try:
            if not self.settings.redis_url:
                await self._pump(stop)
            else:  # the worker keeps house; this process reports what it counts
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.heartbeat_seconds)
                    await self.flush_usage()
        finally:
            if following is not None:
                following.cancel()

    async def _pump(self, stop: asyncio.Event) -> None:
        ring_again = timedelta(seconds=max(self.settings.sweep_seconds * 5, 2.0))
        while not stop.is_set():
            await self.engine.pump()
            await self.maintain(ring_again_after=ring_again)
            await self.engine.pump()
            if self.engine.bells:
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, self._wake)]
            await asyncio.wait(
                waiters, timeout=self.settings.sweep_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in waiters:
                waiter.cancel()

    async def close(self) -> None:
        if self.link is not None:
            await self.link.close()
        await self.db.dispose()
