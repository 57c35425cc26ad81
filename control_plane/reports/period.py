"""The period a report covers: ``period=YYYY-MM`` or ``from``/``to``, half-open, in UTC."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from control_plane.errors import InvalidInput

#: The widest period one report covers (a quarter, with room for the longest).
MAX_DAYS = 93
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _month(text: str) -> tuple[datetime, datetime]:
    match = _MONTH.match(text.strip())
    month = int(match.group(2)) if match else 0
    if match is None or not 1 <= month <= 12:
        raise InvalidInput(f"period must be a month as YYYY-MM (for example 2026-11), not {text!r}")
    year = int(match.group(1))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _instant(name: str, text: str) -> datetime:
    """An ISO 8601 date (its midnight, UTC) or date-time (UTC when it names no offset)."""
    value = text.strip()
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+", 1))
    except ValueError:
        raise InvalidInput(
            f"'{name}' must be an ISO 8601 date (2026-11-01) or date-time"
            f" (2026-11-01T00:00:00Z), not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def window(
    period: str | None, since: str | None, until: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """[from, to) of the report. Nothing given: this month so far."""
    if period is not None and (since is not None or until is not None):
        raise InvalidInput("give either 'period' or 'from'/'to', not both")
    if period is not None:
        return _month(period)
    if since is None and until is not None:
        raise InvalidInput("'to' needs a 'from' (or ask for a month with 'period=YYYY-MM')")
    if since is None:
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0), now
    start = _instant("from", since)
    end = _instant("to", until) if until is not None else now
    if start >= end:
        raise InvalidInput(
            f"'from' ({start.isoformat()}) must be before 'to' ({end.isoformat()});"
            " 'to' is exclusive"
        )
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidInput(
            f"a report covers at most {MAX_DAYS} days, this asks for"
            f" {(end - start).days}; ask for a month (period=YYYY-MM) or a shorter range"
        )
    return start, end
