"""Content hashes and semver discipline between template versions."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import msgspec

from control_plane.contracts import dsl


def canonical(template: dsl.Template) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(template)
    return data


def content_hash(template: dsl.Template) -> str:
    """SHA-256 of the parsed template: comments and layout do not change it."""
    text = json.dumps(canonical(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def semver(version: str) -> tuple[int, int, int]:
    core = version.split("-", 1)[0].split("+", 1)[0]
    major, minor, patch = (int(x) for x in core.split("."))
    return major, minor, patch


def _trigger_key(trigger: dsl.Trigger) -> str:
    data = msgspec.to_builtins(trigger)
    kind = type(trigger).__struct_config__.tag
    return f"{kind}:" + ",".join(f"{k}={data[k]}" for k in sorted(data) if k != "kind")


def breaking_changes(old: dsl.Template, new: dsl.Template) -> list[str]:
    """What a deployment of ``old`` would have to change to run ``new``."""
    changes: list[str] = []
    old_props = set(old.parameters.get("properties", {}) or {})
    new_props = set(new.parameters.get("properties", {}) or {})
    for name in sorted(old_props - new_props):
        changes.append(f"parameter {name!r} was removed or renamed")
    old_required = set(old.parameters.get("required", []) or [])
    for name in sorted(set(new.parameters.get("required", []) or []) - old_required):
        changes.append(f"parameter {name!r} is newly required")
    for name in sorted(set(new.connectors) - set(old.connectors)):
        changes.append(f"connector {name!r} is new: every deployment must bind it")
    new_triggers = {_trigger_key(t) for t in new.triggers}
    for key in sorted({_trigger_key(t) for t in old.triggers} - new_triggers):
        changes.append(f"trigger {key} was removed")
    return changes


def bump_problem(old: dsl.Template, new: dsl.Template) -> str | None:
    """Why ``new.version`` is not an acceptable successor of ``old.version``, if it is not."""
    before, after = semver(old.version), semver(new.version)
    if after <= before:
        return f"version {new.version} does not come after {old.version}"
    changes = breaking_changes(old, new)
    if changes and after[0] == before[0]:
        return (
            f"breaking changes since {old.version} need a major version "
            f"({before[0] + 1}.0.0): " + "; ".join(changes)
        )
    return None
