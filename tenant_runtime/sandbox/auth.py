"""Credential checks of the simulated systems (bearer token, HTTP Basic, API key)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from tenant_runtime.sandbox.config import AuthConfig


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def refusal(expected: AuthConfig, headers: Mapping[str, str]) -> str | None:
    """Why the request is not authenticated, or None when it is. Never echoes a value."""
    if expected.kind == "api_key":
        given = headers.get(expected.header.lower()) or headers.get(expected.header)
        if not given:
            return f"an API key is required in the {expected.header} header"
        return None if _same(given, expected.key) else f"the {expected.header} key is not valid"
    scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
    wanted = "Bearer" if expected.kind == "bearer" else "Basic"
    if scheme.lower() != wanted.lower() or not credentials.strip():
        return f"an Authorization: {wanted} credential is required"
    if expected.kind == "bearer":
        return (
            None if _same(credentials.strip(), expected.token) else "the bearer token is not valid"
        )
    try:
        user, sep, password = (
            base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return "the Basic credentials are not valid base64 of username:password"
    ok = bool(sep) and _same(user, expected.username) & _same(password, expected.password)
    return None if ok else "the username or password is not valid"


def challenge(expected: AuthConfig, system: str) -> dict[str, str]:
    if expected.kind == "api_key":
        return {}
    scheme = "Bearer" if expected.kind == "bearer" else "Basic"
    return {"WWW-Authenticate": f'{scheme} realm="sandbox-{system}"'}
