"""Retry policy of a connector call: attempts, exponential (or fixed) backoff with jitter,
and ``Retry-After``."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Literal

from tenant_runtime.connectors.errors import ErrorClass

if TYPE_CHECKING:
    from control_plane.contracts.dsl import Retry

__all__ = ["DEFAULT_RETRY_ON", "RETRYABLE", "RetryPolicy", "parse_retry_after"]

#: The classes a policy may retry; a plain 4xx or an unusable response never is.
RETRYABLE = frozenset(
    {
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
        ErrorClass.SERVER,
        ErrorClass.RATE_LIMITED,
        ErrorClass.CONFLICT,
    }
)
#: The DSL's default ``retry_on``.
DEFAULT_RETRY_ON = frozenset(
    {ErrorClass.TIMEOUT, ErrorClass.CONNECTION, ErrorClass.SERVER, ErrorClass.RATE_LIMITED}
)
_DURATION = re.compile(r"(\d+)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def _seconds(duration: str) -> float:
    return float(sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(duration)))


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` counts the first try. Before retry *n* (1, 2, ...) the connector waits

    * ``Retry-After`` seconds when the answer carried one (seconds or an HTTP date), exactly;
      when that exceeds ``max`` it does not wait at all but gives up, with the delay on the
      error (``ConnectorError.retry_after``) for the engine to schedule;
    * otherwise a delay drawn uniformly from ``[cap * (1 - jitter), cap]`` where
      ``cap = min(max, initial * 2 ** (n - 1))`` (``backoff="exponential"``) or
      ``cap = min(max, initial)`` (``"fixed"``). The default ``jitter=0.5`` keeps every
      delay between half the cap and the cap; ``jitter=1`` is "full jitter", ``0`` none.

    Only errors whose class is in ``retry_on`` are retried (by default timeouts, connection
    errors, 5xx and 429, as in the DSL; 409 when asked).
    """

    attempts: int = 3
    initial: float = 2.0
    max: float = 300.0
    backoff: Literal["exponential", "fixed"] = "exponential"
    jitter: float = 0.5
    retry_on: frozenset[ErrorClass] = field(default=DEFAULT_RETRY_ON)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.initial < 0 or self.max < 0:
            raise ValueError("initial and max delays must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter is a fraction between 0 and 1")
        if self.backoff not in ("exponential", "fixed"):
            raise ValueError("backoff is 'exponential' or 'fixed'")
        retry_on = frozenset(ErrorClass.parse(c) for c in self.retry_on)
        if not retry_on <= RETRYABLE:
            names = sorted(c.value for c in retry_on - RETRYABLE)
            raise ValueError(f"never retryable: {', '.join(names)}")
        object.__setattr__(self, "retry_on", retry_on)

    @classmethod
    def of(
        cls,
        *,
        attempts: int = 3,
        initial: float = 2.0,
        max: float = 300.0,
        backoff: Literal["exponential", "fixed"] = "exponential",
        jitter: float = 0.5,
        retry_on: Iterable[str | int | ErrorClass] = DEFAULT_RETRY_ON,
    ) -> RetryPolicy:
        """Like the constructor, with ``retry_on`` as any iterable of class names."""
        return cls(
            attempts=attempts,
            initial=initial,
            max=max,
            backoff=backoff,
            jitter=jitter,
            retry_on=frozenset(ErrorClass.parse(c) for c in retry_on),
        )

    @classmethod
    def from_dsl(cls, retry: Retry | None, *, jitter: float = 0.5) -> RetryPolicy:
        """A step's ``retry:`` block (``None``: the DSL's defaults)."""
        if retry is None:
            return cls(jitter=jitter)
        return cls.of(
            attempts=retry.attempts,
            initial=_seconds(retry.initial),
            max=_seconds(retry.max),
            backoff=retry.backoff,
            jitter=jitter,
            retry_on=retry.retry_on,
        )

    def cap(self, retry: int) -> float:
        """The longest backoff before retry number ``retry`` (1-based)."""
        if retry < 1:
            raise ValueError("retries are numbered from 1")
        if self.backoff == "fixed":
            return min(self.max, self.initial)
        # Avoid float overflow for large retry numbers: past 2**64 the cap is max anyway.
        return min(self.max, self.initial * 2.0 ** min(retry - 1, 64))

    def bounds(self, retry: int) -> tuple[float, float]:
        """The documented range a jittered delay is drawn from."""
        cap = self.cap(retry)
        return cap * (1.0 - self.jitter), cap

    def delay(self, retry: int, uniform: Callable[[float, float], float]) -> float:
        low, high = self.bounds(retry)
        return min(high, max(low, uniform(low, high)))


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (never negative);
    ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # an HTTP date is always GMT; a date without a zone is not one
    return max(0.0, when.timestamp() - now())
