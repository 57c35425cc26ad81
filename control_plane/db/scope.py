"""The data scope a session reads and writes under: platform-wide or a set of tree nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID


@dataclass(frozen=True)
class Scope:
    """What rows a session may see.

    ``tenant_ids`` are tenants visible in full; ``partial_tenant_ids`` are tenants the
    principal reaches only through a region or store grant (the tenant row is visible,
    its regions and stores only as far as ``region_ids``/``store_ids`` go).
    """

    platform: bool = False
    partner_ids: frozenset[UUID] = field(default_factory=frozenset)
    tenant_ids: frozenset[UUID] = field(default_factory=frozenset)
    partial_tenant_ids: frozenset[UUID] = field(default_factory=frozenset)
    region_ids: frozenset[UUID] = field(default_factory=frozenset)
    store_ids: frozenset[UUID] = field(default_factory=frozenset)
    #: Every partner any grant sits under (a retailer's own MSP, too): for data a partner
    #: shares with its whole subtree, such as its private workflow templates.
    member_partner_ids: frozenset[UUID] = field(default_factory=frozenset)

    @classmethod
    def system(cls) -> Scope:
        """Unrestricted: for migrations, the CLI's platform actor and auth lookups."""
        return cls(platform=True)

    @property
    def visible_tenant_ids(self) -> frozenset[UUID]:
        return self.tenant_ids | self.partial_tenant_ids
