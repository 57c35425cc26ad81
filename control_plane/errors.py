"""Domain errors and their one mapping to RFC 9457 problem details."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap
from sqlalchemy.orm.exc import StaleDataError

from control_plane.api.requests import ensure_request_id

log = logging.getLogger("storeops.errors")

PROBLEM_BASE = "urn:storeops:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class StoreOpsError(Exception):
    """Base of every error a user can cause; ``type_`` is the stable problem type."""

    status = 400
    type_ = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.type_,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidInput(StoreOpsError):
    status, type_, title = 422, "invalid-input", "The input is not valid"


class NotFound(StoreOpsError):
    status, type_, title = 404, "not-found", "Not found"


class Conflict(StoreOpsError):
    status, type_, title = 409, "conflict", "Conflict"


class Duplicate(Conflict):
    type_, title = "duplicate", "Already exists"


class IllegalTransition(Conflict):
    type_, title = "illegal-transition", "Illegal state transition"


class PreconditionFailed(StoreOpsError):
    status, type_, title = 412, "precondition-failed", "The resource has changed"


class Unauthorized(StoreOpsError):
    status, type_, title = 401, "unauthorized", "Authentication required"


class Forbidden(StoreOpsError):
    status, type_, title = 403, "forbidden", "Not permitted"


class IdempotencyKeyReused(StoreOpsError):
    status, type_, title = 422, "idempotency-key-reused", "Idempotency key reused"


class IdempotencyInProgress(Conflict):
    type_, title = "idempotency-in-progress", "A request with this key is in progress"


class PayloadTooLarge(StoreOpsError):
    status, type_, title = 413, "payload-too-large", "Request body too large"


#: What a pattern-checked field accepts, said in words rather than as a regex.
FIELD_FORMATS = {
    "slug": "lowercase letters, digits and inner hyphens, 1-63 characters",
    "code": "letters, digits, '.', '_' or '-', 1-63 characters, starting with a letter or digit",
    "email": "an email address",
    "holidays": "dates as YYYY-MM-DD",
    "opening_hours": "HH:MM times from 00:00 to 24:00",
}
_REGEX_MESSAGE = re.compile(r"Expected `str` matching regex '.*?'")
_AT_PATH = re.compile(r"at `\$\.?([\w.\[\]]*)`")


def describe_validation(message: str) -> str:
    """Rewrite msgspec's regex complaints into the format the field expects."""
    if not _REGEX_MESSAGE.search(message):
        return message
    path = _AT_PATH.search(message)
    field = path.group(1) if path else ""
    leaf = re.sub(r"\[\d+\]", "", field).split(".")[0 if "opening_hours" in field else -1]
    expected = FIELD_FORMATS.get(leaf, "a value in the documented format")
    return _REGEX_MESSAGE.sub(f"Expected {expected}", message)


def problem_response(request: Request[Any, Any, Any], error: StoreOpsError) -> Response[Any]:
    # Also for errors raised before the route's middleware ran (404, 405).
    headers = {"X-Request-ID": ensure_request_id(request.scope)}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return Response(
        content=error.problem(instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _validation_detail(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts = []
    for item in extra:
        if isinstance(item, dict):
            key = item.get("key")
            msg = item.get("message", "")
            source = getattr(item.get("source"), "value", item.get("source"))  # an enum
            where = f"{source} '{key}'" if source and key else (f"'{key}'" if key else "")
            msg = describe_validation(str(msg))
            parts.append(f"{where}: {msg}" if where else msg)
    detail = "; ".join(parts) or exc.detail
    return detail


def _handle_domain(request: Request[Any, Any, Any], exc: StoreOpsError) -> Response[Any]:
    return problem_response(request, exc)


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    mapped: StoreOpsError
    if isinstance(exc, ValidationException):
        mapped = InvalidInput(_validation_detail(exc))
        mapped.status = 400
        mapped.type_ = "invalid-request"
        mapped.title = "The request is malformed or does not match the schema"
    elif isinstance(exc, NotAuthorizedException):
        mapped = Unauthorized(exc.detail or "a valid bearer token is required")
    elif isinstance(exc, PermissionDeniedException):
        mapped = Forbidden(exc.detail or "your roles do not allow this action")
    elif isinstance(exc, NotFoundException):
        mapped = NotFound(
            exc.detail if exc.detail != "Not Found" else f"no route {request.url.path}"
        )
    elif isinstance(exc, MethodNotAllowedException):
        mapped = StoreOpsError(exc.detail)
        mapped.status, mapped.type_, mapped.title = 405, "method-not-allowed", "Method not allowed"
    elif exc.status_code == 413:
        mapped = PayloadTooLarge(exc.detail or "the request body exceeds the size limit")
    elif exc.status_code == 400:
        mapped = StoreOpsError(f"the request could not be parsed: {exc.detail}")
        mapped.type_, mapped.title = "malformed-request", "Malformed request"
    else:
        mapped = StoreOpsError(exc.detail)
        mapped.status = exc.status_code
        mapped.type_ = f"http-{exc.status_code}"
        mapped.title = exc.detail
    response = problem_response(request, mapped)
    if isinstance(exc, MethodNotAllowedException) and exc.headers:
        response.headers.update(exc.headers)
    return response


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    error = StoreOpsError("an internal error occurred; the request id identifies it in the logs")
    error.status = HTTP_500_INTERNAL_SERVER_ERROR
    error.type_, error.title = "internal-error", "Internal server error"
    return problem_response(request, error)


def _handle_stale(request: Request[Any, Any, Any], exc: StaleDataError) -> Response[Any]:
    """Two writers passed the same If-Match; the version check in the UPDATE caught one."""
    error = PreconditionFailed(
        "the resource was changed by another request meanwhile; fetch it again and retry"
    )
    return problem_response(request, error)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    StaleDataError: _handle_stale,
    StoreOpsError: _handle_domain,
    HTTPException: _handle_http,
    Exception: _handle_unexpected,
}
