"""The retailer portal: server-rendered pages (Jinja) for the inbox, runs and a run's timeline.

A review task shows the text the model classified and its suggestion; a task opened after
a recommendation shows the similar resolved cases and what resolved them.

A browser holds the bearer token in ``sessionStorage`` (pasted, or obtained by signing in
through ``POST /portal/login``, which relays to the control plane). A page requested
without a token is the sign-in shell; its script then requests the same page again with
``Authorization: Bearer`` and swaps in the server-rendered content. Decisions are posted
to the JSON API by the same script. Every page, the sign-in shell first, shows the
tenant's brand (:mod:`tenant_runtime.api.brand`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import httpx
import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody
from litestar.response import Template

from tenant_runtime.api import queries, triage
from tenant_runtime.api.auth import Caller, TokenVerifier, bearer_token
from tenant_runtime.api.brand import current_brand, inline_image
from tenant_runtime.api.deps import runtime_of
from tenant_runtime.api.problems import ApiError, InvalidRequest, NotFound, Unauthorized
from tenant_runtime.api.scope import scope_of

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
#: Same-origin script and styles only; no inline code, no third party.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Login(msgspec.Struct, forbid_unknown_fields=True):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


async def _caller(request: Request[Any, Any, Any]) -> Caller | None:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(token)


def _page(name: str, **context: Any) -> Template:
    return Template(template_name=name, context=context, headers=SECURITY_HEADERS)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, sort_keys=True, default=str)


#: Context sections shown in blocks of their own, never as label/value lines.
_SHOWN_APART = frozenset({"review", "advice"})


def _facts(context: Any) -> list[tuple[str, str]]:
    """A task's context as label/value lines: what the run knew (its input, its vars)."""
    if not isinstance(context, dict):
        return []
    lines: list[tuple[str, str]] = []
    for name, section in context.items():
        if name not in _SHOWN_APART and isinstance(section, dict):
            lines += [(str(k).replace("_", " "), _text(v)) for k, v in sorted(section.items())]
    return lines


