"""``storeops brand ...``: publish and roll back themes, claim and verify domains, and see
which brand a host gets. Runs as the platform (like the rest of the CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import msgspec
from sqlalchemy import select

from control_plane.branding import domains, resolve, service
from control_plane.branding.models import Domain
from control_plane.branding.theme import ThemeInput
from control_plane.cli import _partner_id, _tenant_id, console, handle_errors, main, run, table
from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.contracts.brand import DEFAULT
from control_plane.errors import InvalidInput

owner_options = [
    click.option("--partner", "partner_ref", default=None, help="partner id or slug"),
    click.option("--tenant", "tenant_ref", default=None, help="tenant id or slug (an override)"),
]


def _with_owner(fn: Any) -> Any:
    for option in reversed(owner_options):
        fn = option(fn)
    return fn


async def _owner(c: Ctx, partner_ref: str | None, tenant_ref: str | None) -> service.Owner:
    if (partner_ref is None) == (tenant_ref is None):
        raise InvalidInput("give exactly one of --partner and --tenant")
    if tenant_ref is not None:
        return await service.owner(c, "tenant", await _tenant_id(c, tenant_ref))
    assert partner_ref is not None
    return await service.owner(c, "partner", await _partner_id(c, partner_ref))


@main.group()
def brand() -> None:
    """White-label themes and custom domains."""


@brand.command("show")
@click.option("--host", default=None, help="the brand a request for this Host gets")
@_with_owner
@click.pass_obj
@handle_errors
def brand_show(
    settings: Settings, host: str | None, partner_ref: str | None, tenant_ref: str | None
) -> None:
    """Print the effective brand (JSON) of a host, a partner or a tenant."""

    async def go(c: Ctx) -> Any:
        if host is not None:
            found = await resolve.owner_of_host(c.session, host)
            if found is None:
                return DEFAULT
            return await resolve.brand_of(
                c.session, found.partner_id, found.tenant_id, settings.public_url
            )
        who = await _owner(c, partner_ref, tenant_ref)
        return await service.effective(c, who, settings.public_url)

    console.print_json(msgspec.json.encode(run(settings, go)).decode())


@brand.command("publish")
@click.argument("theme_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_with_owner
@click.option("--logo", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--favicon", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--draft-only", is_flag=True, help="save the draft and print its preview link")
@click.pass_obj
@handle_errors
def brand_publish(
    settings: Settings,
    theme_file: Path,
    partner_ref: str | None,
    tenant_ref: str | None,
    logo: Path | None,
    favicon: Path | None,
    draft_only: bool,
) -> None:
    """Save THEME_FILE (JSON, the API's theme fields) as the draft, with --logo and
    --favicon uploaded and referenced, then publish it (unless --draft-only)."""
    try:
        document = json.loads(theme_file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{theme_file} is not valid JSON: {exc.msg} at line {exc.lineno}"
        ) from None
    if not isinstance(document, dict):
        raise ValueError(f"{theme_file} must hold a JSON object of theme fields")

    async def go(c: Ctx) -> tuple[int, str, str | None]:
        who = await _owner(c, partner_ref, tenant_ref)
        for role, path in (("logo", logo), ("favicon", favicon)):
            if path is not None:
                asset = await service.upload_asset(c, who, role, path.read_bytes())  # type: ignore[arg-type]
                document[role] = asset.sha256
        theme = await service.save_draft(c, who, msgspec.convert(document, ThemeInput))
        if draft_only:
            return theme.number, "draft", theme.preview_token
        published = await service.publish(c, who, theme.number)
        return published.number, "published", None

    number, status, token = run(settings, go)
    console.print(f"theme version {number}: {status}")
    if token:
        console.print(f"preview: {settings.public_url.rstrip('/')}/login?preview={token}")


@brand.command("rollback")
@_with_owner
@click.pass_obj
@handle_errors
def brand_rollback(settings: Settings, partner_ref: str | None, tenant_ref: str | None) -> None:
    """Publish again the version published before the current one."""

    async def go(c: Ctx) -> int:
        return (await service.rollback(c, await _owner(c, partner_ref, tenant_ref))).number

    console.print(f"theme version {run(settings, go)} is published again")


@brand.command("versions")
@_with_owner
@click.pass_obj
@handle_errors
def brand_versions(settings: Settings, partner_ref: str | None, tenant_ref: str | None) -> None:
    """List the theme versions, newest first."""

    async def go(c: Ctx) -> list[tuple[str, ...]]:
        who = await _owner(c, partner_ref, tenant_ref)
        rows = await service.versions(c, who)
        return [
            (str(t.number), t.status, t.created_by, f"{t.published_at:%Y-%m-%d %H:%M}"
             if t.published_at else "")
            for t in rows
        ]  # fmt: skip

    table("Theme versions", ["version", "status", "created by", "published"], run(settings, go))


@brand.command("claim")
@click.argument("hostname")
@_with_owner
@click.pass_obj
@handle_errors
def brand_claim(
    settings: Settings, hostname: str, partner_ref: str | None, tenant_ref: str | None
) -> None:
    """Claim HOSTNAME for a partner's portal (--partner) or a tenant's endpoints (--tenant)."""

    async def go(c: Ctx) -> Domain:
        who = await _owner(c, partner_ref, tenant_ref)
        target = {"tenant_id": who.tenant.id} if who.tenant else {"partner_id": who.partner.id}
        return await domains.claim(
            c, domains.DomainCreate(hostname=hostname, **target), settings.public_url
        )

    domain = run(settings, go)
    console.print(f"claimed {domain.hostname} ({domain.purpose}); serve this token")
    console.print(f"  {domain.challenge_token}", highlight=False)
    console.print(f"at {domains.CHALLENGE_PATH}{domain.challenge_token} on it, then:")
    console.print(f"  storeops brand verify {domain.hostname}", highlight=False)


@brand.command("verify")
@click.argument("hostname")
@click.pass_obj
@handle_errors
def brand_verify(settings: Settings, hostname: str) -> None:
    """Fetch HOSTNAME's challenge; on the right token its requests wear its brand."""

    async def go(c: Ctx) -> Domain:
        found = await c.session.scalar(select(Domain.id).where(Domain.hostname == hostname))
        if found is None:
            raise InvalidInput(f"no claim on {hostname!r}; storeops brand claim it first")
        return await domains.verify(
            c,
            found,
            scheme=settings.domain_check_scheme,
            port=settings.domain_check_port or None,
        )

    console.print(f"{run(settings, go).hostname} is verified")


@brand.command("domains")
@click.option("--partner", "partner_ref", default=None, help="only this partner's")
@click.pass_obj
@handle_errors
def brand_domains(settings: Settings, partner_ref: str | None) -> None:
    """List claimed domains and their status."""

    async def go(c: Ctx) -> list[tuple[str, ...]]:
        partner_id = await _partner_id(c, partner_ref) if partner_ref else None
        rows: list[Domain] = []
        cursor: str | None = None
        while True:
            batch, cursor = await domains.list_(c, partner_id=partner_id, limit=200, cursor=cursor)
            rows += batch
            if cursor is None:
                break
        return [
            (d.hostname, d.purpose, d.status, str(d.tenant_id or d.partner_id), d.check_error or "")
            for d in rows
        ]

    table("Domains", ["hostname", "purpose", "status", "owner", "last check"], run(settings, go))
