"""The runtime agent: follows the control plane's desired state and reports what it applied.

It long-polls ``GET /runtime/v1/desired-state`` with the ETag it holds, and on a change
reconciles the runtime's directory in place: new runs take the deployed version; runs in
flight finish on the version they started with (they are pinned to their template's
content hash). The brand it carries is what the portal and emails show from then on.
Each deployment is checked before it is taken — its content hash, its spec,
its connector bindings — and reported applied or failed with the reason, to the control
plane (``PUT /runtime/v1/deployment-status``) and as telemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from control_plane.contracts import desired_state as ds
from control_plane.contracts import dsl
from control_plane.contracts.triage import TriageSettings
from tenant_runtime.engine.directory import Deployment, StoreInfo
from tenant_runtime.link import LinkError

if TYPE_CHECKING:
    from tenant_runtime.runtime import Runtime

log = logging.getLogger(__name__)

#: Seconds a desired-state request waits for a change before the control plane says 304.
LONG_POLL = 30


@dataclass
class Applied:
    generation: int
    reports: list[ds.DeploymentReport]


def reconcile(runtime: Runtime, doc: ds.DesiredState) -> Applied:
    """Take what can be taken from ``doc`` into the runtime; report every deployment."""
    reports: list[ds.DeploymentReport] = []
    deployments: dict[str, Deployment] = {}
    bindings: dict[str, Any] = {}
    for entry in doc.deployments:
        reason = _problem(entry, bindings)
        if reason is None:
            template = dsl.parse(entry.spec)
            if entry.status == "active":
                deployments[entry.template_id] = Deployment(template, dict(entry.params))
            for name, binding in entry.bindings.items():
                bindings[name] = binding
        reports.append(
            ds.DeploymentReport(
                id=entry.id,
                status="failed" if reason else "applied",
                content_hash=entry.content_hash,
                reason=reason,
            )
        )
    stores = {
        store_id: StoreInfo.from_settings(store_id, msgspec.to_builtins(entry))
        for store_id, entry in doc.stores.items()
    }
    directory = runtime.directory
    directory.deployments = deployments
    directory.stores = stores
    runtime.rebind(bindings)
    runtime.brand = doc.brand
    directory.triage = doc.triage or TriageSettings()
    runtime.pulled = True
    return Applied(doc.generation, reports)


def _problem(entry: ds.DeploymentEntry, bindings: dict[str, Any]) -> str | None:
    """Why a deployment cannot be taken, or None."""
    expected = ds.deployment_hash(
        template_id=entry.template_id,
        version=entry.version,
        spec=entry.spec,
        params=entry.params,
        bindings=entry.bindings,
        triggers=entry.triggers,
        status=entry.status,
    )
    if expected != entry.content_hash:
        return "content hash does not match the deployment's content"
    try:
        template = dsl.parse(entry.spec)
    except msgspec.ValidationError as exc:
        return f"the template spec does not parse: {exc}"
    if (template.id, template.version) != (entry.template_id, entry.version):
        return (
            f"the spec is {template.id} {template.version}, not {entry.template_id} {entry.version}"
        )
    for name in template.connectors:
        binding = entry.bindings.get(name)
        if not isinstance(binding, dict) or not binding.get("base_url"):
            return f"connector {name!r} has no binding"
        other = bindings.get(name)
        if other is not None and other != binding:
            return f"connector {name!r} is bound differently by another deployment"
    return None


class Agent:
    """Follows the desired state for one runtime process."""

    def __init__(self, runtime: Runtime) -> None:
        if runtime.link is None:
            raise ValueError("the agent needs the control plane's URL")
        self.runtime = runtime
        self.link = runtime.link
        self.etag: str | None = None
        self.generation: int | None = None
        self.failures = 0

    async def poll_once(self, wait: int = LONG_POLL) -> bool:
        """One (long-)poll; True when a new desired state was applied."""
        headers = {"If-None-Match": self.etag} if self.etag else {}
        answer = await self.link.call(
            "GET",
            "/runtime/v1/desired-state",
            params={"wait": wait} if self.etag else {},
            headers=headers,
            timeout=wait + 15,
        )
        if answer.status_code == 304:
            return False
        if answer.status_code != 200:
            raise LinkError(f"desired state refused ({answer.status_code})")
        try:
            doc = msgspec.json.decode(answer.content, type=ds.DesiredState)
        except msgspec.ValidationError as exc:
            raise LinkError(f"the desired state does not decode: {exc}") from None
        if str(doc.tenant_id) != str(self.runtime.settings.tenant_id):
            raise LinkError(f"desired state for tenant {doc.tenant_id}, not this runtime's")
        applied = reconcile(self.runtime, doc)
        self.etag = answer.headers.get("etag")
        self.generation = applied.generation
        await self._report(applied)
        return True

    async def _report(self, applied: Applied) -> None:
        report = ds.StatusReport(
            generation=applied.generation,
            deployments=applied.reports,
            tenant_id=self.runtime.settings.tenant_id,
        )
        answer = await self.link.call(
            "PUT",
            "/runtime/v1/deployment-status",
            content=msgspec.json.encode(report),
            headers={"Content-Type": "application/json"},
        )
        if answer.status_code >= 300:
            log.warning("deployment status not accepted (%s)", answer.status_code)
        await self.runtime.engine.report(
            "deployment.status",
            [
                {"status": r.status, "data": {"deployment_id": str(r.id), "reason": r.reason}}
                for r in applied.reports
            ],
            generation=applied.generation,
        )

    async def follow(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; back off while the control plane is unreachable."""
        while not stop.is_set():
            try:
                await self.poll_once()
                self.failures = 0
            except LinkError as exc:
                self.failures += 1
                delay = min(2.0 ** min(self.failures, 6), 60.0)
                log.warning("desired state not fetched (%s); again in %.0fs", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
