"""Custom domains: a partner (for its portal) or a tenant (for its endpoints) claims a
hostname, proves it by serving the claim's challenge token at
``http(s)://<hostname>/.well-known/storeops-challenge/<token>``, and from then on requests
for that Host carry its brand.

A hostname belongs to one claim at a time: a second claim is refused while the first is
verified or still pending (pending claims lapse after :data:`CLAIM_DAYS`). StoreOps itself
answers the challenge of a pending claim for requests that reach it under that Host, so
pointing the name's DNS at StoreOps is one way to prove control; serving the token from
the owner's current web server is the other.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit
from uuid import UUID

import httpx
import msgspec
from sqlalchemy import Select, delete, select

from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record_change, snapshot
from control_plane.branding import resolve
from control_plane.branding.models import Domain, DomainPurpose, DomainStatus
from control_plane.branding.service import WRITE, refuse
from control_plane.branding.validate import BrandingError
from control_plane.context import Ctx
from control_plane.db.session import system_session
from control_plane.errors import Duplicate, InvalidInput, NotFound
from control_plane.tenancy.models import Partner, Tenant

CLAIM_DAYS = 7
CHALLENGE_PATH = "/.well-known/storeops-challenge/"
CHECK_TIMEOUT_SECONDS = 5.0
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DomainCreate(msgspec.Struct, forbid_unknown_fields=True):
    hostname: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    #: The partner whose portal it serves; or give ``tenant_id`` for a tenant's endpoints.
    partner_id: UUID | None = None
    tenant_id: UUID | None = None


class CheckFailed(InvalidInput):
    type_, title = "domain-unverified", "The domain's challenge did not check out"


def check_hostname(raw: str, reserved: Sequence[str]) -> str:
    """A fully qualified DNS name, lowercase; IDNs as their A-label (punycode) form."""
    name = raw.strip().rstrip(".").lower()
    problem: str | None = None
    ascii_name = name
    if not name.isascii():
        try:
            ascii_name = name.encode("idna").decode("ascii")
        except UnicodeError:
            problem = f"{raw!r} is not a valid internationalised domain name"
    labels = ascii_name.split(".")
    if problem is None:
        if "://" in raw or "/" in raw or ":" in raw:
            problem = f"{raw!r} is a URL or has a port; give the bare hostname"
        elif ascii_name.replace(".", "").isdigit():
            problem = f"{raw!r} is an IP address; give a DNS name"
        elif len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
            problem = (
                f"{raw!r} is not a hostname: use two or more dot-separated labels of "
                "letters, digits and inner hyphens"
            )
        elif len(ascii_name) > 253:
            problem = f"{raw!r} is longer than 253 characters"
        elif labels[-1].isdigit():
            problem = f"{raw!r} ends in a numeric label"
        elif ascii_name in reserved or any(ascii_name.endswith("." + r) for r in reserved):
            problem = f"{ascii_name!r} is the platform's own hostname"
    if problem:
        raise refuse([BrandingError("hostname", problem)], "the domain")
    return ascii_name


def platform_hosts(public_url: str) -> list[str]:
    host = urlsplit(public_url).hostname or ""
    return [h for h in {host} if h and host not in ("localhost", "127.0.0.1")]


async def claim(ctx: Ctx, data: DomainCreate, public_url: str) -> Domain:
    name = check_hostname(data.hostname, platform_hosts(public_url))
    partner_id, tenant_id = await _owner(ctx, data.partner_id, data.tenant_id)
    ctx.principal.require(
        WRITE, partner_id=partner_id, **({"tenant_id": tenant_id} if tenant_id else {})
    )
    now = datetime.now(UTC)
    # Another partner's claim is invisible to the caller: look across the platform.
    async with system_session(ctx.session) as everyone:
        taken = await everyone.scalar(select(Domain).where(Domain.hostname == name))
        if taken is not None and taken.status == DomainStatus.PENDING and _lapsed(taken, now):
            await everyone.execute(delete(Domain).where(Domain.id == taken.id))
            await everyone.commit()
            taken = None
    if taken is not None:
        raise Duplicate(
            f"hostname {name!r} is already claimed"
            + (" by this partner" if taken.partner_id == partner_id else "")
            + f" ({taken.status}); one hostname serves one brand",
            hostname=name,
        )
    domain = Domain(
        hostname=name,
        purpose=DomainPurpose.TENANT if tenant_id else DomainPurpose.PORTAL,
        partner_id=partner_id,
        tenant_id=tenant_id,
        status=DomainStatus.PENDING,
        challenge_token=secrets.token_urlsafe(32),
        expires_at=now + timedelta(days=CLAIM_DAYS),
        created_by=ctx.principal.subject,
    )
    ctx.session.add(domain)
    await ctx.session.flush()
    await record_change(ctx, "domain.claim", domain)
    return domain


def _lapsed(domain: Domain, now: datetime) -> bool:
    return domain.expires_at is not None and domain.expires_at <= now


async def _owner(
    ctx: Ctx, partner_id: UUID | None, tenant_id: UUID | None
) -> tuple[UUID, UUID | None]:
    if tenant_id is not None:
        tenant = await ctx.session.scalar(select(Tenant).where(Tenant.id == tenant_id))
        if tenant is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        if partner_id is not None and partner_id != tenant.partner_id:
            raise refuse(
                [BrandingError("tenant_id", f"tenant {tenant_id} is not partner {partner_id}'s")],
                "the domain",
            )
        return tenant.partner_id, tenant.id
    if partner_id is None:
        raise refuse(
            [BrandingError("partner_id", "give the partner (portal) or tenant_id (endpoints)")],
            "the domain",
        )
    if await ctx.session.scalar(select(Partner.id).where(Partner.id == partner_id)) is None:
        raise NotFound(f"partner {partner_id} does not exist")
    return partner_id, None


async def get(ctx: Ctx, domain_id: UUID) -> Domain:
    found = await ctx.session.scalar(select(Domain).where(Domain.id == domain_id))
    if found is None:
        raise NotFound(f"domain {domain_id} does not exist")
    return found


async def list_(
    ctx: Ctx,
    *,
    partner_id: UUID | None = None,
    tenant_id: UUID | None = None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Domain], str | None]:
    stmt: Select[Any] = select(Domain)
    if partner_id is not None:
        stmt = stmt.where(Domain.partner_id == partner_id)
    if tenant_id is not None:
        stmt = stmt.where(Domain.tenant_id == tenant_id)
    return await fetch_page(ctx.session, stmt, Domain.id, limit=limit, cursor=cursor)


def challenge_url(domain: Domain, scheme: str, port: int | None) -> str:
    authority = domain.hostname + (f":{port}" if port else "")
    return f"{scheme}://{authority}{CHALLENGE_PATH}{domain.challenge_token}"


async def fetch_challenge(url: str, http: httpx.AsyncClient | None = None) -> str:
    """GET the challenge URL (no redirects, a short timeout, at most 1 KiB read). A
    ``*.localhost`` name is loopback by definition (RFC 6761), whatever the resolver says."""
    parts = urlsplit(url)
    target, headers = url, {}
    if (parts.hostname or "").endswith(".localhost"):
        netloc = "127.0.0.1" + (f":{parts.port}" if parts.port else "")
        target, headers = parts._replace(netloc=netloc).geturl(), {"Host": parts.netloc}
    client = http or httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECONDS, follow_redirects=False)
    try:
        async with client.stream("GET", target, headers=headers) as answer:
            if answer.status_code != 200:
                raise CheckFailed(f"GET {url} answered {answer.status_code}, not 200")
            body = b""
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > 1024:
                    break
            return body[:1024].decode("utf-8", "replace").strip()
    except httpx.HTTPError as exc:
        raise CheckFailed(f"GET {url} failed: {type(exc).__name__}: {exc}") from None
    finally:
        if http is None:
            await client.aclose()


async def verify(
    ctx: Ctx,
    domain_id: UUID,
    *,
    scheme: str = "https",
    port: int | None = None,
    http: httpx.AsyncClient | None = None,
) -> Domain:
    """Fetch the challenge; on the right token the domain is verified (and brands its
    requests from then on), otherwise the failure is kept on the domain and reported."""
    domain = await get(ctx, domain_id)
    ctx.principal.require(WRITE, **_node(domain))
    if domain.status == DomainStatus.VERIFIED:
        return domain
    now = datetime.now(UTC)
    if _lapsed(domain, now):
        raise CheckFailed(
            f"the claim on {domain.hostname!r} lapsed at {domain.expires_at:%Y-%m-%d %H:%M} "
            "UTC; delete it and claim the hostname again"
        )
    url = challenge_url(domain, scheme, port)
    before = snapshot(domain)
    error: str | None = None
    try:
        body = await fetch_challenge(url, http)
        if body != domain.challenge_token:
            error = f"GET {url} answered {body[:80]!r}, not the challenge token"
    except CheckFailed as exc:
        error = exc.detail
    domain.checked_at, domain.check_error = now, error
    if error is None:
        domain.status, domain.verified_at, domain.expires_at = DomainStatus.VERIFIED, now, None
    await ctx.session.flush()
    await record_change(
        ctx, "domain.verify" if error is None else "domain.check", domain, before=before
    )
    if error is not None:
        await ctx.session.commit()  # keep the failed check on record
        raise CheckFailed(error, hostname=domain.hostname, challenge_url=url)
    resolve.invalidate()
    return domain


def _node(domain: Domain) -> dict[str, UUID]:
    node = {"partner_id": domain.partner_id}
    if domain.tenant_id is not None:
        node["tenant_id"] = domain.tenant_id
    return node


async def remove(ctx: Ctx, domain_id: UUID) -> None:
    domain = await get(ctx, domain_id)
    ctx.principal.require(WRITE, **_node(domain))
    before = snapshot(domain)
    await ctx.session.delete(domain)
    await ctx.session.flush()
    await record_change(ctx, "domain.delete", domain, before=before, after={})
    resolve.invalidate()


async def challenge_answer(ctx_session: Any, host: str | None, token: str) -> str | None:
    """The token, if a pending claim with it names this Host (see the module notes)."""
    name = resolve.hostname(host)
    if name is None:
        return None
    found = await ctx_session.scalar(
        select(Domain.challenge_token).where(
            Domain.hostname == name,
            Domain.challenge_token == token,
            Domain.status == DomainStatus.PENDING,
        )
    )
    return str(found) if found else None
