"""Declarative base, common columns, and the scoping contract every model declares."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from sqlalchemy import JSON, DateTime, Integer, MetaData, TypeDecorator, false, or_
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from control_plane.contracts import uuid7
from control_plane.db.scope import Scope

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; StoreOps stores UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


def etag_for(obj_id: UUID, version: int) -> str:
    """A strong ETag: the object and its version counter."""
    return f'"{obj_id.hex[:12]}-{version}"'


class Entity:
    """UUIDv7 primary key, timestamps, and a version counter that backs ETags."""

    id: Mapped[UUID] = mapped_column(primary_key=True, default=uuid7)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # UPDATE ... WHERE version = :seen, so a concurrent write raises StaleDataError.
        return {"version_id_col": cls.version}

    @property
    def etag(self) -> str:
        return etag_for(self.id, self.version)


#: Scope kind (a key of ``__scope_columns__``) -> the Scope attribute holding its ids.
SCOPE_IDS = {
    "partner": "partner_ids",
    "tenant": "tenant_ids",
    "visible_tenant": "visible_tenant_ids",
    "region": "region_ids",
    "store": "store_ids",
    "member_partner": "member_partner_ids",
}


class Scoped:
    """A model whose rows belong to a node of the tenancy tree.

    ``__scope_columns__`` names the columns holding the row's partner, tenant, region and
    store ids (any may be absent). :func:`scope_clause` turns a :class:`Scope` into the
    WHERE criterion that the session hook attaches to every ORM query.
    """

    __scope_columns__: ClassVar[dict[str, str]] = {}
    #: A column whose NULL marks a row every scope may read (platform-owned data).
    __public_when_null__: ClassVar[str | None] = None

    @classmethod
    def scope_clause(cls, scope: Scope) -> ColumnElement[bool]:
        terms = [
            getattr(cls, column).in_(sorted(ids))
            for kind, column in cls.__scope_columns__.items()
            if (ids := getattr(scope, SCOPE_IDS[kind]))
        ]
        if cls.__public_when_null__:
            terms.append(getattr(cls, cls.__public_when_null__).is_(None))
        return or_(*terms) if terms else false()

    @classmethod
    def admits(cls, scope: Scope, values: dict[str, Any]) -> bool:
        """:meth:`scope_clause` evaluated on a row's values (ids as UUIDs or strings)."""
        if scope.platform:
            return True
        if cls.__public_when_null__ and values.get(cls.__public_when_null__) is None:
            return True
        for kind, column in cls.__scope_columns__.items():
            value = values.get(column)
            if value is not None and UUID(str(value)) in getattr(scope, SCOPE_IDS[kind]):
                return True
        return False
