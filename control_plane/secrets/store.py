"""The ``SecretStore`` protocol every backend implements, and the types it speaks.

Paths are ``partners/<partner_id>/<name>`` or ``tenants/<tenant_id>/<name>``, relative to
the store's root (a KV v2 mount and prefix in Vault). Values are strings; they leave a
store only through :meth:`SecretStore.read`, which the API never exposes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable
from uuid import UUID

OwnerKind = Literal["partners", "tenants"]
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class SecretStoreError(Exception):
    """The backend failed (unreachable, refused, corrupt): never carries a value."""


class SecretNotFound(SecretStoreError):
    pass


class CasMismatch(SecretStoreError):
    """A check-and-set write named a version that is no longer current."""


class SecretCorrupt(SecretStoreError):
    """Stored ciphertext failed authentication: tampered or wrapped with another key."""


@dataclass(frozen=True)
class SecretPath:
    owner: OwnerKind
    owner_id: UUID
    name: str

    def __post_init__(self) -> None:
        if not NAME.match(self.name):
            raise ValueError(
                f"secret name {self.name!r}: use lowercase letters, digits, '.', '_' or '-'"
            )

    @property
    def prefix(self) -> str:
        return f"{self.owner}/{self.owner_id}"

    def __str__(self) -> str:
        return f"{self.prefix}/{self.name}"


@dataclass(frozen=True)
class SecretMeta:
    name: str
    version: int
    created_at: datetime
    updated_at: datetime
    updated_by: str
    #: The current version was soft-deleted (undelete brings it back).
    deleted: bool = False
    #: The current version's value is gone for good.
    destroyed: bool = False


class Secret:
    """A value with its metadata. ``repr`` never shows the value."""

    __slots__ = ("meta", "value")

    def __init__(self, value: str, meta: SecretMeta) -> None:
        self.value = value
        self.meta = meta

    def __repr__(self) -> str:
        return f"Secret({self.meta.name!r}, version={self.meta.version}, value=<redacted>)"


@runtime_checkable
class SecretStore(Protocol):
    async def put(
        self, path: SecretPath, value: str, *, actor: str, cas: int | None = None
    ) -> SecretMeta:
        """Write a new version; ``cas`` is the version the writer saw (0: must not exist)."""
        ...

    async def read(self, path: SecretPath, version: int | None = None) -> Secret: ...

    async def metadata(self, path: SecretPath) -> SecretMeta: ...

    async def list_secrets(self, owner: OwnerKind, owner_id: UUID) -> list[SecretMeta]:
        """Every secret under one partner or tenant (deleted ones flagged)."""
        ...

    async def delete(self, path: SecretPath) -> None:
        """Soft-delete the current version."""
        ...

    async def undelete(self, path: SecretPath, versions: list[int]) -> None: ...

    async def destroy(self, path: SecretPath, versions: list[int]) -> None:
        """Remove these versions' values permanently."""
        ...

    async def purge(self, path: SecretPath) -> None:
        """Remove the secret with all its versions and metadata."""
        ...
