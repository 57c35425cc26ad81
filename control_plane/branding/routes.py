"""Branding over HTTP: each partner's and tenant's theme versions and images, custom
domains, and the public brand document, images and challenge answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.types import ControllerRouterHandler
from sqlalchemy import select

from control_plane.api.auth import requires
from control_plane.api.pagination import Page
from control_plane.api.params import CtxDep, Cursor, Limit
from control_plane.api.responses import page
from control_plane.branding import domains, resolve, service
from control_plane.branding.models import BrandAsset, Domain, Theme, ThemeStatus
from control_plane.branding.theme import ThemeInput
from control_plane.config import Settings
from control_plane.contracts.brand import Brand, etag
from control_plane.db import Database, Scope
from control_plane.errors import NotFound

#: The partner or tenant a brand route is about, loaded from its path (404 if unseen).
OwnerDep = NamedDependency[service.Owner]


class ThemeVersion(msgspec.Struct, kw_only=True):
    number: int
    status: str
    document: dict[str, Any]
    created_by: str
    created_at: datetime
    published_at: datetime | None
    published_by: str | None
    #: A draft only: open any page through this link to see the draft.
    preview_url: str | None = None


class BrandState(msgspec.Struct, kw_only=True):
    owner: str
    published: ThemeVersion | None
    draft: ThemeVersion | None
    #: What the owner's pages show now.
    effective: Brand


class AssetView(msgspec.Struct, kw_only=True):
    sha256: str
    media_type: str
    width: int | None
    height: int | None
    size: int
    url: str


class DomainView(msgspec.Struct, kw_only=True):
    id: UUID
    hostname: str
    purpose: str
    partner_id: UUID
    tenant_id: UUID | None
    status: str
    #: Serve ``challenge_token`` as the whole body at ``challenge_path`` on the hostname.
    challenge_token: str
    challenge_path: str
    expires_at: datetime | None
    verified_at: datetime | None
    checked_at: datetime | None
    check_error: str | None
    created_at: datetime


def _base(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/")


def version_view(theme: Theme, base: str) -> ThemeVersion:
    preview = (
        f"{base}/login?preview={theme.preview_token}"
        if theme.status == ThemeStatus.DRAFT and theme.preview_token
        else None
    )
    return ThemeVersion(
        number=theme.number,
        status=theme.status,
        document=theme.document,
        created_by=theme.created_by,
        created_at=theme.created_at,
        published_at=theme.published_at,
        published_by=theme.published_by,
        preview_url=preview,
    )


def domain_view(domain: Domain) -> DomainView:
    return DomainView(
        id=domain.id,
        hostname=domain.hostname,
        purpose=domain.purpose,
        partner_id=domain.partner_id,
        tenant_id=domain.tenant_id,
        status=domain.status,
        challenge_token=domain.challenge_token,
        challenge_path=domains.CHALLENGE_PATH + domain.challenge_token,
        expires_at=domain.expires_at,
        verified_at=domain.verified_at,
        checked_at=domain.checked_at,
        check_error=domain.check_error,
        created_at=domain.created_at,
    )


def brand_controller(kind: Literal["partner", "tenant"]) -> type[Controller]:
    """The same theme endpoints under ``/api/v1/partners/{id}/brand`` and
    ``/api/v1/tenants/{id}/brand``."""
    Kind = kind.capitalize()
    whose = "the partner's theme" if kind == "partner" else "the tenant's override"

    async def load_owner(ctx: CtxDep, request: Request[Any, Any, Any]) -> service.Owner:
        return await service.owner(ctx, kind, request.path_params[f"{kind}_id"])

    class BrandController(Controller):
        path = f"/api/v1/{kind}s/{{{kind}_id:uuid}}/brand"
        tags = ["branding"]
        guards = [requires(service.READ)]
        dependencies = {"who": Provide(load_owner)}

        @get("/", operation_id=f"get{Kind}Brand", description=f"{whose}: published, draft, "
             "and the effective brand its pages show.")  # fmt: skip
        async def state(
            self, ctx: CtxDep, request: Request[Any, Any, Any], who: OwnerDep
        ) -> BrandState:
            base = _base(request)
            published = await service.current(ctx, who, ThemeStatus.PUBLISHED)
            draft = await service.current(ctx, who, ThemeStatus.DRAFT)
            return BrandState(
                owner=who.key,
                published=version_view(published, base) if published else None,
                draft=version_view(draft, base) if draft else None,
                effective=await service.effective(ctx, who, base),
            )

        @get("/versions", operation_id=f"list{Kind}ThemeVersions",
             description="Every version, oldest first.")  # fmt: skip
        async def versions(
            self,
            ctx: CtxDep,
            request: Request[Any, Any, Any],
            who: OwnerDep,
            limit: Limit = 50,
            cursor: Cursor = None,
        ) -> Page[ThemeVersion]:
            rows, nxt = await service.list_versions(ctx, who, limit=limit, cursor=cursor)
            base = _base(request)
            return page(rows, nxt, ThemeVersion, lambda t: version_view(t, base))

        @put("/draft", operation_id=f"save{Kind}ThemeDraft", guards=[requires(service.WRITE)],
             description="Save the draft (a new version; an earlier draft is discarded). Every "
             "field is optional and inherits when left out; colours come as a whole palette. "
             "The answer's preview_url shows the draft on any page.")  # fmt: skip
        async def save_draft(
            self,
            ctx: CtxDep,
            request: Request[Any, Any, Any],
            who: OwnerDep,
            data: JSONBody[ThemeInput],
        ) -> Response[ThemeVersion]:
            theme = await service.save_draft(ctx, who, data)
            return Response(version_view(theme, _base(request)), status_code=201)

        @delete("/draft", operation_id=f"discard{Kind}ThemeDraft",
                guards=[requires(service.WRITE)], description="Discard the draft.")  # fmt: skip
        async def discard(self, ctx: CtxDep, who: OwnerDep) -> None:
            await service.discard_draft(ctx, who)

        @post("/publish", operation_id=f"publish{Kind}Theme", status_code=200,
              guards=[requires(service.WRITE)],
              description="Publish the draft; ?version= must name it when given.")  # fmt: skip
        async def publish(
            self,
            ctx: CtxDep,
            request: Request[Any, Any, Any],
            who: OwnerDep,
            version: FromQuery[int | None] = None,
        ) -> ThemeVersion:
            return version_view(await service.publish(ctx, who, version), _base(request))

        @post("/rollback", operation_id=f"rollback{Kind}Theme", status_code=200,
              guards=[requires(service.WRITE)],
              description="Publish again the version published before this one.")  # fmt: skip
        async def rollback(
            self, ctx: CtxDep, request: Request[Any, Any, Any], who: OwnerDep
        ) -> ThemeVersion:
            return version_view(await service.rollback(ctx, who), _base(request))

        @post("/assets", operation_id=f"upload{Kind}BrandAsset", status_code=201,
              guards=[requires(service.WRITE)],
              description="Upload a logo or favicon as the raw request body. It is judged by "
              "its content (PNG, JPEG, WebP, or SVG that cannot run script); the answer's "
              "sha256 is what a theme's logo or favicon names.")  # fmt: skip
        async def upload(
            self,
            ctx: CtxDep,
            request: Request[Any, Any, Any],
            who: OwnerDep,
            role: FromQuery[Literal["logo", "favicon"]] = "logo",
        ) -> AssetView:
            asset = await service.upload_asset(ctx, who, role, await request.body())
            return AssetView(
                sha256=asset.sha256,
                media_type=asset.media_type,
                width=asset.width,
                height=asset.height,
                size=asset.size,
                url=resolve.asset_url(_base(request), asset.sha256),
            )

    BrandController.__name__ = f"{Kind}BrandController"
    return BrandController


PartnerBrandController = brand_controller("partner")
TenantBrandController = brand_controller("tenant")


class DomainController(Controller):
    path = "/api/v1/domains"
    tags = ["branding"]
    guards = [requires(service.READ)]

    @get("/", operation_id="listDomains", description="Domains the caller sees.")
    async def list_(
        self,
        ctx: CtxDep,
        partner_id: FromQuery[UUID | None] = None,
        tenant_id: FromQuery[UUID | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[DomainView]:
        rows, nxt = await domains.list_(
            ctx, partner_id=partner_id, tenant_id=tenant_id, limit=limit, cursor=cursor
        )
        return page(rows, nxt, DomainView, domain_view)

    @post("/", operation_id="claimDomain", guards=[requires(service.WRITE)],
          opt={"idempotent": True},
          description="Claim a hostname for a partner's portal (partner_id) or a tenant's "
          "endpoints (tenant_id). It brands requests once verified: serve challenge_token at "
          "challenge_path on the hostname, then POST .../verify.")  # fmt: skip
    async def claim(
        self, ctx: CtxDep, request: Request[Any, Any, Any], data: JSONBody[domains.DomainCreate]
    ) -> Response[DomainView]:
        settings: Settings = request.app.state.settings
        domain = await domains.claim(ctx, data, settings.public_url)
        return Response(domain_view(domain), status_code=201)

    @get("/{domain_id:uuid}", operation_id="getDomain", description="One domain.")
    async def get_(self, ctx: CtxDep, domain_id: FromPath[UUID]) -> DomainView:
        return domain_view(await domains.get(ctx, domain_id))

    @post("/{domain_id:uuid}/verify", operation_id="verifyDomain", status_code=200,
          guards=[requires(service.WRITE)],
          description="Fetch the challenge from the hostname; 422 domain-unverified says what "
          "came back instead.")  # fmt: skip
    async def verify(
        self, ctx: CtxDep, request: Request[Any, Any, Any], domain_id: FromPath[UUID]
    ) -> DomainView:
        settings: Settings = request.app.state.settings
        domain = await domains.verify(
            ctx,
            domain_id,
            scheme=settings.domain_check_scheme,
            port=settings.domain_check_port or None,
            http=getattr(request.app.state, "domain_http", None),
        )
        return domain_view(domain)

    @delete("/{domain_id:uuid}", operation_id="deleteDomain", guards=[requires(service.WRITE)],
            description="Release the hostname; its requests get the platform brand.")  # fmt: skip
    async def delete_(self, ctx: CtxDep, domain_id: FromPath[UUID]) -> None:
        await domains.remove(ctx, domain_id)


# --- public -------------------------------------------------------------------------------


async def request_brand(request: Request[Any, Any, Any], absolute: bool = False) -> Brand:
    """The brand of this request's Host (or of the draft its ``?preview=`` names)."""
    cached = request.scope.get("state", {}).get("brand")
    if isinstance(cached, Brand) and not absolute:
        return cached
    db: Database = request.app.state.db
    return await resolve.brand_for_request(
        db,
        request.headers.get("host"),
        _base(request) if absolute else "",
        request.query_params.get("preview"),
    )


