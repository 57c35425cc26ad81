"""Which runs and tasks a caller may see, as SQL conditions applied in one place.

Grants name stores and regions by their control-plane ids; runs and tasks name a store by
whatever the trigger gave (its id or its code). The runtime's store directory bridges the
two, so a grant matches both spellings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, false, or_, true

from tenant_runtime.api.auth import REGIONAL_MANAGER, STORE_MANAGER, Caller
from tenant_runtime.api.ports import StorePort
from tenant_runtime.db.schema import runs, tasks


@dataclass(frozen=True)
class Scope:
    everything: bool
    #: Identifiers (ids and codes) of the stores a store manager holds.
    stores: frozenset[str] = frozenset()
    #: Identifiers of the regions a regional manager holds, and of the stores in them.
    regions: frozenset[str] = frozenset()
    region_stores: frozenset[str] = frozenset()

    @property
    def all_stores(self) -> frozenset[str]:
        return self.stores | self.region_stores

    def tasks(self) -> ColumnElement[bool]:
        """Store managers: store-level tasks of their stores. Regional managers: regional
        and store-level tasks in their regions. Tenant-wide roles: every task."""
        if self.everything:
            return true()
        conditions: list[ColumnElement[bool]] = []
        if self.stores:
            conditions.append(
                and_(tasks.c.assignee_role == STORE_MANAGER, tasks.c.store.in_(self.stores))
            )
        if self.regions:
            conditions.append(
                and_(
                    tasks.c.assignee_role.in_([REGIONAL_MANAGER, STORE_MANAGER]),
                    or_(tasks.c.region.in_(self.regions), tasks.c.store.in_(self.region_stores)),
                )
            )
        return or_(*conditions) if conditions else false()

    def runs(self) -> ColumnElement[bool]:
        """Runs about a store the caller holds (directly or through its region)."""
        if self.everything:
            return true()
        names = self.all_stores
        if not names:
            return false()
        ids = [u for u in (_uuid(n) for n in names) if u is not None]
        return or_(runs.c.store.in_(names), runs.c.store_id.in_(ids))

    def covers_store(self, store: str | None) -> bool:
        return self.everything or (store is not None and store in self.all_stores)


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _names(key: str, info: StorePort) -> set[str]:
    return {n for n in (key, str(info.id), str(info.code or "")) if n}


def is_store(stores: Mapping[str, Any], ref: str) -> bool:
    """Whether ``ref`` names one of the stores in the directory (by key, id or code)."""
    directory: Mapping[str, StorePort] = stores
    return any(ref in _names(key, info) for key, info in directory.items())


def store_names(stores: Mapping[str, Any], ref: str) -> frozenset[str]:
    """Every name ``ref`` is known by: itself, and the id and code of the store it names."""
    directory: Mapping[str, StorePort] = stores
    names = {ref}
    for key, info in directory.items():
        if ref in _names(key, info):
            names |= _names(key, info)
    return frozenset(n for n in names if n)


def scope_of(caller: Caller, stores: Mapping[str, Any]) -> Scope:
    """The caller's scope, resolved through the runtime's store directory."""
    if caller.tenant_wide:
        return Scope(everything=True)
    directory: Mapping[str, StorePort] = stores
    granted = {str(s) for s in caller.store_ids}
    own: set[str] = set(granted)
    for key, info in directory.items():
        if str(info.id) in granted or key in granted:
            own |= _names(key, info)
    regions = {str(r) for r in caller.region_ids}
    in_regions: set[str] = set()
    for key, info in directory.items():
        if str(info.region) in regions:
            in_regions |= _names(key, info)
    return Scope(
        everything=False,
        stores=frozenset(own),
        regions=frozenset(regions),
        region_stores=frozenset(in_regions),
    )
