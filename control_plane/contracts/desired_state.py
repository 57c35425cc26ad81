"""What a tenant runtime pulls (its desired state) and reports back (deployment status).

The runtime reads ``GET /runtime/v1/desired-state`` with its own token and conditional
headers: the ``ETag`` is the SHA-256 of the document's canonical JSON, so anything that
changes the content (a deployment, a store, a published theme) changes the tag. After
applying a generation it sends ``PUT /runtime/v1/deployment-status``. A deployment's
``content_hash`` covers everything the runtime needs to run it, so a runtime can recompute
it to prove what it applied (:func:`deployment_hash`).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from control_plane.contracts.brand import Brand
from control_plane.contracts.triage import TriageSettings

CONTRACT_VERSION = 1
#: A desired-state answer's ``StoreOps-Change-Traceparent`` (and ``-Tracestate``) headers
#: carry the W3C trace context of the change that produced it, when the control plane has it.
CHANGE_HEADER_PREFIX = "StoreOps-Change-"
#: A deployment's reported outcome.
ReportedStatus = Literal["applied", "failed"]
DeploymentStatus = Literal["active", "paused"]
Hash = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]


class StoreEntry(msgspec.Struct, kw_only=True):
    code: str
    name: str
    region_id: UUID | None
    timezone: str
    opening_hours: dict[str, Any]
    holidays: list[str]


class DeploymentEntry(msgspec.Struct, kw_only=True):
    id: UUID
    template_id: str
    version: str
    content_hash: str
    #: The catalog version's template as plain data: ``dsl.parse`` accepts it as is.
    spec: dict[str, Any]
    params: dict[str, Any]
    bindings: dict[str, Any]
    triggers: dict[str, Any]
    status: DeploymentStatus


class DesiredState(msgspec.Struct, kw_only=True):
    tenant_id: UUID
    contract_version: int
    generation: int
    deployments: list[DeploymentEntry]
    #: Store id -> its calendar and place in the tree.
    stores: dict[str, StoreEntry]
    #: The tenant's effective brand, images inline, so its portal and emails need nothing
    #: from elsewhere. None from a control plane that does not send one.
    brand: Brand | None = None
    #: The tenant's effective triage settings (model, insight thresholds); None: defaults.
    triage: TriageSettings | None = None


class DeploymentReport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    id: UUID
    status: ReportedStatus
    content_hash: Hash
    reason: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class StatusReport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the runtime applied: the generation it acted on and each deployment's outcome."""

    generation: Annotated[int, msgspec.Meta(ge=0)]
    deployments: Annotated[list[DeploymentReport], msgspec.Meta(max_length=1000)]
    tenant_id: UUID | None = None
    contract_version: int = CONTRACT_VERSION


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace: equal content, equal bytes."""
    return msgspec.json.encode(value, order="sorted")


def document_etag(body: bytes) -> str:
    """A strong ETag for a canonical JSON document."""
    return '"' + hashlib.sha256(body).hexdigest() + '"'


def deployment_hash(
    *,
    template_id: str,
    version: str,
    spec: dict[str, Any],
    params: dict[str, Any],
    bindings: dict[str, Any],
    triggers: dict[str, Any],
    status: str,
) -> str:
    """SHA-256 of what a runtime runs for one deployment (the id is not part of it)."""
    content = {
        "template_id": template_id,
        "version": version,
        "spec": spec,
        "params": params,
        "bindings": bindings,
        "triggers": triggers,
        "status": status,
    }
    return hashlib.sha256(canonical_json(content)).hexdigest()
