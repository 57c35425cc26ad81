"""The array literals the ingest statement reads: PostgreSQL must read back exactly the
values they were written from, whatever the strings hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from control_plane.config import Settings
from control_plane.contracts import uuid7
from control_plane.errors import InvalidInput
from control_plane.telemetry.literals import array_literal
from tests.telemetry.conftest import superuser

AWKWARD = [
    "plain",
    "",
    None,
    'quote " inside',
    'back\\slash and \\" both',
    "comma, {braces} and [brackets]",
    "new\nline\ttab\rreturn\x01\x1f",
    "NULL",
    "  spaces around  ",
    "unicodé ✓ 漢字 \u2028",
    "{",
    '"',
    "\\",
]


async def test_strings_read_back_exactly(settings: Settings) -> None:
    conn = await superuser(settings)
    try:
        for values in ([v] for v in AWKWARD):
            got = await conn.fetchval("SELECT $1::text::text[]", array_literal(values))
            assert got == values, values
        got = await conn.fetchval("SELECT $1::text::text[]", array_literal(AWKWARD))
        assert got == AWKWARD
    finally:
        await conn.close()


async def test_ids_times_numbers_and_documents_read_back_exactly(settings: Settings) -> None:
    ids = [uuid7(), None, UUID(int=0)]
    base = datetime(2026, 11, 28, 23, 59, 59, 999_999, tzinfo=UTC)
    times = [base, base + timedelta(microseconds=1), base.astimezone(timezone(timedelta(hours=-7)))]
    numbers = [0, None, 2**62, 17]
    documents = [{}, {"k": 'v"\\'}, {"nested": {"list": [1, 2.5, None, "x\ny"]}}, {"ü": "✓"}]
    texts = [json.dumps(d) if d else "{}" for d in documents]
    conn = await superuser(settings)
    try:
        assert await conn.fetchval("SELECT $1::text::uuid[]", array_literal(ids, plain=True)) == ids
        got_times = await conn.fetchval(
            "SELECT $1::text::timestamptz[]", array_literal(times, plain=True)
        )
        assert got_times == times
        assert (
            await conn.fetchval("SELECT $1::text::int8[]", array_literal(numbers, plain=True))
            == numbers
        )
        got = await conn.fetchval(
            "SELECT array_agg(d::jsonb::text ORDER BY n) FROM unnest($1::text::text[])"
            " WITH ORDINALITY AS t(d, n)",
            array_literal(texts, plain=True),
        )
        assert [json.loads(d) for d in got] == documents
    finally:
        await conn.close()


def test_a_nul_character_is_refused() -> None:
    with pytest.raises(InvalidInput, match="NUL"):
        array_literal(["fine", "not\x00fine"])
