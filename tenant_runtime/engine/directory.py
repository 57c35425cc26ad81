"""What the engine knows about the tenant: deployed templates, stores and contacts.

Deployments say which template versions take new runs and with which parameters; stores
give a run's region (task scope) and its SLA calendar. The control plane's desired state
fills this in; until then the runtime's settings do. Contacts (from the settings) say who
holds a role where, so a task's email reaches a person.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from control_plane.contracts import dsl
from control_plane.contracts.triage import TriageSettings
from tenant_runtime.engine.calendar import BusinessCalendar


@dataclass(frozen=True)
class Deployment:
    template: dsl.Template
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoreInfo:
    id: str
    code: str = ""
    name: str = ""
    region: str | None = None
    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)

    @classmethod
    def from_settings(cls, store_id: str, data: Mapping[str, Any]) -> StoreInfo:
        region = data.get("region_id") or data.get("region")
        return cls(
            id=store_id,
            code=str(data.get("code", "")),
            name=str(data.get("name", "")),
            region=str(region) if region else None,
            calendar=BusinessCalendar.from_settings(
                {k: data[k] for k in ("timezone", "opening_hours", "holidays") if k in data}
            ),
        )


@dataclass
class Directory:
    deployments: dict[str, Deployment] = field(default_factory=dict)
    stores: dict[str, StoreInfo] = field(default_factory=dict)
    #: ``role@scope`` (as tasks name their assignee) -> email addresses.
    contacts: dict[str, list[str]] = field(default_factory=dict)
    #: The tenant's triage settings (model, insight thresholds) from its desired state.
    triage: TriageSettings = field(default_factory=TriageSettings)

    def store(self, ref: str | None) -> StoreInfo | None:
        """A store by its id or its code."""
        if not ref:
            return None
        found = self.stores.get(ref)
        if found is None:
            found = next((s for s in self.stores.values() if s.code == ref), None)
        return found

    def addresses(self, recipient: str) -> list[str]:
        """The email addresses of a ``role@scope`` recipient; a store may be named in the
        contacts by its id or its code."""
        found = self.contacts.get(recipient)
        if found:
            return list(found)
        role, _, where = recipient.partition("@")
        kind, _, ref = where.partition(":")
        info = self.store(ref) if kind == "store" else None
        if info is None:
            return []
        for key in (f"{role}@store:{info.id}", f"{role}@store:{info.code}"):
            if self.contacts.get(key):
                return list(self.contacts[key])
        return []

    def triggered_by(self, source: str, event_type: str) -> list[Deployment]:
        """Deployments that start a run on this event (a webhook from ``source``, or an
        internal event when ``source`` is ``internal``)."""
        found = []
        for deployment in self.deployments.values():
            for trigger in deployment.template.triggers:
                if isinstance(trigger, dsl.WebhookTrigger) and source == trigger.source:
                    hit = event_type in (trigger.event, f"{source}.{trigger.event}")
                elif isinstance(trigger, dsl.EventTrigger) and source == "internal":
                    hit = event_type == trigger.event
                else:
                    hit = False
                if hit:
                    found.append(deployment)
                    break
        return found
