"""Parameters every route shares: the service context, paging, ``If-Match``; and the
pages' optional text query parameters and URL-encoded forms."""

from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, HeaderParameter, Parameter

from control_plane.api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from control_plane.context import Ctx

#: The per-request service context (scoped session, caller, request id).
CtxDep = NamedDependency[Ctx]
Limit = Annotated[
    int, Parameter(ge=1, le=MAX_LIMIT, description=f"page size (default {DEFAULT_LIMIT})")
]
Cursor = Annotated[str | None, Parameter(description="next_cursor from the previous page")]
IfMatch = Annotated[
    str | None, HeaderParameter(name="If-Match", description="the ETag you last saw")
]
#: An optional text query parameter of a page (filters, a chosen partner...).
Text = Annotated[str | None, Parameter(required=False)]
#: A page form's fields, URL-encoded.
Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
