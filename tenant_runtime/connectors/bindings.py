"""A template's logical connectors bound to concrete REST endpoints, as the engine calls them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenant_runtime.connectors.errors import ConnectorError
from tenant_runtime.connectors.rest import RestConnector
from tenant_runtime.engine.executor import CallFailed


class BoundConnectors:
    """Maps a template's connector names (``erp``, ``pos``...) to their REST connectors."""

    def __init__(self, bindings: Mapping[str, RestConnector]) -> None:
        self.bindings = dict(bindings)

    async def call(
        self, connector: str, operation: str, payload: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        bound = self.bindings.get(connector)
        if bound is None:
            raise CallFailed(
                "unbound", f"connector {connector!r} has no binding in this deployment"
            )
        try:
            return await bound.call(operation, payload, idempotency_key=idempotency_key)
        except ConnectorError as exc:
            # The connector already retried what its policy allowed; the step's policy
            # decides about the rest.
            raise CallFailed(exc.error_class.value, str(exc)) from None
