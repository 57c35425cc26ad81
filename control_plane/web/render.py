"""Rendering pages and fragments with Jinja (autoescaped), with the pages' security headers."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Response

from control_plane.contracts.brand import Brand, stylesheet
from control_plane.web.brand import CURRENT
from control_plane.web.paths import templates_dir

#: Same-origin scripts and styles only: nothing from a CDN, no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _ago(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 90:
        return f"{max(seconds, 0)}s ago"
    if seconds < 5400:
        return f"{seconds // 60} min ago"
    if seconds < 172800:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(templates_dir())),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["ago"] = _ago
    env.filters["iso"] = lambda m: m.isoformat() if m else ""
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def page(
    name: str, status_code: int = 200, brand: Brand | None = None, **context: Any
) -> Response[str]:
    """A page in the brand of the request being served (see :mod:`control_plane.web.brand`)."""
    brand = brand or CURRENT.get()
    return Response(
        render(name, brand=brand, brand_css=stylesheet(brand), **context),
        status_code=status_code,
        media_type="text/html; charset=utf-8",
        headers=SECURITY_HEADERS,
    )


def macro(template: str, name: str, *args: Any) -> str:
    """One macro of ``template`` rendered alone (a grid row for a live update)."""
    module = environment().get_template(template).module
    return str(getattr(module, name)(*args))
