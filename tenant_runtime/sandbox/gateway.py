"""One simulated request from headers and bytes to an answer, HTTP-framework free:
credentials, routing, injected latency and failures, idempotency, the operation, the
log. Between the idempotency lookup and the log entry nothing awaits, so two concurrent
requests with one key cannot both apply."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import msgspec

from tenant_runtime.sandbox import ledger as lg
from tenant_runtime.sandbox import systems  # noqa: F401 - importing it registers every operation
from tenant_runtime.sandbox.auth import challenge, refusal
from tenant_runtime.sandbox.body import Body
from tenant_runtime.sandbox.config import AuthConfig, SandboxConfig
from tenant_runtime.sandbox.errors import (
    BadRequest,
    GatewayTimeout,
    KeyReused,
    NotFound,
    RateLimited,
    SandboxError,
    Unauthorized,
    Unavailable,
)
from tenant_runtime.sandbox.faults import Faults
from tenant_runtime.sandbox.registry import SYSTEMS, Operation
from tenant_runtime.sandbox.world import Clock, World, utcnow

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
Sleep = Callable[[float], Awaitable[None]]


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Call:
    """What the log records about a request, gathered as it goes through."""

    system: str
    operation: str
    body_hash: str
    key: str | None = None
    latency_ms: int = 0


class Sandbox:
    """The simulated estate behind the HTTP app: world state, ledger, faults, auth."""

    def __init__(
        self, config: SandboxConfig, clock: Clock = utcnow, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.config = config
        self.clock = clock
        self.sleep = sleep
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Back to the configured state: fresh world, empty log, configured faults and auth."""
        self.seed = self.config.seed if seed is None else seed
        self.world = World(self.seed, self.clock)
        self.ledger = lg.Ledger()
        self.faults = Faults(self.seed, list(self.config.faults))
        self.auth: dict[str, AuthConfig] = dict(self.config.auth)

    async def call(
        self, system: str, operation: str, raw: bytes, headers: Mapping[str, str]
    ) -> Answer:
        call = _Call(system, operation, hashlib.sha256(raw).hexdigest())
        try:
            op, payload, call.key = self._admit(system, operation, raw, headers)
        except Unauthorized as exc:
            return self._refuse(call, exc, lg.UNAUTHORIZED, challenge(self.auth[system], system))
        except SandboxError as exc:
            return self._refuse(call, exc, lg.BAD_REQUEST)
        call.body_hash = hashlib.sha256(msgspec.json.encode(payload, order="sorted")).hexdigest()
        decision = self.faults.decide(system, operation)
        if decision.latency_ms:
            call.latency_ms = decision.latency_ms
            await self.sleep(decision.latency_ms / 1000)
        if decision.error:
            error = Unavailable(f"{system} is temporarily unavailable (injected); retry after 1 s")
            return self._refuse(call, error, lg.FAULT_ERROR, {"Retry-After": "1"})
        if decision.rate_limit:
            after = decision.retry_after_s
            limited = RateLimited(f"{system} rate limit reached (injected); retry after {after} s")
            return self._refuse(call, limited, lg.FAULT_RATE_LIMITED, {"Retry-After": str(after)})
        return self._execute(call, op, payload, decision.drop_after_commit)

    def _admit(
        self, system: str, operation: str, raw: bytes, headers: Mapping[str, str]
    ) -> tuple[Operation, dict[str, Any], str | None]:
        spec = SYSTEMS.get(system)
        if spec is None:
            raise NotFound(
                f"no simulated system {system!r}; systems: {', '.join(SYSTEMS)}",
                systems=sorted(SYSTEMS),
            )
        expected = self.auth.get(system)
        if expected is not None:
            reason = refusal(expected, headers)
            if reason:
                raise Unauthorized(f"{system}: {reason}")
        op = spec.operations.get(operation)
        if op is None:
            raise NotFound(
                f"{system} has no operation {operation!r}", operations=sorted(spec.operations)
            )
        try:
            payload = msgspec.json.decode(raw) if raw.strip() else {}
        except msgspec.DecodeError as exc:
            raise BadRequest(f"the body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise BadRequest("the body must be a JSON object of the operation's input fields")
        key = headers.get("idempotency-key")
        in_body = payload.get("idempotency_key")
        if key is None and isinstance(in_body, str) and in_body:
            key = in_body  # payment-style APIs also take the key in the body
        if key is not None and not _KEY.match(key):
            raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
        return op, payload, key

    def _execute(self, call: _Call, op: Operation, payload: dict[str, Any], drop: bool) -> Answer:
        """Replay, refuse a reused key, or run the operation and remember its answer."""
        seq = self.ledger.next_seq()
        key_id = None if call.key is None else (op.system, op.name, call.key)
        stored = None if key_id is None else self.ledger.lookup(key_id)
        if stored is not None and stored.body_hash != call.body_hash:
            reused = KeyReused(
                f"Idempotency-Key {call.key!r} was used by request {stored.seq} with another "
                "body; send the same body to get its answer, or use a new key",
                first_seq=stored.seq,
            )
            return self._refuse(call, reused, lg.KEY_REUSED, first_seq=stored.seq)
        if stored is not None:
            self._log(call, seq, stored.status, lg.REPLAYED, replay=True, first_seq=stored.seq)
            return Answer(stored.status, stored.body, {"Idempotent-Replayed": "true", **_seq(seq)})
        try:
            status, body = 200, op.handler(self.world, Body(payload))
        except SandboxError as exc:
            status, body = exc.status, exc.problem()
        applied = op.mutates and status < 400
        if key_id is not None:
            self.ledger.remember(key_id, lg.Stored(call.body_hash, status, body, seq))
            if applied:
                self.ledger.mark_applied(key_id, seq)
        if drop:
            self._log(call, seq, 504, lg.DROPPED, effect_applied=applied)
            lost = GatewayTimeout(f"{op.system} did not answer {op.name} in time")
            return Answer(504, lost.problem(), _seq(seq))
        outcome = lg.APPLIED if applied else (lg.READ if status < 400 else lg.REJECTED)
        self._log(call, seq, status, outcome, effect_applied=applied)
        return Answer(status, body, _seq(seq))

    def _refuse(
        self,
        call: _Call,
        error: SandboxError,
        outcome: str,
        headers: dict[str, str] | None = None,
        first_seq: int | None = None,
    ) -> Answer:
        """Answer with an error that applies nothing and is not remembered for the key."""
        seq = self.ledger.next_seq()
        self._log(call, seq, error.status, outcome, first_seq=first_seq)
        return Answer(error.status, error.problem(), {**(headers or {}), **_seq(seq)})

    def _log(
        self,
        call: _Call,
        seq: int,
        status: int,
        outcome: str,
        replay: bool = False,
        effect_applied: bool = False,
        first_seq: int | None = None,
    ) -> None:
        at = self.clock().astimezone(UTC).isoformat(timespec="milliseconds")
        entry = lg.Entry(
            seq=seq,
            at=at.replace("+00:00", "Z"),
            system=call.system,
            operation=call.operation,
            key=call.key,
            body_hash=call.body_hash,
            status=status,
            outcome=outcome,
            replay=replay,
            effect_applied=effect_applied,
            latency_ms=call.latency_ms,
            first_seq=first_seq,
        )
        self.ledger.append(entry)

    def catalog(self) -> dict[str, Any]:
        return {
            name: {
                "title": spec.title,
                "auth": self.auth[name].kind if name in self.auth else None,
                "operations": {
                    op.name: {"effect": op.mutates, "summary": op.summary}
                    for op in spec.operations.values()
                },
            }
            for name, spec in SYSTEMS.items()
        }


def _seq(seq: int) -> dict[str, str]:
    return {"X-Sandbox-Seq": str(seq)}
