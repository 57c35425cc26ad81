"""The sandbox's errors and their RFC 9457 problem bodies (kept apart from the control
plane's mapping: tenant_runtime may not import it)."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "urn:storeops:sandbox:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class SandboxError(Exception):
    """An answer a simulated system gives instead of a result; ``type_`` is stable."""

    status = 400
    type_ = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        return problem(self.status, self.type_, self.title, self.detail, **self.extra)


class BadRequest(SandboxError):
    pass


class Unauthorized(SandboxError):
    status, type_, title = 401, "unauthorized", "Authentication required"


class NotFound(SandboxError):
    status, type_, title = 404, "not-found", "Not found"


class Conflict(SandboxError):
    """The request is well formed but the object's state does not allow it."""

    status, type_, title = 409, "conflict", "Conflict"


class InvalidInput(SandboxError):
    status, type_, title = 422, "invalid-input", "The input is not valid"


class KeyReused(SandboxError):
    status, type_, title = 422, "idempotency-key-reused", "Idempotency key reused"


def problem(status: int, type_: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + type_,
        "title": title,
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return body


class Unavailable(SandboxError):
    status, type_, title = 503, "unavailable", "Service unavailable"


class RateLimited(SandboxError):
    status, type_, title = 429, "rate-limited", "Too many requests"


class GatewayTimeout(SandboxError):
    status, type_, title = 504, "gateway-timeout", "Gateway timeout"
