"""The simulated systems; importing this package registers every operation."""

from __future__ import annotations

from tenant_runtime.sandbox.systems import (
    crm,
    ecommerce,
    erp_facilities,
    erp_pricing,
    erp_purchasing,
    erp_sales,
    erp_stock,
    hr,
    itsm,
    payments,
    pos,
    wms,
)

__all__ = [
    "crm",
    "ecommerce",
    "erp_facilities",
    "erp_pricing",
    "erp_purchasing",
    "erp_sales",
    "erp_stock",
    "hr",
    "itsm",
    "payments",
    "pos",
    "wms",
]
