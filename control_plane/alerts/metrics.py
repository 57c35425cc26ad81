"""The metrics a rule may watch, their ranges, and the check that a rule can fire at all.

Pure: a rule's fields in, the list of what is wrong with them out; and a tenant's
signals in, each metric's value (None when there is not enough data) out.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

from control_plane.health.assess import Signals, Status, Thresholds, assess

MAX_FOR_SECONDS = 7 * 24 * 3600

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
}

#: health_status is compared as a level: healthy < degraded < down.
HEALTH_LEVELS = {Status.HEALTHY: 0.0, Status.DEGRADED: 1.0, Status.DOWN: 2.0}
HEALTH_THRESHOLDS = {"degraded": 1.0, "down": 2.0}


@dataclass(frozen=True)
class Metric:
    name: str
    #: The values the metric can take: [low, high] (high may be infinite).
    low: float
    high: float
    unit: str
    #: Whether thresholds must be whole numbers (counts).
    integral: bool = False
    #: Comparators allowed (all of COMPARATORS when None).
    comparators: tuple[str, ...] | None = None

    @property
    def domain(self) -> str:
        high = "∞)" if math.isinf(self.high) else f"{self.high:g}]"
        return f"in [{self.low:g}, {high}"

    @property
    def range_text(self) -> str:
        if self.name == "health_status":
            return "'degraded' or 'down'"
        kind = "a whole number" if self.integral else "a number"
        return f"{kind} {self.domain} ({self.unit})"


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("health_status", 1.0, 2.0, "degraded or down", comparators=(">=", "==")),
        Metric("heartbeat_age_s", 0.0, math.inf, "seconds"),
        Metric("failure_rate", 0.0, 1.0, "failed runs / finished runs"),
        Metric("sla_breach_rate", 0.0, 1.0, "tasks breaching SLA / tasks opened"),
        Metric("queue_depth", 0.0, math.inf, "steps waiting to start", integral=True),
        Metric("oldest_pending_s", 0.0, math.inf, "seconds"),
        Metric("dead_letters", 0.0, math.inf, "dead-lettered steps", integral=True),
        Metric(
            "recurring_incidents",
            0.0,
            math.inf,
            "recurring incident patterns reported in the last 24 h",
            integral=True,
        ),
    )
}
#: How many patterns a recurring_incidents reading names before "and N more".
NAMED_PATTERNS = 3


@dataclass(frozen=True)
class FieldProblem:
    """One refused field: its JSON pointer-ish path, what is wrong, what is accepted."""

    field: str
    message: str
    allowed: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "allowed": self.allowed}


def health_threshold(value: float | str) -> float | None:
    """'degraded'/'down' (or their levels 1/2) as a level; None if neither."""
    if isinstance(value, str):
        return HEALTH_THRESHOLDS.get(value.lower())
    return float(value) if float(value) in HEALTH_THRESHOLDS.values() else None


def check_rule(
    metric: str, comparator: str, threshold: float | str, for_seconds: int
) -> tuple[float | None, list[FieldProblem]]:
    """The threshold as stored (a number) and every problem with the combination."""
    problems: list[FieldProblem] = []
    if not 0 <= for_seconds <= MAX_FOR_SECONDS:
        problems.append(
            FieldProblem(
                "for_seconds",
                f"for_seconds {for_seconds} is out of range",
                f"a whole number of seconds in [0, {MAX_FOR_SECONDS}] (7 days)",
            )
        )
    spec = METRICS.get(metric)
    if spec is None:
        problems.append(
            FieldProblem("metric", f"unknown metric {metric!r}", ", ".join(sorted(METRICS)))
        )
    allowed = spec.comparators if spec and spec.comparators else tuple(COMPARATORS)
    if comparator not in COMPARATORS or comparator not in allowed:
        where = f" for {metric}" if spec and comparator in COMPARATORS else ""
        problems.append(
            FieldProblem(
                "comparator", f"comparator {comparator!r} is not accepted{where}", " ".join(allowed)
            )
        )
    if spec is None:
        return None, problems
    level = _threshold_value(spec, threshold, problems)
    if level is None or any(p.field == "comparator" for p in problems):
        return level, problems
    if not can_fire(spec, comparator, level):
        problems.append(
            FieldProblem(
                "comparator",
                f"{metric} {comparator} {level:g} can never be true: {metric} is always "
                f"{spec.domain}",
                "a comparator and threshold that some value in the metric's range satisfies",
            )
        )
    return level, problems


def _threshold_value(
    spec: Metric, threshold: float | str, problems: list[FieldProblem]
) -> float | None:
    if spec.name == "health_status":
        level = health_threshold(threshold)
        if level is None:
            problems.append(
                FieldProblem(
                    "threshold",
                    f"threshold {threshold!r} is not a health level for health_status",
                    spec.range_text,
                )
            )
        return level
    if isinstance(threshold, str):
        problems.append(
            FieldProblem(
                "threshold",
                f"threshold {threshold!r} is not a number for {spec.name}",
                spec.range_text,
            )
        )
        return None
    value = float(threshold)
    if not math.isfinite(value) or not spec.low <= value <= spec.high:
        problems.append(
            FieldProblem(
                "threshold",
                f"threshold {value:g} is outside what {spec.name} can be",
                spec.range_text,
            )
        )
        return None
    if spec.integral and not value.is_integer():
        problems.append(
            FieldProblem(
                "threshold",
                f"threshold {value:g} is not a whole number of {spec.unit}",
                spec.range_text,
            )
        )
        return None
    return value


def can_fire(spec: Metric, comparator: str, threshold: float) -> bool:
    """Whether some value in the metric's range satisfies ``value <comparator> threshold``."""
    if comparator == ">":
        return threshold < spec.high
    if comparator == ">=":
        return threshold <= spec.high
    if comparator == "<":
        return threshold > spec.low
    if comparator == "<=":
        return threshold >= spec.low
    return spec.low <= threshold <= spec.high


