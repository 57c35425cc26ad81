"""The sandbox as one Litestar app: ``POST /{system}/{operation}`` for the simulated
systems and ``/_sandbox/...`` to read the request log and stats, inject faults, set
credentials, read the events the systems would send, and reset."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, cast

import msgspec
from litestar import Litestar, Request, Response, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from tenant_runtime.sandbox.config import AuthConfig, FaultRule, SandboxConfig
from tenant_runtime.sandbox.errors import (
    PROBLEM_MEDIA_TYPE,
    InvalidInput,
    NotFound,
    SandboxError,
    problem,
)
from tenant_runtime.sandbox.faults import check_rule
from tenant_runtime.sandbox.gateway import Sandbox, Sleep
from tenant_runtime.sandbox.ledger import DuplicateEffect
from tenant_runtime.sandbox.registry import SYSTEMS
from tenant_runtime.sandbox.world import Clock, utcnow

T = TypeVar("T")


def _sandbox(state: State) -> Sandbox:
    return cast(Sandbox, state.sandbox)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    media = PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"
    return Response(content=body, status_code=status, headers=headers, media_type=media)


def _decode(raw: bytes, kind: type[T], what: str) -> T:
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"{what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"{what}: the body is not valid JSON ({exc})") from None


@post("/{system:str}/{operation:str}", operation_id="sandboxCall", status_code=200)
async def call(
    system: FromPath[str], operation: FromPath[str], request: Request[Any, Any, State], state: State
) -> Response[Any]:
    """Call a simulated system's operation with the operation's input as a JSON object."""
    answer = await _sandbox(state).call(system, operation, await request.body(), request.headers)
    return _json(answer.body, answer.status, answer.headers)


@get(["/", "/_sandbox/operations"], operation_id="sandboxOperations")
async def operations(state: State) -> dict[str, Any]:
    """Every simulated system and operation, and whether an operation has an effect."""
    return _sandbox(state).catalog()


@get("/_sandbox/log", operation_id="sandboxLog")
async def request_log(
    state: State,
    system: FromQuery[str | None] = None,
    operation: FromQuery[str | None] = None,
    key: FromQuery[str | None] = None,
    after: FromQuery[int] = 0,
) -> dict[str, Any]:
    """Every request (after sequence number ``after``) with its key and outcome."""
    entries = _sandbox(state).ledger.log(system, operation, key, after)
    return {"count": len(entries), "entries": entries}


@get("/_sandbox/stats", operation_id="sandboxStats")
async def stats(state: State) -> dict[str, Any]:
    """Per operation: requests, distinct keys, replays, effects applied (and duplicates)."""
    return _sandbox(state).ledger.stats()


@get("/_sandbox/events", operation_id="sandboxEvents")
async def events(
    state: State, after: FromQuery[int] = 0, type: FromQuery[str | None] = None
) -> dict[str, Any]:
    """Events the simulated systems would send as webhooks (shipped, accepted, picked...)."""
    found = [e for e in _sandbox(state).world.events[after:] if type is None or e["type"] == type]
    return {"count": len(found), "events": found}


@get("/_sandbox/state", operation_id="sandboxState")
async def world_state(state: State) -> dict[str, Any]:
    """Every simulated system's records, as they are now."""
    return _sandbox(state).world.snapshot()


class ResetRequest(msgspec.Struct, forbid_unknown_fields=True):
    seed: int | None = None


@post("/_sandbox/reset", operation_id="sandboxReset", status_code=200)
async def reset(request: Request[Any, Any, State], state: State) -> dict[str, Any]:
    """Forget all state, the log, and runtime fault and auth changes (optionally reseed)."""
    wanted = _decode(await request.body(), ResetRequest, "reset")
    sandbox = _sandbox(state)
    sandbox.reset(wanted.seed)
    return {"seed": sandbox.seed}


def _rules(sandbox: Sandbox) -> dict[str, Any]:
    return {"seed": sandbox.seed, "rules": msgspec.to_builtins(list(sandbox.faults.rules.values()))}


