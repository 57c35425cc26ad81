"""Reading the fleet grid's query string: filters, sort and page, or a precise 422."""

from __future__ import annotations

from typing import Literal

import msgspec

from control_plane.errors import InvalidInput
from control_plane.health.assess import Status

SORTS = ("status", "name", "partner", "sla", "alerts", "heartbeat", "runs", "dead_letters")
Sort = Literal["status", "name", "partner", "sla", "alerts", "heartbeat", "runs", "dead_letters"]
MAX_LIMIT = 500
DEFAULT_LIMIT = 100


class FleetFilter(msgspec.Struct, frozen=True):
    """What the grid shows; every field empty means the whole visible fleet."""

    partners: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    statuses: tuple[Status, ...] = ()
    sort: Sort = "status"
    descending: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def _split(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))


def parse_filter(
    *,
    partner: str | None = None,
    region: str | None = None,
    status: str | None = None,
    sort: str | None = None,
    limit: int | str | None = None,
    offset: int | str | None = None,
) -> FleetFilter:
    """The filter from query-string values; anything unusable is a precise 422."""
    statuses: list[Status] = []
    for value in _split(status):
        try:
            statuses.append(Status(value.lower()))
        except ValueError:
            allowed = ", ".join(s.value for s in Status)
            raise InvalidInput(
                f"status {value!r} is not a health status; use one or more of {allowed},"
                " comma-separated"
            ) from None
    descending = False
    key = (sort or "status").strip()
    if key.startswith("-"):
        descending, key = True, key[1:]
    if key not in SORTS:
        raise InvalidInput(
            f"sort {sort!r} is not a sortable column; use one of {', '.join(SORTS)},"
            " prefixed with '-' for descending"
        )
    partners, regions = _split(partner), _split(region)
    for name, values in (("partner", partners), ("region", regions)):
        for value in values:
            if len(value) > 63:
                raise InvalidInput(
                    f"{name} {value[:20]!r}... is too long for a {name}"
                    f" {'id or slug' if name == 'partner' else 'code'} (63 characters at most)"
                )
    return FleetFilter(
        partners=partners,
        regions=regions,
        statuses=tuple(statuses),
        sort=key,  # type: ignore[arg-type]
        descending=descending,
        limit=_bounded("limit", limit, DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=_bounded("offset", offset, 0, 0, None),
    )


def _bounded(name: str, raw: int | str | None, default: int, low: int, high: int | None) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidInput(f"{name} must be {span}, got {value}")
    return value
