"""The runtime API's errors and their one mapping to RFC 9457 problem details."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
import msgspec.inspect
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.types import ExceptionHandlersMap

from tenant_runtime.api.requests import ensure_request_id
from tenant_runtime.engine import executor

log = logging.getLogger("storeops.runtime.api")

PROBLEM_BASE = "urn:storeops:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ApiError(Exception):
    """Base of every error a caller can cause; ``type_`` is the stable problem type."""

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


class InvalidRequest(ApiError):
    """The request does not parse or does not match the schema (shape, not meaning)."""

    status, type_, title = (
        400,
        "invalid-request",
        "The request is malformed or does not match the schema",
    )


class InvalidInput(ApiError):
    status, type_, title = 422, "invalid-input", "The input is not valid"


class NotFound(ApiError):
    status, type_, title = 404, "not-found", "Not found"


class Conflict(ApiError):
    status, type_, title = 409, "conflict", "Conflict"


class Unauthorized(ApiError):
    status, type_, title = 401, "unauthorized", "Authentication required"


class Forbidden(ApiError):
    status, type_, title = 403, "forbidden", "Not permitted"


class IdempotencyKeyReused(ApiError):
    status, type_, title = 422, "idempotency-key-reused", "Idempotency key reused"


class WebhookRefused(Unauthorized):
    """A webhook that is not provably from its sender; ``reason`` says which check failed."""

    type_, title = "webhook-unauthenticated", "Webhook not authenticated"


def problem_response(request: Request[Any, Any, Any], error: ApiError) -> Response[Any]:
    headers = {"X-Request-ID": ensure_request_id(request.scope)}
    if isinstance(error, Unauthorized) and not isinstance(error, WebhookRefused):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return Response(
        content=error.problem(instance=request.url.path),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _inner(info: Any) -> Any:
    """A field's type without its constraints, its list, or its None."""
    while True:
        if isinstance(info, msgspec.inspect.Metadata):
            info = info.type
        elif isinstance(info, msgspec.inspect.ListType):
            info = info.item_type
        elif isinstance(info, msgspec.inspect.UnionType):
            kinds = [t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)]
            if len(kinds) != 1:
                return info
            info = kinds[0]
        else:
            return info


def _body_field(request: Request[Any, Any, Any], key: str) -> Any:
    """The type info of the body field named by ``key`` (``examples[0].label``), if any."""
    handler = request.scope.get("route_handler")
    body = getattr(getattr(handler, "parsed_data_field", None), "annotation", None)
    if not isinstance(body, type) or not issubclass(body, msgspec.Struct):
        return None
    info: Any = msgspec.inspect.type_info(body)
    for part in re.findall(r"[A-Za-z_]\w*", key):
        info = _inner(info)
        if not isinstance(info, msgspec.inspect.StructType):
            return None
        found = next((f for f in info.fields if f.encode_name == part), None)
        if found is None:
            return None
        info = found.type
    return info


def _hint(request: Request[Any, Any, Any], key: str, message: str) -> str:
    """What would be accepted, when the schema knows better than the validator said: the
    choices of a refused enum value, the description of a pattern."""
    info = _body_field(request, key)
    if message.startswith("Invalid enum value"):
        inner = _inner(info)
        if isinstance(inner, msgspec.inspect.LiteralType):
            return f"; give one of: {', '.join(map(str, inner.values))}"
    if "matching regex" in message and isinstance(info, msgspec.inspect.Metadata):
        described = (info.extra_json_schema or {}).get("description")
        if described:
            return f" ({described})"
    return ""


def _validation_detail(request: Request[Any, Any, Any], exc: ValidationException) -> str:
    parts = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key, message = item.get("key"), str(item.get("message", ""))
            source = getattr(item.get("source"), "value", item.get("source"))
            where = f"{source} '{key}'" if source and key else (f"'{key}'" if key else "")
            if key and source == "body":
                message += _hint(request, str(key), message)
            parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or exc.detail


def _from_http(request: Request[Any, Any, Any], exc: HTTPException) -> ApiError:
    if isinstance(exc, ValidationException):
        return InvalidRequest(_validation_detail(request, exc))
    if isinstance(exc, NotAuthorizedException):
        return Unauthorized(exc.detail or "a valid bearer token is required")
    if isinstance(exc, PermissionDeniedException):
        return Forbidden(exc.detail or "your roles do not allow this action")
    if isinstance(exc, NotFoundException):
        detail = exc.detail if exc.detail != "Not Found" else f"no route {request.url.path}"
        return NotFound(detail)
    error = ApiError(exc.detail)
    error.status = exc.status_code
    if isinstance(exc, MethodNotAllowedException):
        error.type_, error.title = "method-not-allowed", "Method not allowed"
    elif exc.status_code == 413:
        error.type_, error.title = "payload-too-large", "Request body too large"
    elif exc.status_code == 400:
        error = InvalidRequest(f"the request could not be parsed: {exc.detail}")
        error.type_, error.title = "malformed-request", "Malformed request"
    else:
        error.type_, error.title = f"http-{exc.status_code}", exc.detail
    return error


def _handle_api(request: Request[Any, Any, Any], exc: ApiError) -> Response[Any]:
    return problem_response(request, exc)


def _handle_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    response = problem_response(request, _from_http(request, exc))
    if isinstance(exc, MethodNotAllowedException) and exc.headers:
        response.headers.update(exc.headers)
    return response


def _engine_error(kind: type[ApiError]) -> Any:
    """A handler answering an engine exception as ``kind``, with the engine's message."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        return problem_response(request, kind(str(exc)))

    return handle


def _handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    error = ApiError("an internal error occurred; the request id identifies it in the logs")
    error.status, error.type_, error.title = 500, "internal-error", "Internal server error"
    return problem_response(request, error)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ApiError: _handle_api,
    executor.InvalidStart: _engine_error(InvalidInput),
    executor.UnknownTemplate: _engine_error(NotFound),
    executor.TaskNotFound: _engine_error(NotFound),
    executor.TaskClosed: _engine_error(Conflict),
    executor.InvalidDecision: _engine_error(InvalidInput),
    HTTPException: _handle_http,
    Exception: _handle_unexpected,
}