@get("/_sandbox/faults", operation_id="sandboxFaults")
async def list_faults(state: State) -> dict[str, Any]:
    return _rules(_sandbox(state))


@post("/_sandbox/faults", operation_id="sandboxSetFault", status_code=200)
async def set_fault(request: Request[Any, Any, State], state: State) -> dict[str, Any]:
    """Set the faults of one operation, a system (``"operation": "*"``) or all (``"*"``)."""
    rule = _decode(await request.body(), FaultRule, "fault rule")
    check_rule(rule)
    sandbox = _sandbox(state)
    sandbox.faults.set(rule)
    return _rules(sandbox)


@delete("/_sandbox/faults", operation_id="sandboxClearFaults", status_code=200)
async def clear_faults(state: State) -> dict[str, Any]:
    sandbox = _sandbox(state)
    sandbox.faults.clear()
    return _rules(sandbox)


@get("/_sandbox/auth", operation_id="sandboxAuth")
async def list_auth(state: State) -> dict[str, Any]:
    """Which systems expect which kind of credential (never the values)."""
    return {name: a.kind for name, a in _sandbox(state).auth.items()}


@post("/_sandbox/auth/{system:str}", operation_id="sandboxSetAuth", status_code=200)
async def set_auth(
    system: FromPath[str], request: Request[Any, Any, State], state: State
) -> dict[str, Any]:
    """Require a credential on a system: ``{"kind": "bearer", "token": ...}``, basic, api_key."""
    if system not in SYSTEMS:
        raise NotFound(f"no simulated system {system!r}", systems=sorted(SYSTEMS))
    expected = _decode(await request.body(), AuthConfig, "auth")
    if expected.problems():
        raise InvalidInput("; ".join(expected.problems()))
    sandbox = _sandbox(state)
    sandbox.auth[system] = expected
    return {name: a.kind for name, a in sandbox.auth.items()}


@delete("/_sandbox/auth/{system:str}", operation_id="sandboxClearAuth", status_code=200)
async def clear_auth(system: FromPath[str], state: State) -> dict[str, Any]:
    sandbox = _sandbox(state)
    sandbox.auth.pop(system, None)
    return {name: a.kind for name, a in sandbox.auth.items()}


def _on_sandbox_error(_: Request[Any, Any, State], exc: SandboxError) -> Response[Any]:
    return _json(exc.problem(), exc.status)


def _on_duplicate_effect(_: Request[Any, Any, State], exc: DuplicateEffect) -> Response[Any]:
    body = problem(500, "duplicate-effect", "The sandbox applied a key twice", str(exc))
    return _json(body, 500)


def create_sandbox_app(
    config: SandboxConfig | None = None, *, clock: Clock = utcnow, sleep: Sleep = asyncio.sleep
) -> Litestar:
    """The sandbox app; its :class:`Sandbox` is ``app.state.sandbox``. A configuration
    naming an unknown system or operation, or an incomplete credential, is refused."""
    config = config or SandboxConfig()
    for name, expected in config.auth.items():
        if name not in SYSTEMS or expected.problems():
            problems = "; ".join(expected.problems()) or "no such system"
            raise ValueError(f"auth for {name!r}: {problems}")
    for rule in config.faults:
        try:
            check_rule(rule)
        except SandboxError as exc:
            raise ValueError(f"fault rule: {exc.detail}") from None
    sandbox = Sandbox(config, clock=clock, sleep=sleep)
    return Litestar(
        route_handlers=[
            call,
            operations,
            request_log,
            stats,
            events,
            world_state,
            reset,
            list_faults,
            set_fault,
            clear_faults,
            list_auth,
            set_auth,
            clear_auth,
        ],
        state=State({"sandbox": sandbox}),
        exception_handlers={SandboxError: _on_sandbox_error, DuplicateEffect: _on_duplicate_effect},
    )
