"""Publishing, reading, retiring and forking template versions: one rule set for API and CLI."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
import yaml
from sqlalchemy import Select, or_, select, text

from control_plane.api.pagination import fetch_page
from control_plane.audit.service import record
from control_plane.catalog.models import CatalogTemplate, CatalogVersion
from control_plane.context import Ctx
from control_plane.contracts import compat, dsl
from control_plane.contracts.validate import lint
from control_plane.db import utcnow
from control_plane.errors import Conflict, Forbidden, InvalidInput, NotFound
from control_plane.tenancy import service as tenancy
from control_plane.tenancy.models import Partner

#: Lifecycle action -> the status it leads to.
ACTIONS = {"deprecate": "deprecated", "yank": "yanked", "restore": "published"}


class BreakingChange(InvalidInput):
    type_, title = "breaking-change-needs-major", "A breaking change needs a major version"


class ContentChanged(Conflict):
    type_, title = "version-immutable", "Published versions are immutable"


@dataclass(frozen=True)
class Published:
    template: CatalogTemplate
    version: CatalogVersion
    #: False when identical content was already published under this version (a no-op).
    created: bool


async def _owner(ctx: Ctx, owner: str) -> UUID | None:
    """The partner a template's ``owner`` names; None for platform templates."""
    if owner == "platform":
        if not ctx.principal.has("catalog:platform"):
            raise Forbidden("only the platform publishes templates owned by 'platform'")
        return None
    slug = owner.removeprefix("partner:")
    partner = await ctx.session.scalar(select(Partner).where(Partner.slug == slug))
    if partner is None:
        raise NotFound(f"owner {owner!r}: no partner with slug {slug!r}")
    ctx.principal.require("catalog:write", partner_id=partner.id)
    return partner.id


async def publish(ctx: Ctx, source: str, file: str = "<request>") -> Published:
    """Validate and store one version. Identical content again is a no-op; other content
    under a published version, or a breaking change without a major bump, is refused."""
    template, problems = lint(source, file)
    if problems or template is None:
        raise InvalidInput(
            f"{file} is not a valid template ({len(problems)} problem(s)): {problems[0]}",
            problems=[str(p) for p in problems],
        )
    owner_id = await _owner(ctx, template.owner)
    owner_key = str(owner_id) if owner_id else "platform"
    if ctx.session.get_bind().dialect.name == "postgresql":
        # One publish per template line at a time: a concurrent identical publish then
        # finds the version and is a no-op instead of racing to the unique constraint.
        await ctx.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"catalog:{owner_key}:{template.id}"},
        )
    line = await ctx.session.scalar(
        select(CatalogTemplate).where(
            CatalogTemplate.owner_key == owner_key, CatalogTemplate.slug == template.id
        )
    )
    digest = compat.content_hash(template)
    if line is not None:
        existing = await ctx.session.scalar(
            select(CatalogVersion).where(
                CatalogVersion.template_id == line.id, CatalogVersion.semver == template.version
            )
        )
        if existing is not None:
            if existing.content_hash == digest:
                return Published(line, existing, created=False)
            raise ContentChanged(
                f"{template.id} {template.version} is already published with other content; "
                "publish the change under a new version"
            )
        previous = await _latest_before(ctx, line.id, compat.semver(template.version))
        if previous is not None:
            problem = compat.bump_problem(dsl.parse(previous.spec), template)
            if problem:
                raise BreakingChange(f"{template.id}: {problem}")
    else:
        line = CatalogTemplate(
            slug=template.id,
            owner_key=owner_key,
            owner_partner_id=owner_id,
            name=template.name,
            category=template.category,
            summary=template.summary,
        )
        ctx.session.add(line)
        await ctx.session.flush()
    major, minor, patch = compat.semver(template.version)
    version = CatalogVersion(
        template_id=line.id,
        owner_partner_id=owner_id,
        semver=template.version,
        major=major,
        minor=minor,
        patch=patch,
        content_hash=digest,
        source=source,
        spec=compat.canonical(template),
        published_by=ctx.principal.subject,
        published_at=utcnow(),
    )
    ctx.session.add(version)
    if (major, minor, patch) >= await _newest(ctx, line.id):
        line.name, line.category, line.summary = template.name, template.category, template.summary
    await ctx.session.flush()
    await _audit(
        ctx,
        "catalog.publish",
        version,
        after={
            "template": template.id,
            "version": template.version,
            "content_hash": digest,
        },
    )
    return Published(line, version, created=True)