def _percent(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ""
    return f"{round(value * 100)}%"


def _flat(values: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested facts (a recommendation's context: the asset, the ticket) as readable lines."""
    if not isinstance(values, dict):
        return []
    lines: list[tuple[str, str]] = []
    for key, value in sorted(values.items()):
        name = f"{prefix}{str(key).replace('_', ' ')}"
        if isinstance(value, dict):
            lines += _flat(value, f"{name} · ")
        elif value not in (None, "", [], {}):
            lines.append((name, _text(value)))
    return lines


def _advice(context: Any) -> list[dict[str, Any]]:
    """What the run's recommend steps found, one block per step, shaped for reading."""
    found = context.get("advice") if isinstance(context, dict) else None
    if not isinstance(found, dict):
        return []
    blocks = []
    for step_id, output in found.items():
        if not isinstance(output, dict):
            continue
        similar = [c for c in output.get("similar") or [] if isinstance(c, dict)]
        resolutions = [r for r in output.get("resolutions") or [] if isinstance(r, dict)]
        blocks.append(
            {
                "step": _label(str(step_id)),
                "similar": similar,
                "resolutions": resolutions,
                "searched": output.get("cases_searched"),
                "facts": _flat(output.get("context")),
            }
        )
    return blocks


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


#: Words a triage label spells in capitals.
_ACRONYMS = {"hvac": "HVAC", "pos": "POS", "it": "IT", "atm": "ATM", "cctv": "CCTV"}


def _term(name: str) -> str:
    """A triage label as people write it: ``pos_hardware`` is "POS hardware"."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_") if w]
    if words and words[0] == words[0].lower():
        words[0] = words[0].capitalize()
    return " ".join(words)


def _base(request: Request[Any, Any, Any], caller: Caller | None) -> dict[str, Any]:
    state = request.app.state
    runtime = runtime_of(request)
    stores = runtime.stores

    def workflow(template_id: str) -> str:
        deployment = runtime.deployments.get(template_id)
        return deployment.template.name if deployment is not None else template_id

    def store_label(ref: str | None) -> str:
        info = stores.get(ref or "") or next(
            (s for s in stores.values() if ref and s.code == ref), None
        )
        if info is None:
            return ref or ""
        return " ".join(p for p in (str(info.code or ""), str(info.name or "")) if p) or ref or ""

    brand = current_brand(request)
    return {
        "caller": caller,
        "brand": brand,
        "logo": inline_image(brand, brand.logo.sha256) if brand.logo else None,
        "favicon": inline_image(brand, brand.favicon.sha256) if brand.favicon else None,
        "powered_by": brand.show_powered_by and brand.source != "platform",
        "can_sign_in": state.control_plane_url is not None,
        "pretty": _pretty,
        "text": _text,
        "facts": _facts,
        "advice": _advice,
        "percent": _percent,
        "label": _label,
        "term": _term,
        "store_label": store_label,
        "workflow": workflow,
    }


@get("/portal", operation_id="portal", tags=["portal"], include_in_schema=False)
async def portal(request: Request[Any, Any, Any]) -> Template:
    """The caller's open tasks with their forms, and the latest runs they may see."""
    caller = await _caller(request)
    if caller is None:
        return _page("portal.html", **_base(request, None))
    runtime = runtime_of(request)
    scope = scope_of(caller, runtime.stores)
    db = runtime.engine.db
    inbox = await queries.list_tasks(db, scope, status="open", kind=None, limit=100, cursor=None)
    latest = await queries.list_runs(
        db, scope, status=None, template_id=None, stores=None, limit=25, cursor=None
    )
    return _page(
        "portal.html",
        **_base(request, caller),
        tasks=inbox.items,
        runs=latest.items,
        read_only=caller.read_only,
    )


@get(
    "/portal/runs/{run_id:uuid}", operation_id="portalRun", tags=["portal"], include_in_schema=False
)
async def portal_run(request: Request[Any, Any, Any], run_id: FromPath[UUID]) -> Template:
    """One run's timeline, and the AI decisions made in it."""
    caller = await _caller(request)
    if caller is None:
        return _page("run.html", **_base(request, None))
    runtime = runtime_of(request)
    scope = scope_of(caller, runtime.stores)
    detail = await queries.run_detail(runtime.engine.db, scope, run_id)
    audited = await triage.list_decisions(
        runtime.engine.db,
        scope,
        run_id=run_id,
        kind=None,
        routed=None,
        since=None,
        limit=queries.MAX_LIMIT,
        cursor=None,
    )
    return _page("run.html", **_base(request, caller), run=detail, decisions=audited.items[::-1])


@post(
    "/portal/login",
    operation_id="portalLogin",
    tags=["portal"],
    include_in_schema=False,
    status_code=200,
)
async def portal_login(request: Request[Any, Any, Any], data: JSONBody[Login]) -> Response[Any]:
    """Sign in with the control plane's ``/api/v1/auth/login`` from the portal's origin, so
    the browser needs no cross-origin access to the control plane. Nothing is kept here."""
    base: str | None = request.app.state.control_plane_url
    if base is None:
        raise NotFound("sign-in is not configured here; paste an access token instead")
    http: httpx.AsyncClient | None = request.app.state.http
    url = f"{base.rstrip('/')}/api/v1/auth/login"
    try:
        if http is not None:
            answer = await http.post(url, json=msgspec.to_builtins(data))
        else:
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.post(url, json=msgspec.to_builtins(data))
    except httpx.HTTPError:
        error = ApiError("the control plane could not be reached to sign in; try again later")
        error.status, error.type_, error.title = 502, "upstream-unavailable", "Bad gateway"
        raise error from None
    if answer.status_code == 401:
        raise Unauthorized("the email or password is not correct")
    if answer.status_code != 200:
        raise InvalidRequest(f"the control plane refused the sign-in ({answer.status_code})")
    body = answer.json()
    return Response(
        {"access_token": body.get("access_token"), "expires_in": body.get("expires_in")},
        headers={"Cache-Control": "no-store"},
    )