@dataclass(frozen=True)
class Reading:
    """A metric's value at a tenant and the sentence that explains it."""

    value: float
    reason: str


def read_metrics(signals: Signals, limits: Thresholds | None = None) -> dict[str, Reading]:
    """Every metric there is data for; a missing one never fires (and clears an alert)."""
    t = limits or Thresholds()
    out: dict[str, Reading] = {}
    verdict = assess(signals, t)
    if verdict.status in HEALTH_LEVELS:
        out["health_status"] = Reading(
            HEALTH_LEVELS[verdict.status], f"{verdict.status.value}: " + "; ".join(verdict.reasons)
        )
    if signals.runs_finished >= t.min_runs:
        rate = signals.runs_failed / signals.runs_finished
        out["failure_rate"] = Reading(
            rate,
            f"{rate:.0%} of runs failed in the last {t.window_minutes} min "
            f"({signals.runs_failed} of {signals.runs_finished})",
        )
    if signals.tasks_opened >= t.min_tasks:
        rate = signals.sla_breaches / signals.tasks_opened
        out["sla_breach_rate"] = Reading(
            rate,
            f"{rate:.0%} of tasks breached their SLA in the last {t.window_minutes} min "
            f"({signals.sla_breaches} of {signals.tasks_opened})",
        )
    if signals.heartbeat_age_s is None:
        return out
    age = signals.heartbeat_age_s
    out["heartbeat_age_s"] = Reading(age, f"last heartbeat {age:.0f}s ago")
    out["queue_depth"] = Reading(
        float(signals.queue_depth), f"{signals.queue_depth} steps waiting to start"
    )
    out["oldest_pending_s"] = Reading(
        signals.oldest_pending_s,
        f"the oldest waiting step has waited {signals.oldest_pending_s:.0f}s",
    )
    if (dead := signals.dead_letters) is not None:
        out["dead_letters"] = Reading(float(dead), f"{dead} dead-lettered steps")
    return out


def recurring_incidents(patterns: list[str]) -> Reading:
    """The recurring_incidents reading of a tenant: its insights stored or updated in the
    last 24 h (``patterns``: one line each, the most frequent first)."""
    if not patterns:
        return Reading(0.0, "no recurring incident pattern reported in the last 24 h")
    named = "; ".join(patterns[:NAMED_PATTERNS])
    more = len(patterns) - NAMED_PATTERNS
    plural = "s" if len(patterns) > 1 else ""
    return Reading(
        float(len(patterns)),
        f"{len(patterns)} recurring incident pattern{plural} reported in the last 24 h: "
        f"{named}" + (f"; and {more} more" if more > 0 else ""),
    )


def fires(reading: Reading | None, comparator: str, threshold: float) -> bool:
    return reading is not None and COMPARATORS[comparator](reading.value, threshold)
