"""Per-system state of the simulated estate: plain dataclasses, so a snapshot is JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: id -> document (orders, POs, tickets...): the simulators' records, with a ``status``.
Docs = dict[str, dict[str, Any]]


def _docs() -> Docs:
    return {}


@dataclass
class Item:
    sku: str
    description: str
    category: str
    unit_cost: float
    price: float
    pack_size: int
    sourcing: str  # "dc" or "supplier" (direct store delivery)
    supplier_id: str
    dc_id: str


@dataclass
class Stock:
    on_hand: int
    on_order: int
    in_transit: int
    reorder_point: int
    order_up_to: int
    #: Units picked for outbound transfers, not yet shipped.
    allocated: int = 0


@dataclass
class ErpState:
    items: dict[str, Item] = field(default_factory=dict)
    #: store -> sku -> stock
    stock: dict[str, dict[str, Stock]] = field(default_factory=dict)
    #: store -> sku -> shelf price when it differs from the item's regular price
    store_prices: dict[str, dict[str, float]] = field(default_factory=dict)
    markdown_budget: dict[str, float] = field(default_factory=dict)
    purchase_budget: dict[str, float] = field(default_factory=dict)
    #: "<store>/<week monday>" -> {"budget_hours", "scheduled_hours"}
    labour: dict[str, dict[str, float]] = field(default_factory=dict)
    transfer_orders: Docs = field(default_factory=_docs)
    purchase_orders: Docs = field(default_factory=_docs)
    markdowns: Docs = field(default_factory=_docs)
    counts: Docs = field(default_factory=_docs)
    holds: Docs = field(default_factory=_docs)
    adjustments: Docs = field(default_factory=_docs)
    price_changes: Docs = field(default_factory=_docs)
    assets: Docs = field(default_factory=_docs)
    service_pos: Docs = field(default_factory=_docs)
    cost_postings: Docs = field(default_factory=_docs)
    sales: Docs = field(default_factory=_docs)
    return_orders: Docs = field(default_factory=_docs)


@dataclass
class PosState:
    #: store -> sku -> till price
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    price_batches: Docs = field(default_factory=_docs)
    label_jobs: Docs = field(default_factory=_docs)


@dataclass
class WmsState:
    #: dc -> sku -> available units
    dc_stock: dict[str, dict[str, int]] = field(default_factory=dict)
    transfer_reviews: Docs = field(default_factory=_docs)
    store_orders: Docs = field(default_factory=_docs)


@dataclass
class CrmState:
    customers: Docs = field(default_factory=_docs)
    cases: Docs = field(default_factory=_docs)
    interactions: Docs = field(default_factory=_docs)
    loyalty_transactions: Docs = field(default_factory=_docs)


@dataclass
class HrState:
    shifts: Docs = field(default_factory=_docs)
    employees: Docs = field(default_factory=_docs)
    offers: Docs = field(default_factory=_docs)
    overtime: Docs = field(default_factory=_docs)
    agency_requests: Docs = field(default_factory=_docs)


@dataclass
class ItsmState:
    incidents: Docs = field(default_factory=_docs)
    work_orders: Docs = field(default_factory=_docs)
    cases: Docs = field(default_factory=_docs)


@dataclass
class EcommerceState:
    orders: Docs = field(default_factory=_docs)
    refunds: Docs = field(default_factory=_docs)
    #: store -> change id -> published online price list
    store_prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    promotion_suppressions: Docs = field(default_factory=_docs)
    availability_updates: Docs = field(default_factory=_docs)
    delivery_promises: Docs = field(default_factory=_docs)


@dataclass
class PaymentsState:
    transactions: Docs = field(default_factory=_docs)
    refunds: Docs = field(default_factory=_docs)
    store_credits: Docs = field(default_factory=_docs)
