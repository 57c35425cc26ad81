"""Branding fixtures: images made with Pillow, a readable palette, and helpers that drive
the theme and domain API the way a partner would."""

from __future__ import annotations

import io
import secrets
from typing import Any
from uuid import UUID

import httpx
from PIL import Image as Pillow

from tests.conftest import bearer

PALETTE = {
    "background": "#ffffff",
    "text": "#1f2933",
    "primary": "#0b5cad",
    "on_primary": "#ffffff",
    "muted": "#616e7c",
    "danger": "#b42318",
}


def raster(
    kind: str, size: tuple[int, int], colour: tuple[int, int, int] = (11, 92, 173), **save: Any
) -> bytes:
    out = io.BytesIO()
    Pillow.new("RGB", size, colour).save(out, kind, **save)
    return out.getvalue()


def png(size: tuple[int, int] = (240, 60), colour: tuple[int, int, int] = (11, 92, 173)) -> bytes:
    return raster("PNG", size, colour)


def hostname(label: str = "brand") -> str:
    return f"{label}-{secrets.token_hex(4)}.example.com"


async def upload(
    client: httpx.AsyncClient, token: str, path: str, data: bytes, role: str = "logo"
) -> httpx.Response:
    return await client.post(
        f"{path}/assets", params={"role": role}, content=data, headers=bearer(token)
    )


async def publish_theme(
    client: httpx.AsyncClient, token: str, path: str, **theme: Any
) -> dict[str, Any]:
    """Save ``theme`` as the draft of ``path`` (``/api/v1/partners/<id>/brand``) and
    publish it; the published version comes back."""
    draft = await client.put(f"{path}/draft", json=theme, headers=bearer(token))
    assert draft.status_code == 201, draft.text
    done = await client.post(f"{path}/publish", headers=bearer(token))
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


async def verified_domain(
    client: httpx.AsyncClient,
    token: str,
    hostname: str,
    *,
    partner_id: UUID | None = None,
    tenant_id: UUID | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"hostname": hostname}
    if partner_id:
        body["partner_id"] = str(partner_id)
    if tenant_id:
        body["tenant_id"] = str(tenant_id)
    claimed = await client.post("/api/v1/domains", json=body, headers=bearer(token))
    assert claimed.status_code == 201, claimed.text
    verified = await client.post(
        f"/api/v1/domains/{claimed.json()['id']}/verify", headers=bearer(token)
    )
    assert verified.status_code == 200, verified.text
    result: dict[str, Any] = verified.json()
    return result
