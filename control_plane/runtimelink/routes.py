"""The runtime link: bootstrap tokens (issued on the API, spent on ``/runtime/v1``), the
desired-state pull and the deployment-status report."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post, put
from litestar.params import FromPath, HeaderParameter, JSONBody, Parameter

from control_plane.api.auth import requires
from control_plane.api.params import CtxDep
from control_plane.contracts.desired_state import CHANGE_HEADER_PREFIX, StatusReport
from control_plane.identity.principal import Principal
from control_plane.runtimelink import bootstrap, desired, status
from control_plane.runtimelink.auth import requires_runtime

NO_STORE = {"Cache-Control": "no-store"}


class BootstrapIssued(msgspec.Struct):
    tenant_id: UUID
    #: Shown once; only its digest is kept.
    token: str
    expires_at: datetime
    #: Where the runtime spends it: POST {"token": ...}.
    exchange_url: str


class BootstrapExchange(msgspec.Struct, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=bootstrap.MAX_TOKEN_LENGTH)]


class RuntimeCredentials(msgspec.Struct):
    tenant_id: UUID
    client_id: str
    client_secret: str
    token_url: str


@post(
    "/api/v1/tenants/{tenant_id:uuid}/runtime-bootstrap",
    operation_id="issueRuntimeBootstrapToken",
    tags=["runtime"],
    guards=[requires(bootstrap.ISSUE)],
    status_code=201,
    description="A single-use bootstrap token for the tenant's runtime, shown once; "
    "earlier unused tokens of the tenant stop working.",
)
async def issue_bootstrap_token(
    request: Request[Principal, Any, Any], ctx: CtxDep, tenant_id: FromPath[UUID]
) -> Response[BootstrapIssued]:
    issued = await bootstrap.issue(
        ctx, tenant_id, request.app.state.settings.bootstrap_token_ttl_seconds
    )
    body = BootstrapIssued(
        tenant_id=issued.tenant_id,
        token=issued.token,
        expires_at=issued.expires_at,
        exchange_url=f"{request.app.state.settings.issuer}/runtime/v1/bootstrap",
    )
    return Response(body, status_code=201, headers=NO_STORE)


@post(
    "/runtime/v1/bootstrap",
    operation_id="exchangeRuntimeBootstrapToken",
    tags=["runtime"],
    status_code=200,
    security=[],
    opt={"exclude_from_auth": True},
    description="No Authorization header: the bootstrap token is the credential. Answers "
    "401 for an unknown token, 409 for a used one, 410 for an expired or revoked one.",
)
async def exchange_bootstrap_token(
    request: Request[Any, Any, Any], data: JSONBody[BootstrapExchange]
) -> Response[RuntimeCredentials]:
    state = request.app.state
    creds = await bootstrap.exchange(state.db, state.settings, data.token)
    body = RuntimeCredentials(
        tenant_id=creds.tenant_id,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        token_url=creds.token_url,
    )
    return Response(body, status_code=200, headers=NO_STORE)


@get(
    "/runtime/v1/desired-state",
    operation_id="getDesiredState",
    tags=["runtime"],
    guards=[requires_runtime],
    description="The runtime's desired state with a strong ETag. With If-None-Match equal "
    "to the current ETag: 304 at once, or with ?wait=N (0-60) as soon as it changes, "
    "else 304 after N seconds. A 200 may carry StoreOps-Change-Traceparent (and "
    "-Tracestate): the W3C trace context of the change that produced it.",
)
async def get_desired_state(
    request: Request[Principal, Any, Any],
    wait: Annotated[int, Parameter(ge=0, le=60, description="seconds to long-poll")] = 0,
    if_none_match: Annotated[
        str | None, HeaderParameter(name="If-None-Match", description="the ETag you hold")
    ] = None,
) -> Response[bytes]:
    state = request.app.state
    served = await desired.serve(state.db, state.settings, request.user, if_none_match, wait)
    headers = {"ETag": served.etag, "Cache-Control": "no-cache"}
    for name, value in (served.change_context or {}).items():  # traceparent, tracestate
        headers[f"{CHANGE_HEADER_PREFIX}{name.capitalize()}"] = value
    if served.body is None:
        return Response(b"", status_code=304, headers=headers)
    return Response(served.body, media_type="application/json", headers=headers)


@put(
    "/runtime/v1/deployment-status",
    operation_id="reportDeploymentStatus",
    tags=["runtime"],
    guards=[requires_runtime],
    description="What the runtime applied, per deployment, at a generation.",
)
async def report_deployment_status(
    ctx: CtxDep, data: JSONBody[StatusReport]
) -> status.ReportResult:
    return await status.report(ctx, data)


ROUTES = [
    issue_bootstrap_token,
    exchange_bootstrap_token,
    get_desired_state,
    report_deployment_status,
]
