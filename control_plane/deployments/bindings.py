"""Checking a deployment's connector bindings: every connector the template declares is
bound to an http(s) endpoint, with credentials only as ``secret://<name>`` references."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from control_plane.contracts import dsl
from control_plane.deployments.validation import Problem, join

SECRET_SCHEME = "secret://"  # noqa: S105 - a URI scheme, not a secret
SECRET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
MAX_TIMEOUT_SECONDS = 300
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class AuthKind:
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    #: Fields that carry a credential: only a ``secret://`` reference is accepted.
    secret: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()


AUTH_KINDS: dict[str, AuthKind] = {
    "none": AuthKind(()),
    "bearer": AuthKind(("token",), secret=("token",)),
    "basic": AuthKind(("username", "password"), secret=("password",)),
    "api_key": AuthKind(("key",), ("header",), secret=("key",)),
    "oauth2": AuthKind(
        ("token_endpoint", "client_id", "client_secret"),
        ("scope",),
        secret=("client_secret",),
        urls=("token_endpoint",),
    ),
}
BINDING_FIELDS = ("base_url", "auth", "timeout", "attempts")


def check_bindings(template: dsl.Template, bindings: Any, path: str) -> list[Problem]:
    declared = sorted(template.connectors)
    listing = ", ".join(declared) or "none"
    if not isinstance(bindings, dict):
        return [Problem(path, f"must be an object keyed by connector name ({listing})")]
    problems: list[Problem] = []
    for name in sorted(set(declared) - set(bindings)):
        problems.append(
            Problem(
                path,
                f"connector {name!r} is not bound; the template declares {listing} "
                "and each needs a binding",
            )
        )
    for name, binding in bindings.items():
        where = join(path, name)
        if name not in template.connectors:
            problems.append(
                Problem(
                    where,
                    f"template {template.id} {template.version} declares no connector "
                    f"{name!r}; its connectors are {listing}",
                )
            )
            continue
        problems += _check_binding(binding, where)
    return problems


def _check_binding(binding: Any, path: str) -> list[Problem]:
    if not isinstance(binding, dict):
        return [Problem(path, 'must be an object: {"base_url": "https://...", "auth": {...}}')]
    problems = [
        Problem(join(path, key), f"unknown field; a binding has {', '.join(BINDING_FIELDS)}")
        for key in binding
        if key not in BINDING_FIELDS
    ]
    if "base_url" not in binding:
        problems.append(Problem(path, "base_url is required"))
    else:
        problems += _check_url(binding["base_url"], join(path, "base_url"))
    if "auth" in binding:
        problems += _check_auth(binding["auth"], join(path, "auth"))
    if "timeout" in binding:
        timeout = binding["timeout"]
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_TIMEOUT_SECONDS
        ):
            problems.append(
                Problem(
                    join(path, "timeout"),
                    f"{timeout!r} is not a number of seconds above 0 and at most {MAX_TIMEOUT_SECONDS}",
                )
            )
    if "attempts" in binding:
        attempts = binding["attempts"]
        if (
            isinstance(attempts, bool)
            or not isinstance(attempts, int)
            or not 1 <= attempts <= MAX_ATTEMPTS
        ):
            problems.append(
                Problem(
                    join(path, "attempts"),
                    f"{attempts!r} is not a whole number from 1 to {MAX_ATTEMPTS}",
                )
            )
    return problems


def _check_url(value: Any, path: str) -> list[Problem]:
    expected = "an http(s) URL such as https://erp.example.com/api"
    if not isinstance(value, str):
        return [Problem(path, f"{value!r} is not {expected}")]
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return [Problem(path, f"{value!r} is not {expected}")]
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        return [Problem(path, f"{value!r} is not {expected}")]
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return [
            Problem(
                path,
                f"{value!r} may not carry credentials, a query or a fragment; "
                "put credentials in auth as secret:// references",
            )
        ]
    return []


def check_secret_ref(value: str, path: str) -> list[Problem]:
    name = value.removeprefix(SECRET_SCHEME)
    if not value.startswith(SECRET_SCHEME) or not SECRET_NAME.match(name):
        return [
            Problem(
                path,
                f"{value!r} is not a secret reference; write secret://<name>, the name being "
                "lowercase letters, digits, '.', '_' or '-' (1-63 characters)",
            )
        ]
    return []


def _check_auth(auth: Any, path: str) -> list[Problem]:
    kinds = ", ".join(AUTH_KINDS)
    if not isinstance(auth, dict):
        return [Problem(path, f'must be an object with a "type" ({kinds})')]
    kind_name = auth.get("type", "none")
    kind = AUTH_KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        return [
            Problem(join(path, "type"), f"{kind_name!r} is not an auth type; use one of {kinds}")
        ]
    problems: list[Problem] = []
    allowed = ("type", *kind.required, *kind.optional)
    for key, value in auth.items():
        where = join(path, key)
        if key not in allowed:
            problems.append(
                Problem(
                    where, f"unknown field for auth type {kind_name}; it takes {', '.join(allowed)}"
                )
            )
        elif key == "type":
            continue
        elif not isinstance(value, str) or not value:
            problems.append(Problem(where, "must be a non-empty string"))
        elif key in kind.secret:
            if not value.startswith(SECRET_SCHEME):
                problems.append(
                    Problem(
                        where,
                        "a credential must be a secret reference (secret://<name>), "
                        "never the value itself",
                    )
                )
            else:
                problems += check_secret_ref(value, where)
        elif value.startswith(SECRET_SCHEME):
            problems += check_secret_ref(value, where)
        elif key in kind.urls:
            problems += _check_url(value, where)
    for key in kind.required:
        if key not in auth:
            problems.append(Problem(path, f"auth type {kind_name} needs {key!r}"))
    return problems


def check_shared(
    bindings: dict[str, Any], others: Iterable[tuple[str, dict[str, Any]]], path: str
) -> list[Problem]:
    """A tenant's runtime binds each connector name once, for every deployment that uses
    it: the same name must carry the same binding everywhere in the tenant."""
    problems: list[Problem] = []
    clashing: set[str] = set()
    for label, other in others:
        for name, binding in bindings.items():
            if name in clashing or name not in other or other[name] == binding:
                continue
            clashing.add(name)
            problems.append(
                Problem(
                    join(path, name),
                    f"binds connector {name!r} differently from {label}; a tenant's runtime "
                    "binds each connector once, so bind it the same way everywhere "
                    "(change them together with apply)",
                )
            )
    return problems
