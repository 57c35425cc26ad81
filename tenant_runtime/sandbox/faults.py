"""Fault injection: latency, 503s, 429s and answers lost after the commit, per system and
operation, drawn from seeded generators so a run can be reproduced."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tenant_runtime.sandbox.config import FaultRule
from tenant_runtime.sandbox.errors import NotFound
from tenant_runtime.sandbox.registry import SYSTEMS

ANY = "*"


def check_rule(rule: FaultRule) -> None:
    """A rule must name a simulated system and one of its operations (or ``"*"``)."""
    if rule.system != ANY and rule.system not in SYSTEMS:
        raise NotFound(f"no simulated system {rule.system!r}", systems=sorted(SYSTEMS))
    known = SYSTEMS[rule.system].operations if rule.system != ANY else {}
    if rule.operation != ANY and rule.system != ANY and rule.operation not in known:
        raise NotFound(
            f"{rule.system} has no operation {rule.operation!r}", operations=sorted(known)
        )


@dataclass(frozen=True)
class Decision:
    latency_ms: int = 0
    error: bool = False
    rate_limit: bool = False
    drop_after_commit: bool = False
    retry_after_s: int = 1


class Faults:
    def __init__(self, seed: int, rules: list[FaultRule]) -> None:
        self.seed = seed
        self.rules: dict[tuple[str, str], FaultRule] = {}
        self._rngs: dict[tuple[str, str], random.Random] = {}
        for rule in rules:
            self.set(rule)

    def set(self, rule: FaultRule) -> None:
        """Replace the rule for the rule's (system, operation)."""
        self.rules[(rule.system, rule.operation)] = rule

    def clear(self) -> None:
        self.rules.clear()

    def rule_for(self, system: str, operation: str) -> FaultRule | None:
        """The most specific rule: the operation, then the system, then everything."""
        for scope in ((system, operation), (system, ANY), (ANY, operation), (ANY, ANY)):
            if scope in self.rules:
                return self.rules[scope]
        return None

    def decide(self, system: str, operation: str) -> Decision:
        rule = self.rule_for(system, operation)
        if rule is None:
            return Decision()
        rng = self._rngs.get((system, operation))
        if rng is None:
            rng = self._rngs[(system, operation)] = random.Random(
                f"{self.seed}|faults|{system}|{operation}"
            )
        # Always three draws, so one outcome never shifts the next request's.
        error, limited, dropped = rng.random(), rng.random(), rng.random()
        return Decision(
            latency_ms=rule.latency_ms,
            error=error < rule.error_rate,
            rate_limit=limited < rule.rate_limit_rate,
            drop_after_commit=dropped < rule.drop_after_commit_rate,
            retry_after_s=rule.retry_after_s,
        )
