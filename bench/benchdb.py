"""PostgreSQL for the benchmarks: where it is, connection strings, and a throwaway database
per run (``STOREOPS_BENCH_PG_HOST``/``_PORT``/``_USER`` override the local defaults)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

PG_HOST = os.environ.get("STOREOPS_BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("STOREOPS_BENCH_PG_PORT", "5432"))
PG_SUPERUSER = os.environ.get("STOREOPS_BENCH_PG_USER", "postgres")


def pg_dsn(user: str, database: str) -> str:
    return f"postgresql://{user}@{PG_HOST}:{PG_PORT}/{database}"


def sa_url(user: str, database: str) -> str:
    return f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{database}"


async def admin_exec(sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn(PG_SUPERUSER, "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def bench_database(prefix: str = "storeops_bench") -> Iterator[str]:
    """A fresh database, dropped on the way out whatever happened."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    asyncio.run(admin_exec(f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"dropped database {name}")
