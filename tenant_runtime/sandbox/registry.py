"""Simulated systems and their operations: each handler is registered on its system with
``@system.read`` (no effect) or ``@system.write`` (an effect the ledger counts)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.world import World

Handler = Callable[[World, Body], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    system: str
    name: str
    mutates: bool
    handler: Handler

    @property
    def summary(self) -> str:
        return (self.handler.__doc__ or "").strip().splitlines()[0] if self.handler.__doc__ else ""


class System:
    def __init__(self, name: str, title: str) -> None:
        self.name = name
        self.title = title
        self.operations: dict[str, Operation] = {}

    def read(self, handler: Handler) -> Handler:
        """Register a lookup: repeating it changes nothing."""
        return self._add(handler, mutates=False)

    def write(self, handler: Handler) -> Handler:
        """Register an operation that changes the system's state (an effect)."""
        return self._add(handler, mutates=True)

    def _add(self, handler: Handler, mutates: bool) -> Handler:
        name = handler.__name__
        if name in self.operations:
            raise ValueError(f"{self.name}.{name} is registered twice")
        self.operations[name] = Operation(self.name, name, mutates, handler)
        return handler


erp = System("erp", "ERP: inventory, purchasing, pricing, assets, sales and finance")
pos = System("pos", "Point of sale: store price files, label printing, till activity")
wms = System("wms", "Warehouse management: DC stock, transfer reviews, store orders")
crm = System("crm", "CRM: customers, loyalty, cases, interactions, marketing consent")
hr = System("hr", "Workforce management / HR: shifts, cover, hours, overtime, agency")
itsm = System("itsm", "Service desk: incidents, vendor work orders, invoices, cases")
ecommerce = System("ecommerce", "eCommerce: orders, replacements, refunds, online prices")
payments = System("payments", "Payment gateway: transactions, refunds, store credit")

SYSTEMS: dict[str, System] = {
    s.name: s for s in (erp, pos, wms, crm, hr, itsm, ecommerce, payments)
}