async def _newest(ctx: Ctx, line_id: UUID) -> tuple[int, int, int]:
    row = (
        await ctx.session.execute(
            select(CatalogVersion.major, CatalogVersion.minor, CatalogVersion.patch)
            .where(CatalogVersion.template_id == line_id)
            .order_by(
                CatalogVersion.major.desc(),
                CatalogVersion.minor.desc(),
                CatalogVersion.patch.desc(),
            )
            .limit(1)
        )
    ).first()
    return (row[0], row[1], row[2]) if row else (-1, -1, -1)


async def _latest_before(
    ctx: Ctx, line_id: UUID, bound: tuple[int, int, int]
) -> CatalogVersion | None:
    rows = (
        await ctx.session.scalars(
            select(CatalogVersion).where(CatalogVersion.template_id == line_id)
        )
    ).all()
    earlier = [v for v in rows if (v.major, v.minor, v.patch) < bound]
    return max(earlier, key=lambda v: (v.major, v.minor, v.patch), default=None)


async def get_template(ctx: Ctx, template_id: UUID) -> CatalogTemplate:
    line = await ctx.session.scalar(
        select(CatalogTemplate).where(CatalogTemplate.id == template_id)
    )
    if line is None:
        raise NotFound(f"template {template_id} does not exist")
    return line


async def find_template(ctx: Ctx, slug: str, owner: str = "platform") -> CatalogTemplate:
    """By slug, for the CLI: ``owner`` is "platform" or a partner slug."""
    stmt = select(CatalogTemplate).where(CatalogTemplate.slug == slug)
    if owner == "platform":
        stmt = stmt.where(CatalogTemplate.owner_partner_id.is_(None))
    else:
        stmt = stmt.join(Partner, Partner.id == CatalogTemplate.owner_partner_id).where(
            Partner.slug == owner
        )
    line = await ctx.session.scalar(stmt)
    if line is None:
        raise NotFound(f"no template {slug!r} owned by {owner}")
    return line


