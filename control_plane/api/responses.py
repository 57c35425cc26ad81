"""Turning ORM rows into wire schemas: single objects carry an ETag, lists a cursor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from litestar import Response

from control_plane.api.pagination import Page

T = TypeVar("T")


def to_schema(obj: Any, schema: type[T], **extra: Any) -> T:
    if extra:
        data = {f: getattr(obj, f) for f in schema.__struct_fields__ if f not in extra}  # type: ignore[attr-defined]
        return schema(**data, **extra)
    return msgspec.convert(obj, schema, from_attributes=True)


def one(obj: Any, schema: type[T], status_code: int = 200, **extra: Any) -> Response[T]:
    return Response(
        to_schema(obj, schema, **extra), status_code=status_code, headers={"ETag": obj.etag}
    )


def page(
    rows: Sequence[Any],
    next_cursor: str | None,
    schema: type[T],
    convert: Callable[[Any], T] | None = None,
) -> Page[T]:
    make = convert or (lambda r: to_schema(r, schema))
    return Page(items=[make(r) for r in rows], next_cursor=next_cursor)
