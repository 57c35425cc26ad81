"""Turning ORM rows into wire schemas: single objects carry an ETag, lists a cursor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from litestar import Response

from control_plane.api.pagination import Page
from control_plane.db.base import etag_for

T = TypeVar("T")


def to_schema(obj: Any, schema: type[T], **extra: Any) -> T:
    if extra:
        data = {f: getattr(obj, f) for f in schema.__struct_fields__ if f not in extra}  # type: ignore[attr-defined]
        return schema(**data, **extra)
    return msgspec.convert(obj, schema, from_attributes=True)


def one(obj: Any, schema: type[T], status_code: int = 200, **extra: Any) -> Response[T]:
    """An object (ORM row, or a plain row from a fast read) with its ETag."""
    if isinstance(obj, dict):
        body = msgspec.convert({**obj, **extra}, schema)
        tag = etag_for(obj["id"], obj["version"])
    else:
        body, tag = to_schema(obj, schema, **extra), obj.etag
    return Response(body, status_code=status_code, headers={"ETag": tag})


def page(
    rows: Sequence[Any],
    next_cursor: str | None,
    schema: type[T],
    convert: Callable[[Any], T] | None = None,
) -> Page[T]:
    make = convert or (lambda r: to_schema(r, schema))
    return Page(items=[make(r) for r in rows], next_cursor=next_cursor)
