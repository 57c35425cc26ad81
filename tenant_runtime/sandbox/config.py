"""The sandbox's settings: seed, per-system credentials, fault rules. Built in code or
converted from JSON (``msgspec.convert``); the admin API changes auth and faults live."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Rate = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class AuthConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The credential a simulated system expects; wrong or missing is a 401."""

    kind: Literal["bearer", "basic", "api_key"]
    token: str | None = None
    username: str | None = None
    password: str | None = None
    #: Header carrying the key for ``api_key``.
    header: str = "X-API-Key"
    key: str | None = None

    def problems(self) -> list[str]:
        needs = {"bearer": ("token",), "basic": ("username", "password"), "api_key": ("key",)}
        return [
            f"{self.kind} auth needs a non-empty {name!r}"
            for name in needs[self.kind]
            if not getattr(self, name)
        ]


class FaultRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Faults for one operation, every operation of a system (``"*"``), or everything.

    Each request draws from a generator seeded by (seed, system, operation), so the same
    sequence of requests meets the same faults."""

    system: str = "*"
    operation: str = "*"
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 0
    #: Share of requests answered 503 with ``Retry-After: 1``, nothing applied.
    error_rate: Rate = 0.0
    #: Share of requests answered 429 with ``Retry-After: retry_after_s``, nothing applied.
    rate_limit_rate: Rate = 0.0
    retry_after_s: Annotated[int, msgspec.Meta(ge=0, le=3600)] = 1
    #: Share of first applications whose effect is committed and recorded, and whose
    #: answer is then lost (504): a retry with the same key gets the stored answer.
    drop_after_commit_rate: Rate = 0.0


class SandboxConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    seed: int = 42
    #: system -> credential it expects; systems not listed accept anonymous calls.
    auth: dict[str, AuthConfig] = msgspec.field(default_factory=dict)
    faults: list[FaultRule] = msgspec.field(default_factory=list)
