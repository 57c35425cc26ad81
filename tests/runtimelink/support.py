"""A tenant runtime's credentials, obtained the way a runtime does: bootstrap token, exchange,
client-credentials token."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import bearer
from tests.deployments.support import Fleet


async def issue(client: httpx.AsyncClient, f: Fleet) -> dict[str, Any]:
    res = await client.post(f"{f.base}/runtime-bootstrap", headers=bearer(f.tree.partner_token))
    assert res.status_code == 201, res.text
    body: dict[str, Any] = res.json()
    return body


async def exchange(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/runtime/v1/bootstrap", json={"token": token})


async def access_token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


async def runtime_token(client: httpx.AsyncClient, f: Fleet) -> str:
    creds = await exchange(client, (await issue(client, f))["token"])
    assert creds.status_code == 200, creds.text
    body = creds.json()
    res = await access_token(client, body["client_id"], body["client_secret"])
    assert res.status_code == 200, res.text
    token: str = res.json()["access_token"]
    return token
