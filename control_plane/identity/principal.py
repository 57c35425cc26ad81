"""Who is calling: their grants, and the data scope those grants open."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import msgspec

from control_plane.db.scope import Scope
from control_plane.errors import Forbidden
from control_plane.identity.roles import Level, Role, role_allows


class Grant(msgspec.Struct, frozen=True, omit_defaults=True):
    """A role at a node; the ancestry ids are carried so no lookup is needed."""

    role: Role
    partner_id: UUID | None = None
    tenant_id: UUID | None = None
    region_id: UUID | None = None
    store_id: UUID | None = None

    @property
    def level(self) -> Level:
        if self.store_id:
            return Level.STORE
        if self.region_id:
            return Level.REGION
        if self.tenant_id:
            return Level.TENANT
        if self.partner_id:
            return Level.PARTNER
        return Level.PLATFORM

    @property
    def node(self) -> str:
        node_id = self.store_id or self.region_id or self.tenant_id or self.partner_id
        return f"{self.level}:{node_id}" if node_id else "platform"

    def covers(
        self,
        *,
        partner_id: UUID | None = None,
        tenant_id: UUID | None = None,
        region_id: UUID | None = None,
        store_id: UUID | None = None,
    ) -> bool:
        """Whether the target node (given by its ancestry) lies in this grant's subtree."""
        level = self.level
        if level is Level.PLATFORM:
            return True
        if level is Level.PARTNER:
            return partner_id == self.partner_id
        if level is Level.TENANT:
            return tenant_id == self.tenant_id
        if level is Level.REGION:
            return region_id == self.region_id
        return store_id == self.store_id


@dataclass(frozen=True)
class Principal:
    subject: str
    kind: str  # "user" | "client" | "system"
    name: str
    grants: tuple[Grant, ...] = ()
    home_partner_id: UUID | None = None
    home_tenant_id: UUID | None = None
    token_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def system(cls, name: str = "storeops-cli") -> Principal:
        return cls(
            subject=f"system:{name}", kind="system", name=name, grants=(Grant(Role.PLATFORM_ADMIN),)
        )

    def has(self, permission: str) -> bool:
        return any(role_allows(g.role, permission) for g in self.grants)

    def can(self, permission: str, **node: UUID | None) -> bool:
        return any(role_allows(g.role, permission) and g.covers(**node) for g in self.grants)

    def require(self, permission: str, **node: UUID | None) -> None:
        """Raise unless a grant gives ``permission`` over ``node`` (or anywhere, if none)."""
        allowed = self.can(permission, **node) if node else self.has(permission)
        if not allowed:
            raise Forbidden(f"your roles do not grant '{permission}' here")

    def scope(self, permission: str | None = None) -> Scope:
        """The rows this principal may see (optionally only through ``permission``)."""
        grants = [g for g in self.grants if permission is None or role_allows(g.role, permission)]
        if any(g.level is Level.PLATFORM for g in grants):
            return Scope.system()
        partners, tenants, partial, regions, stores = set(), set(), set(), set(), set()
        for g in grants:
            level = g.level
            if level is Level.PARTNER:
                partners.add(g.partner_id)
            elif level is Level.TENANT:
                tenants.add(g.tenant_id)
            elif level is Level.REGION:
                partial.add(g.tenant_id)
                regions.add(g.region_id)
            else:
                partial.add(g.tenant_id)
                stores.add(g.store_id)
        return Scope(
            partner_ids=frozenset(p for p in partners if p),
            tenant_ids=frozenset(t for t in tenants if t),
            partial_tenant_ids=frozenset(t for t in partial if t),
            region_ids=frozenset(r for r in regions if r),
            store_ids=frozenset(s for s in stores if s),
            member_partner_ids=frozenset(g.partner_id for g in grants if g.partner_id),
        )
