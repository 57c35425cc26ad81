"""Parameters every route shares: the service context, paging, and ``If-Match``."""

from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency
from litestar.params import HeaderParameter, Parameter

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
