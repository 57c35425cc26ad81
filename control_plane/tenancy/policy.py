"""Inherited settings (platform -> partner -> tenant) and store calendar validation."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from control_plane.contracts.triage import TriageSettings
from control_plane.errors import InvalidInput

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: What every tenant gets unless its partner or itself says otherwise.
PLATFORM_DEFAULTS: dict[str, Any] = {
    "allowed_templates": ["*"],
    "quotas": {"runs_per_day": 100_000, "stores": 5_000, "deployments": 200},
    #: The partner's commercial plan; it decides, e.g., whether "Powered by" may be hidden.
    #: The brand itself is versioned in control_plane.branding, not here.
    "plan": "standard",
    "sla_calendar": {"opening_hours": {}, "holidays": []},
}


def resolve_settings(
    partner: dict[str, Any] | None, tenant: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The one resolution function: later levels override earlier ones.

    Mappings merge key by key (recursively); lists and scalars replace. Returns the
    effective settings and, per top-level key, the deepest level that set it.
    """
    effective = copy.deepcopy(PLATFORM_DEFAULTS)
    sources = dict.fromkeys(effective, "platform")
    for level, layer in (("partner", partner or {}), ("tenant", tenant or {})):
        for key, value in layer.items():
            if value is None:
                continue
            effective[key] = _merge(effective.get(key), value)
            sources[key] = level
    return effective, sources


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base.get(key), value)
        return merged
    return copy.deepcopy(override)


def triage_settings(effective: dict[str, Any]) -> TriageSettings | None:
    """The triage settings a tenant's runtime gets: the merged partner and tenant fields
    over the contract's defaults; None when neither level set any."""
    layer = effective.get("triage")
    if layer is None:
        return None
    return msgspec.convert(layer, TriageSettings)


def settings_to_dict(settings: msgspec.Struct) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(settings)
    calendar = data.get("sla_calendar")
    if isinstance(calendar, dict):
        if calendar.get("timezone"):
            check_timezone(calendar["timezone"], "settings.sla_calendar.timezone")
        check_opening_hours(
            calendar.get("opening_hours") or {}, "settings.sla_calendar.opening_hours"
        )
        check_holidays(calendar.get("holidays") or [], "settings.sla_calendar.holidays")
    return data


def check_timezone(name: str, field: str = "timezone") -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"{field}: {name!r} is not an IANA time zone (for example 'Europe/Paris')",
            field=field,
        ) from None
    return name


def check_opening_hours(hours: dict[str, Any], field: str = "opening_hours") -> dict[str, Any]:
    """Days are mon..sun; each holds ordered, non-overlapping [open, close) intervals."""
    for day, intervals in hours.items():
        if day not in DAYS:
            raise InvalidInput(
                f"{field}: unknown day {day!r}; use one of {', '.join(DAYS)}", field=field
            )
        previous_close = ""
        for opens, closes in intervals:
            if opens >= closes:
                raise InvalidInput(
                    f"{field}.{day}: interval {opens}-{closes} closes before it opens", field=field
                )
            if previous_close and opens < previous_close:
                raise InvalidInput(
                    f"{field}.{day}: interval {opens}-{closes} overlaps the one before it or is out of order",
                    field=field,
                )
            previous_close = closes
    return hours


def check_holidays(holidays: list[str], field: str = "holidays") -> list[str]:
    for value in holidays:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"{field}: {value!r} is not a calendar date (YYYY-MM-DD)", field=field
            ) from None
    return sorted(set(holidays))
