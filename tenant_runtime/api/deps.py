"""Per-request access to the runtime and the caller's scope."""

from __future__ import annotations

from typing import Any

from litestar import Request

from tenant_runtime.api.auth import Caller
from tenant_runtime.api.ports import RuntimePort
from tenant_runtime.api.scope import Scope, scope_of

AuthedRequest = Request[Caller, str, Any]


def runtime_of(request: Request[Any, Any, Any]) -> RuntimePort:
    runtime: RuntimePort = request.app.state.runtime
    return runtime


def scope_for(request: AuthedRequest) -> Scope:
    return scope_of(request.user, runtime_of(request).stores)
