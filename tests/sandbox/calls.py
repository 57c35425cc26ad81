"""Small helpers the sandbox tests share: a keyed POST, the state, an operation's stats."""

from __future__ import annotations

from typing import Any

import httpx

TRANSFER = {"sku": "SKU-10001", "quantity": 4, "reference": "run-1"}


async def post(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    return await api.post(path, json=body, headers={"Idempotency-Key": key} if key else {})


async def state(api: httpx.AsyncClient) -> dict[str, Any]:
    found: dict[str, Any] = (await api.get("/_sandbox/state")).json()
    return found


async def stats_of(api: httpx.AsyncClient, operation: str) -> dict[str, Any]:
    found: dict[str, Any] = (await api.get("/_sandbox/stats")).json()["operations"][operation]
    return found
