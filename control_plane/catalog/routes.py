"""HTTP routes for the template catalog (``/api/v1/catalog``)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, Limit
from control_plane.catalog import schemas, service
from control_plane.catalog.models import CatalogTemplate, CatalogVersion
from control_plane.context import Ctx
from control_plane.contracts import dsl
from control_plane.contracts.diagram import mermaid


async def _template(ctx: Ctx, line: CatalogTemplate) -> schemas.Template:
    versions = await service.versions(ctx, line.id)
    return schemas.Template(
        id=line.id,
        slug=line.slug,
        owner=line.owner_key,
        name=line.name,
        category=line.category,
        summary=line.summary,
        forked_from_id=line.forked_from_id,
        forked_from_version=line.forked_from_version,
        upstream_updates=await service.upstream_news(ctx, line),
        versions=[v.semver for v in versions],
        version=line.version,
        created_at=line.created_at,
        updated_at=line.updated_at,
    )


async def _published(ctx: Ctx, result: service.Published) -> Response[schemas.Published]:
    """201 when a version was created, 200 when identical content was already there."""
    body = schemas.Published(
        created=result.created,
        template=await _template(ctx, result.template),
        version=_version(result.version),
    )
    return Response(body, status_code=201 if result.created else 200)


def _version(row: CatalogVersion) -> schemas.Version:
    return schemas.Version(
        id=row.id,
        template_id=row.template_id,
        semver=row.semver,
        status=row.status,
        status_note=row.status_note,
        content_hash=row.content_hash,
        published_by=row.published_by,
        published_at=row.published_at,
        spec=row.spec,
        source=row.source,
        diagram=mermaid(service.spec_of(row)),
    )


class CatalogController(Controller):
    path = "/api/v1/catalog"
    tags = ["catalog"]
    guards = [requires("catalog:read")]

    @get("/schema", operation_id="getDslSchema", description="The workflow DSL as JSON Schema.")
    async def schema(self) -> dict[str, Any]:
        return dsl.json_schema()

    @post(
        "/templates",
        operation_id="publishTemplate",
        opt={"idempotent": True},
        description="Publish one template version (YAML in `source`). Identical content "
        "under an existing version is a no-op (200); new versions are 201.",
    )
    async def publish(
        self, ctx: CtxDep, data: JSONBody[schemas.PublishRequest]
    ) -> Response[schemas.Published]:
        result = await service.publish(ctx, data.source)
        return await _published(ctx, result)

    @get("/templates", operation_id="listTemplates")
    async def list_(
        self,
        ctx: CtxDep,
        category: FromQuery[str | None] = None,
        owner: FromQuery[str | None] = None,
        tenant_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[schemas.Template]:
        rows, nxt = await service.list_templates(
            ctx, category=category, owner=owner, tenant_id=tenant_id, limit=limit, cursor=cursor
        )
        return Page(items=[await _template(ctx, r) for r in rows], next_cursor=nxt)

    @get("/templates/{template_id:uuid}", operation_id="getTemplate")
    async def get_(self, ctx: CtxDep, template_id: FromPath[UUID]) -> schemas.Template:
        return await _template(ctx, await service.get_template(ctx, template_id))

    @get("/templates/{template_id:uuid}/versions/{semver:str}", operation_id="getTemplateVersion")
    async def version(
        self, ctx: CtxDep, template_id: FromPath[UUID], semver: FromPath[str]
    ) -> schemas.Version:
        return _version(await service.get_version(ctx, template_id, semver))

    @post(
        "/templates/{template_id:uuid}/versions/{semver:str}/{status:str}",
        status_code=200,
        operation_id="setTemplateVersionStatus",
        description="status: deprecate, yank or restore.",
    )
    async def set_status(
        self,
        ctx: CtxDep,
        template_id: FromPath[UUID],
        semver: FromPath[str],
        status: FromPath[str],
        data: JSONBody[schemas.StatusChange | None] = None,
    ) -> schemas.Version:
        note = data.note if data else None
        return _version(await service.set_status(ctx, template_id, semver, status, note))

    @post(
        "/templates/{template_id:uuid}/fork", operation_id="forkTemplate", opt={"idempotent": True}
    )
    async def fork(
        self, ctx: CtxDep, template_id: FromPath[UUID], data: JSONBody[schemas.ForkRequest]
    ) -> Response[schemas.Published]:
        result = await service.fork(ctx, template_id, data.version, data.partner_id, data.slug)
        return await _published(ctx, result)

    @get(
        "/templates/{template_id:uuid}/diff",
        operation_id="diffTemplateVersions",
        description="?from=&to= (versions); by default the latest version against the one before.",
    )
    async def diff(
        self,
        ctx: CtxDep,
        template_id: FromPath[UUID],
        from_version: Annotated[str | None, QueryParameter(name="from")] = None,
        to: FromQuery[str | None] = None,
    ) -> schemas.Diff:
        result = await service.diff(ctx, template_id, from_version, to)
        return schemas.Diff(
            from_version=result.old,
            to_version=result.new,
            breaking_changes=result.breaking,
            unified_diff=result.unified,
        )
