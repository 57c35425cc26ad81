"""Cursor pagination over UUIDv7 primary keys (creation order, stable under inserts)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from control_plane.errors import InvalidInput

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(msgspec.Struct, Generic[T]):
    items: list[T]
    #: Pass as ``?cursor=`` to get the next page; null on the last page.
    next_cursor: str | None = None


def encode_cursor(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return UUID(bytes=raw)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"cursor {cursor!r} is not one this API returned") from None


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return limit


async def fetch_page(
    session: AsyncSession, stmt: Select[Any], id_column: Any, *, limit: int, cursor: str | None
) -> tuple[Sequence[Any], str | None]:
    """Rows after ``cursor`` in id order, and the cursor for the page after them."""
    limit = check_limit(limit)
    if cursor:
        stmt = stmt.where(id_column > decode_cursor(cursor))
    rows = (await session.scalars(stmt.order_by(id_column).limit(limit + 1))).all()
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(rows[-1].id)
    return rows, None
