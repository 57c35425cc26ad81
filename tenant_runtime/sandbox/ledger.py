"""The request log and the idempotency store: every request with its key, body hash and
outcome; the first answer per (system, operation, key) for replays; and the exact count
of effects, with a guard that no key is ever applied twice."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

KeyId = tuple[str, str, str]

#: Outcomes of a logged request.
APPLIED = "applied"  # a write ran for the first time and its effect was committed
READ = "read"  # a lookup ran
REJECTED = "rejected"  # the simulated system refused it (404, 409, 422), nothing applied
REPLAYED = "replayed"  # the key was seen with this body: the first answer, nothing applied
KEY_REUSED = "key_reused"  # the key was seen with another body: 422, nothing applied
FAULT_ERROR = "fault_error"  # injected 503
FAULT_RATE_LIMITED = "fault_rate_limited"  # injected 429
DROPPED = "dropped_after_commit"  # ran and committed, then the answer was lost (504)
UNAUTHORIZED = "unauthorized"
BAD_REQUEST = "bad_request"  # unknown operation, not a JSON object, malformed key


@dataclass
class Entry:
    seq: int
    at: str
    system: str
    operation: str
    key: str | None
    body_hash: str
    status: int
    outcome: str
    replay: bool = False
    effect_applied: bool = False
    latency_ms: int = 0
    #: For a replay or a key reuse: the request that first used the key.
    first_seq: int | None = None


@dataclass
class Stored:
    body_hash: str
    status: int
    body: Any
    seq: int


class DuplicateEffect(AssertionError):
    """A key reached its effect twice: the sandbox itself is broken, never the client."""


class Ledger:
    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self._answers: dict[KeyId, Stored] = {}
        self._applied: dict[KeyId, int] = {}

    def next_seq(self) -> int:
        return len(self.entries) + 1

    def lookup(self, key: KeyId) -> Stored | None:
        return self._answers.get(key)

    def remember(self, key: KeyId, stored: Stored) -> None:
        if key in self._answers:
            raise DuplicateEffect(
                f"{key} already has a stored answer (request {self._answers[key].seq})"
            )
        self._answers[key] = stored

    def mark_applied(self, key: KeyId, seq: int) -> None:
        first = self._applied.get(key)
        if first is not None:
            raise DuplicateEffect(f"{key} was applied by request {first} and again by {seq}")
        self._applied[key] = seq

    def append(self, entry: Entry) -> Entry:
        assert entry.seq == self.next_seq(), "log entries are appended in sequence"
        self.entries.append(entry)
        return entry

    def log(
        self,
        system: str | None = None,
        operation: str | None = None,
        key: str | None = None,
        after: int = 0,
    ) -> list[dict[str, Any]]:
        return [
            asdict(e)
            for e in self.entries[after:]
            if (system is None or e.system == system)
            and (operation is None or e.operation == operation)
            and (key is None or e.key == key)
        ]

    def stats(self) -> dict[str, Any]:
        per_op: dict[str, list[Entry]] = {}
        for e in self.entries:
            per_op.setdefault(f"{e.system}.{e.operation}", []).append(e)
        operations = {name: _summary(entries) for name, entries in sorted(per_op.items())}
        totals = _summary(self.entries)
        totals["distinct_keys"] = sum(op["distinct_keys"] for op in operations.values())
        totals["repeated_keys"] = sum(op["repeated_keys"] for op in operations.values())
        totals["duplicate_effects"] = sum(op["duplicate_effects"] for op in operations.values())
        return {"totals": totals, "operations": operations}


def _summary(entries: list[Entry]) -> dict[str, Any]:
    """Counts for a set of requests; duplicates are recounted from the log, not trusted."""
    keyed = [e for e in entries if e.key is not None]
    uses = Counter((e.system, e.operation, e.key) for e in keyed)
    applications = Counter((e.system, e.operation, e.key) for e in keyed if e.effect_applied)
    outcomes = Counter(e.outcome for e in entries)
    return {
        "requests": len(entries),
        "keyed_requests": len(keyed),
        "unkeyed_requests": len(entries) - len(keyed),
        "distinct_keys": len(uses),
        "repeated_keys": sum(1 for n in uses.values() if n > 1),
        "repeated_calls": sum(n - 1 for n in uses.values()),
        "replays": outcomes[REPLAYED],
        "key_conflicts": outcomes[KEY_REUSED],
        "effects_applied": sum(1 for e in entries if e.effect_applied),
        "unkeyed_effects": sum(1 for e in entries if e.effect_applied and e.key is None),
        "duplicate_effects": sum(n - 1 for n in applications.values() if n > 1),
        "reads": outcomes[READ],
        "rejected": outcomes[REJECTED],
        "injected_errors": outcomes[FAULT_ERROR],
        "injected_rate_limits": outcomes[FAULT_RATE_LIMITED],
        "dropped_after_commit": outcomes[DROPPED],
        "injected_latency": sum(1 for e in entries if e.latency_ms),
        "unauthorized": outcomes[UNAUTHORIZED],
        "bad_requests": outcomes[BAD_REQUEST],
    }
