"""Inherited settings resolve in one place; calendars are validated precisely."""

from __future__ import annotations

import pytest

from control_plane.errors import InvalidInput
from control_plane.tenancy.policy import (
    PLATFORM_DEFAULTS,
    check_holidays,
    check_opening_hours,
    check_timezone,
    resolve_settings,
)


def test_partner_defaults_then_tenant_overrides() -> None:
    partner = {"quotas": {"runs_per_day": 10}, "allowed_templates": ["stock-transfer", "returns"]}
    tenant = {"quotas": {"stores": 3}, "allowed_templates": ["returns"]}
    effective, sources = resolve_settings(partner, tenant)
    assert effective["quotas"] == {
        "runs_per_day": 10,
        "stores": 3,
        "deployments": PLATFORM_DEFAULTS["quotas"]["deployments"],
    }
    assert effective["allowed_templates"] == ["returns"]  # lists replace, they do not merge
    assert sources == {
        "allowed_templates": "tenant",
        "quotas": "tenant",
        "plan": "platform",
        "sla_calendar": "platform",
    }


def test_resolution_does_not_mutate_its_inputs_or_defaults() -> None:
    partner = {"quotas": {"runs_per_day": 10}}
    effective, _ = resolve_settings(partner, None)
    effective["quotas"]["runs_per_day"] = 99
    assert partner["quotas"]["runs_per_day"] == 10
    assert PLATFORM_DEFAULTS["quotas"]["runs_per_day"] == 100_000


def test_calendar_validation_names_the_problem() -> None:
    check_opening_hours({"mon": [["08:00", "12:00"], ["13:00", "20:00"]]})
    with pytest.raises(InvalidInput, match="unknown day 'monday'"):
        check_opening_hours({"monday": [["08:00", "12:00"]]})
    with pytest.raises(InvalidInput, match="closes before it opens"):
        check_opening_hours({"tue": [["20:00", "08:00"]]})
    with pytest.raises(InvalidInput, match="overlaps"):
        check_opening_hours({"wed": [["08:00", "14:00"], ["13:00", "20:00"]]})
    assert check_holidays(["2026-12-25", "2026-01-01", "2026-12-25"]) == [
        "2026-01-01",
        "2026-12-25",
    ]
    with pytest.raises(InvalidInput, match="2026-02-30"):
        check_holidays(["2026-02-30"])
    with pytest.raises(InvalidInput, match="IANA"):
        check_timezone("Europe/Atlantis")
