"""The simulated retailer estate: every system's state, id minting, a seeded generator for
"deterministic-ish" data, and the events the systems would send back to the runtime."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from tenant_runtime.sandbox.errors import InvalidInput, NotFound
from tenant_runtime.sandbox.state import (
    CrmState,
    Docs,
    EcommerceState,
    ErpState,
    HrState,
    ItsmState,
    PaymentsState,
    PosState,
    WmsState,
)

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class World:
    def __init__(self, seed: int, clock: Clock = utcnow) -> None:
        self.seed = seed
        self.clock = clock
        self.counters: dict[str, int] = {}
        #: What the simulated systems would push as webhooks, in order (``/_sandbox/events``).
        self.events: list[dict[str, Any]] = []
        self.erp = ErpState()
        self.pos = PosState()
        self.wms = WmsState()
        self.crm = CrmState()
        self.hr = HrState()
        self.itsm = ItsmState()
        self.ecommerce = EcommerceState()
        self.payments = PaymentsState()

    def rng(self, *parts: str) -> random.Random:
        """The same parts give the same numbers for the same seed (per object, not per call)."""
        return random.Random(f"{self.seed}|{'|'.join(parts)}")

    def mint(self, prefix: str, start: int = 100001) -> str:
        """Sequential ids per prefix (``PO-100001``): reproducible after a reset."""
        number = self.counters.get(prefix, start - 1) + 1
        self.counters[prefix] = number
        return f"{prefix}-{number}"

    def now(self) -> datetime:
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def stamp(self, delta: timedelta = timedelta()) -> str:
        return iso(self.now() + delta)

    def emit(self, source: str, type_: str, correlation: str, **payload: Any) -> None:
        self.events.append(
            {
                "seq": len(self.events) + 1,
                "source": source,
                "type": type_,
                "correlation": correlation,
                "at": self.stamp(),
                "payload": payload,
            }
        )

    def snapshot(self) -> dict[str, Any]:
        systems = ("erp", "pos", "wms", "crm", "hr", "itsm", "ecommerce", "payments")
        return {name: asdict(getattr(self, name)) for name in systems}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def doc(docs: Docs, key: str, kind: str) -> dict[str, Any]:
    """The record ``key`` or a 404 that says which records exist (the last few)."""
    found = docs.get(key)
    if found is None:
        known = list(docs)[-5:]
        hint = f"; known: {', '.join(known)}" if known else f"; no {kind} exists yet"
        raise NotFound(f"no {kind} {key!r}{hint}", kind=kind, id=key)
    return found


def money(value: float) -> float:
    return round(value + 0.0, 2)


def monday(day: str, today: datetime, field: str = "week_of") -> str:
    """The Monday of the week of ``day`` (an ISO date or timestamp; today when empty)."""
    try:
        moment = datetime.fromisoformat(day.replace("Z", "+00:00")) if day else today
    except ValueError:
        raise InvalidInput(
            f"field {field!r} must be an ISO date (YYYY-MM-DD) or timestamp, not {day!r}",
            field=field,
        ) from None
    start = moment.date() - timedelta(days=moment.weekday())
    return start.isoformat()
