"""Optimistic concurrency: ``ETag`` out, ``If-Match`` in, 412 on a stale write."""

from __future__ import annotations

from control_plane.db import Entity
from control_plane.errors import PreconditionFailed


def check_if_match(obj: Entity, if_match: str | None) -> None:
    """Refuse the write unless ``If-Match`` (when given) names the current version."""
    if if_match is None or if_match.strip() == "*":
        return
    tags = {t.strip().removeprefix("W/") for t in if_match.split(",")}
    if obj.etag not in tags:
        raise PreconditionFailed(
            f"If-Match {if_match} does not match the current ETag {obj.etag}; "
            "fetch the resource again and retry"
        )
