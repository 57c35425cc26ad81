"""Wire schemas for users, role grants, API clients and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import msgspec

from control_plane.identity.roles import Role
from control_plane.tenancy.schemas import Input, Name

Email = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254, examples=["ops@example.com"]
    ),
]
Password = Annotated[str, msgspec.Meta(min_length=12, max_length=256)]


class GrantSpec(Input):
    """A role at one node: name the deepest node id (none at all means the platform)."""

    role: Role
    partner_id: UUID | None = None
    tenant_id: UUID | None = None
    region_id: UUID | None = None
    store_id: UUID | None = None


class GrantOut(msgspec.Struct):
    id: UUID
    role: str
    node: str
    partner_id: UUID | None
    tenant_id: UUID | None
    region_id: UUID | None
    store_id: UUID | None


class UserCreate(Input):
    email: Email
    name: Name
    password: Password
    #: The node that administers this user; defaults to the first grant's partner/tenant.
    partner_id: UUID | None = None
    tenant_id: UUID | None = None
    grants: list[GrantSpec] = msgspec.field(default_factory=list)


class UserUpdate(Input):
    name: Name | None = None
    active: bool | None = None
    password: Password | None = None


class User(msgspec.Struct):
    id: UUID
    email: str
    name: str
    active: bool
    partner_id: UUID | None
    tenant_id: UUID | None
    grants: list[GrantOut]
    version: int
    created_at: datetime
    updated_at: datetime


class ClientCreate(Input):
    name: Name
    partner_id: UUID | None = None
    tenant_id: UUID | None = None
    grants: list[GrantSpec] = msgspec.field(default_factory=list)


class Client(msgspec.Struct):
    id: UUID
    client_id: str
    name: str
    active: bool
    partner_id: UUID | None
    tenant_id: UUID | None
    grants: list[GrantOut]
    version: int
    created_at: datetime
    updated_at: datetime


class ClientCreated(Client, kw_only=True):
    #: Shown once, at creation; only its digest is stored.
    client_secret: str


class ClientUpdate(Input):
    name: Name | None = None
    active: bool | None = None


class LoginRequest(Input):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    scope: str
