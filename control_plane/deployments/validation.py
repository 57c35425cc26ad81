"""Checking a deployment's parameters and trigger settings against the template version it
runs (bindings: :mod:`control_plane.deployments.bindings`). Every message names the JSON
path it is about."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError as SchemaError

from control_plane.contracts import dsl
from control_plane.errors import InvalidInput

TRIGGER_KINDS = ("api", "webhook", "event", "schedule")


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidDeployment(InvalidInput):
    """One or more problems, each at a JSON path; the first one is the detail."""

    type_, title = "invalid-deployment", "The deployment is not valid"

    def __init__(self, problems: list[Problem]) -> None:
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        super().__init__(
            f"{first}{more}",
            errors=[{"path": p.path, "message": p.message} for p in problems],
        )
        self.problems = problems


def join(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return f"{base}.{key}"
    return f"{base}[{key!r}]"


# --- parameters -------------------------------------------------------------------------


def _schema_path(base: str, parts: Iterable[Any]) -> str:
    path = base
    for part in parts:
        path = join(path, part)
    return path


def check_params(template: dsl.Template, params: Any, path: str) -> list[Problem]:
    """The template version's JSON Schema, every failure at its own path. A name the
    schema does not declare is refused too (unless it opts into extra properties): a
    misspelt parameter must not silently fall back to its default."""
    if not isinstance(params, dict):
        return [Problem(path, "must be an object of parameter values")]
    schema = template.parameters
    validator_cls = jsonschema.validators.validator_for(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    errors = sorted(
        validator.iter_errors(params), key=lambda e: (list(map(str, e.path)), e.message)
    )
    problems = [_param_problem(path, e) for e in errors]
    declared = schema.get("properties")
    if (
        isinstance(declared, dict)
        and "additionalProperties" not in schema
        and "patternProperties" not in schema
    ):
        names = ", ".join(sorted(declared)) or "none"
        problems += [
            Problem(
                join(path, key),
                f"unknown parameter; {template.id} {template.version} takes {names}",
            )
            for key in sorted(set(params) - set(declared))
        ]
    return problems


def _param_problem(base: str, error: SchemaError) -> Problem:
    where = _schema_path(base, error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return Problem(where, f"{error.message}; the template's parameters do not include it")
    return Problem(where, error.message)


# --- triggers ---------------------------------------------------------------------------


def check_triggers(
    template: dsl.Template, triggers: Any, path: str
) -> tuple[dict[str, Any], list[Problem]]:
    """``{"enabled": {kind: bool}}`` normalised to every kind the template declares
    (enabled unless switched off)."""
    declared = sorted(
        {
            t.__struct_config__.tag
            for t in template.triggers
            if isinstance(t.__struct_config__.tag, str)
        }
    )
    enabled: dict[str, bool] = dict.fromkeys(declared, True)
    if triggers is None:
        return {"enabled": enabled}, []
    if not isinstance(triggers, dict):
        return {"enabled": enabled}, [
            Problem(path, 'must be an object: {"enabled": {"api": true}}')
        ]
    problems = [
        Problem(join(path, key), 'unknown field; trigger settings have only "enabled"')
        for key in triggers
        if key != "enabled"
    ]
    given = triggers.get("enabled", {})
    where = join(path, "enabled")
    if not isinstance(given, dict):
        return {"enabled": enabled}, [
            *problems,
            Problem(where, "must map trigger kinds to true or false"),
        ]
    for kind, value in given.items():
        at = join(where, kind)
        if kind not in TRIGGER_KINDS:
            problems.append(
                Problem(at, f"{kind!r} is not a trigger kind; use {', '.join(TRIGGER_KINDS)}")
            )
        elif kind not in enabled:
            problems.append(
                Problem(
                    at,
                    f"template {template.id} {template.version} has no {kind} trigger; "
                    f"it declares {', '.join(declared)}",
                )
            )
        elif not isinstance(value, bool):
            problems.append(Problem(at, f"{value!r} is not true or false"))
        else:
            enabled[kind] = value
    return {"enabled": enabled}, problems