async def list_templates(
    ctx: Ctx,
    *,
    category: str | None = None,
    owner: str | None = None,
    tenant_id: UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[Sequence[CatalogTemplate], str | None]:
    """Templates the caller may see; with ``tenant_id``, those that tenant may run: its
    partner's and the platform's, narrowed by its effective ``allowed_templates``."""
    stmt: Select[Any] = select(CatalogTemplate)
    if tenant_id is not None:
        tenant = await tenancy.get_tenant(ctx, tenant_id)
        stmt = stmt.where(
            or_(
                CatalogTemplate.owner_partner_id.is_(None),
                CatalogTemplate.owner_partner_id == tenant.partner_id,
            )
        )
        allowed = (await tenancy.effective_settings(ctx, tenant_id))[0].get("allowed_templates")
        if isinstance(allowed, list) and "*" not in allowed:
            stmt = stmt.where(CatalogTemplate.slug.in_([str(a) for a in allowed]))
    if category:
        stmt = stmt.where(CatalogTemplate.category == category)
    if owner == "platform":
        stmt = stmt.where(CatalogTemplate.owner_partner_id.is_(None))
    elif owner:
        stmt = stmt.where(CatalogTemplate.owner_key == owner)
    return await fetch_page(ctx.session, stmt, CatalogTemplate.id, limit=limit, cursor=cursor)


async def versions(ctx: Ctx, template_id: UUID) -> list[CatalogVersion]:
    await get_template(ctx, template_id)
    rows = (
        await ctx.session.scalars(
            select(CatalogVersion).where(CatalogVersion.template_id == template_id)
        )
    ).all()
    return sorted(rows, key=lambda v: (v.major, v.minor, v.patch))


async def get_version(ctx: Ctx, template_id: UUID, version: str) -> CatalogVersion:
    row = await ctx.session.scalar(
        select(CatalogVersion).where(
            CatalogVersion.template_id == template_id, CatalogVersion.semver == version
        )
    )
    if row is None:
        raise NotFound(f"template {template_id} has no version {version!r}")
    return row


async def set_status(
    ctx: Ctx, template_id: UUID, version: str, action: str, note: str | None = None
) -> CatalogVersion:
    """Deprecate (still deployable, flagged), yank (no new deployments) or restore."""
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    status = ACTIONS[action]
    row = await get_version(ctx, template_id, version)
    _require_owner(ctx, row.owner_partner_id)
    before = {"status": row.status}
    row.status, row.status_note = status, note
    await ctx.session.flush()
    await _audit(
        ctx, f"catalog.{status}", row, before=before, after={"status": status, "note": note}
    )
    return row


async def _audit(
    ctx: Ctx,
    action: str,
    version: CatalogVersion,
    *,
    after: dict[str, Any],
    before: dict[str, Any] | None = None,
) -> None:
    await record(
        ctx,
        action,
        target_type="template_version",
        target_id=version.id,
        partner_id=version.owner_partner_id,
        before=before,
        after=after,
    )


def _require_owner(ctx: Ctx, owner_partner_id: UUID | None) -> None:
    if owner_partner_id is None:
        if not ctx.principal.has("catalog:platform"):
            raise Forbidden("only the platform changes platform templates")
    else:
        ctx.principal.require("catalog:write", partner_id=owner_partner_id)


async def fork(
    ctx: Ctx, template_id: UUID, version: str, partner_id: UUID, slug: str | None = None
) -> Published:
    """Copy a version into a partner's private catalog; the fork remembers its upstream."""
    upstream = await get_template(ctx, template_id)
    source_version = await get_version(ctx, template_id, version)
    partner = await ctx.session.scalar(select(Partner).where(Partner.id == partner_id))
    if partner is None:
        raise NotFound(f"partner {partner_id} does not exist")
    spec = dict(source_version.spec)
    spec["owner"] = f"partner:{partner.slug}"
    if slug:
        spec["id"] = slug
    source = f"# Forked from {upstream.slug} {version}\n" + yaml.safe_dump(spec, sort_keys=False)
    result = await publish(ctx, source, f"fork of {upstream.slug} {version}")
    if result.created:
        result.template.forked_from_id = upstream.id
        result.template.forked_from_version = version
        await ctx.session.flush()
    return result


async def upstream_news(ctx: Ctx, line: CatalogTemplate) -> list[str]:
    """Upstream versions newer than the one a fork was taken from."""
    if line.forked_from_id is None or line.forked_from_version is None:
        return []
    base = compat.semver(line.forked_from_version)
    rows = await versions(ctx, line.forked_from_id)
    return [v.semver for v in rows if (v.major, v.minor, v.patch) > base and v.status != "yanked"]


@dataclass(frozen=True)
class Diff:
    old: str
    new: str
    breaking: list[str]
    unified: str


async def diff(ctx: Ctx, template_id: UUID, old: str | None = None, new: str | None = None) -> Diff:
    """Two versions compared; by default the newest against the one before it (a first
    version compares with itself: no changes)."""
    if old is None or new is None:
        known = [v.semver for v in await versions(ctx, template_id)]
        new = new or known[-1]
        if old is None:
            earlier = known[: known.index(new)] if new in known else []
            old = earlier[-1] if earlier else new
    a, b = await get_version(ctx, template_id, old), await get_version(ctx, template_id, new)
    lines = difflib.unified_diff(
        a.source.splitlines(keepends=True),
        b.source.splitlines(keepends=True),
        fromfile=f"{old}.yaml",
        tofile=f"{new}.yaml",
    )
    return Diff(
        old=old,
        new=new,
        breaking=compat.breaking_changes(dsl.parse(a.spec), dsl.parse(b.spec)),
        unified="".join(lines),
    )


def spec_of(version: CatalogVersion) -> dsl.Template:
    return msgspec.convert(version.spec, dsl.Template)