@get("/api/v1/brand", operation_id="getBrand", tags=["branding"], description="The theme "
     "document for this Host (platform default for an unknown or unverified host); "
     "?preview=<token> shows a draft.")  # fmt: skip
async def get_brand(request: Request[Any, Any, Any]) -> Response[Brand]:
    brand = await request_brand(request, absolute=True)
    tag = etag(brand)
    preview = "preview" in request.query_params
    headers = {
        "ETag": tag,
        "Cache-Control": "no-store" if preview else "public, max-age=60",
        "Vary": "Host",
    }
    if request.headers.get("if-none-match") == tag:
        return Response(None, status_code=304, headers=headers)  # type: ignore[arg-type]
    return Response(brand, headers=headers)


@get("/brand-assets/{sha256:str}", include_in_schema=False)
async def get_asset(request: Request[Any, Any, Any], sha256: FromPath[str]) -> Response[bytes]:
    db: Database = request.app.state.db
    async with db.session(Scope.system()) as session:
        row = (
            await session.execute(
                select(BrandAsset.media_type, BrandAsset.data)
                .where(BrandAsset.sha256 == sha256)
                .limit(1)
            )
        ).first()
    if row is None:
        raise NotFound(f"no brand image has SHA-256 {sha256}")
    return Response(
        row[1],
        media_type=row[0],
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
            # An SVG opened on its own still cannot run anything.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        },
    )


@get(domains.CHALLENGE_PATH + "{token:str}", include_in_schema=False, media_type="text/plain")
async def challenge(request: Request[Any, Any, Any], token: FromPath[str]) -> str:
    db: Database = request.app.state.db
    async with db.session(Scope.system()) as session:
        answer = await domains.challenge_answer(session, request.headers.get("host"), token)
    if answer is None:
        raise NotFound("no pending domain claim for this host has that token")
    return answer


ROUTES: list[ControllerRouterHandler] = [
    PartnerBrandController,
    TenantBrandController,
    DomainController,
    get_brand,
    get_asset,
    challenge,
]
