"""Roles, the permissions they carry, and the tree level at which each may be granted."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    NOC_OPERATOR = "noc_operator"
    PARTNER_ADMIN = "partner_admin"
    PARTNER_OPERATOR = "partner_operator"
    RETAILER_ADMIN = "retailer_admin"
    REGIONAL_MANAGER = "regional_manager"
    STORE_MANAGER = "store_manager"
    #: A retailer's runtime process: reads its own tenant's secrets through the broker.
    TENANT_RUNTIME = "tenant_runtime"


class Level(StrEnum):
    PLATFORM = "platform"
    PARTNER = "partner"
    TENANT = "tenant"
    REGION = "region"
    STORE = "store"


#: Where each role may be granted.
ROLE_LEVELS: dict[Role, frozenset[Level]] = {
    Role.PLATFORM_ADMIN: frozenset({Level.PLATFORM}),
    Role.NOC_OPERATOR: frozenset({Level.PLATFORM, Level.PARTNER}),
    Role.PARTNER_ADMIN: frozenset({Level.PARTNER}),
    Role.PARTNER_OPERATOR: frozenset({Level.PARTNER}),
    Role.RETAILER_ADMIN: frozenset({Level.TENANT}),
    Role.REGIONAL_MANAGER: frozenset({Level.REGION}),
    Role.STORE_MANAGER: frozenset({Level.STORE}),
    Role.TENANT_RUNTIME: frozenset({Level.TENANT}),
}

_READ = frozenset(
    {
        "partners:read",
        "tenants:read",
        "stores:read",
        "users:read",
        "clients:read",
        "audit:read",
        "catalog:read",
        "alerts:read",
        "reports:read",
        "rollouts:read",
        "brand:read",
        "billing:read",
    }
)

#: Permissions are "<resource>:<action>"; "*" means every permission.
ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.PLATFORM_ADMIN: frozenset({"*"}),
    #: alerts:act is acknowledge, resolve, assign, note and silence; alerts:write is rules,
    #: maintenance windows and notification channels.
    Role.NOC_OPERATOR: _READ | {"alerts:act", "dead_letters:act"},
    Role.PARTNER_ADMIN: _READ
    | {
        "partners:write",
        "tenants:write",
        "tenants:lifecycle",
        "stores:write",
        "users:write",
        "clients:write",
        "catalog:write",
        "secrets:read",
        "secrets:write",
        "alerts:act",
        "alerts:write",
        "rollouts:write",
        "brand:write",
        "billing:write",
    },
    Role.PARTNER_OPERATOR: _READ | {"stores:write", "alerts:act"},
    Role.RETAILER_ADMIN: _READ
    | {
        "tenants:write",
        "stores:write",
        "users:write",
        "clients:write",
        "secrets:read",
        "secrets:write",
        "brand:write",
    },
    Role.REGIONAL_MANAGER: frozenset(
        {"tenants:read", "stores:read", "stores:write", "catalog:read"}
    ),
    Role.STORE_MANAGER: frozenset({"tenants:read", "stores:read", "catalog:read"}),
    Role.TENANT_RUNTIME: frozenset({"secrets:resolve", "catalog:read"}),
}


def role_allows(role: Role, permission: str) -> bool:
    granted = ROLE_PERMISSIONS[role]
    return "*" in granted or permission in granted
