"""The tenant's brand as the portal serves it: its stylesheet and its images. Images
travel inline in the desired state, so the portal needs nothing from the control plane and
its pages keep a same-origin-only content security policy."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.params import FromPath

from control_plane.contracts.brand import DEFAULT, Asset, Brand, stylesheet
from tenant_runtime.api.deps import runtime_of
from tenant_runtime.api.problems import NotFound

#: An image is named by its content's SHA-256: cache it for good; and an SVG opened on its
#: own still cannot run anything.
IMAGE_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
}


def current_brand(request: Request[Any, Any, Any]) -> Brand:
    """The brand the runtime holds; before its first desired state, the platform's look
    under the name the app was given."""
    brand = runtime_of(request).brand
    if brand is not None:
        return brand
    return msgspec.structs.replace(DEFAULT, product_name=request.app.state.brand_name)


def inline_image(brand: Brand, sha256: str) -> Asset | None:
    """The brand's logo or favicon with this SHA-256, when its bytes came with it."""
    for asset in (brand.logo, brand.favicon):
        if asset is not None and asset.sha256 == sha256 and asset.data:
            return asset
    return None


@get("/portal/brand.css", operation_id="portalBrandStylesheet", include_in_schema=False)
async def brand_css(request: Request[Any, Any, Any]) -> Response[str]:
    """The brand's CSS variables, which portal.css reads (pages carry no inline style)."""
    css = stylesheet(current_brand(request))
    tag = '"' + hashlib.sha256(css.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": tag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == tag:
        return Response("", status_code=304, headers=headers)
    return Response(css, media_type="text/css", headers=headers)


@get("/portal/brand/{sha256:str}", operation_id="portalBrandImage", include_in_schema=False)
async def brand_image(request: Request[Any, Any, Any], sha256: FromPath[str]) -> Response[bytes]:
    asset = inline_image(current_brand(request), sha256)
    if asset is None:
        raise NotFound(f"this portal's brand has no image with SHA-256 {sha256}")
    return Response(asset.content(), media_type=asset.media_type, headers=IMAGE_HEADERS)
