"""Key administration shared by the CLI and setup: rotate, retire, ensure one exists."""

from __future__ import annotations

from sqlalchemy import select

from control_plane.audit.service import record
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.identity.keys import retire_key, rotate_signing_key
from control_plane.identity.models import SigningKey


async def rotate(
    ctx: Ctx, settings: Settings, algorithm: str | None = None
) -> tuple[SigningKey, list[SigningKey]]:
    key, previous = await rotate_signing_key(ctx.session, settings, algorithm=algorithm)
    await record(
        ctx,
        "keys.rotate",
        target_type="signing_key",
        target_id=key.kid,
        after={
            "kid": key.kid,
            "algorithm": key.algorithm,
            "verifying": [{"kid": k.kid, "retires_at": str(k.retires_at)} for k in previous],
        },
    )
    return key, previous


async def retire(ctx: Ctx, kid: str) -> SigningKey | None:
    key = await retire_key(ctx.session, kid)
    if key is not None:
        await record(ctx, "keys.retire", target_type="signing_key", target_id=kid)
    return key


async def ensure_signing_key(ctx: Ctx, settings: Settings) -> SigningKey | None:
    """Create the first signing key if there is none; return it when created."""
    existing = await ctx.session.scalar(select(SigningKey).where(SigningKey.status == "signing"))
    if existing is not None:
        return None
    key, _ = await rotate(ctx, settings)
    return key


async def list_keys(ctx: Ctx) -> list[SigningKey]:
    return list(
        (await ctx.session.scalars(select(SigningKey).order_by(SigningKey.created_at))).all()
    )
