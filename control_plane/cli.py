"""The ``storeops`` command: the same services as the API, one implementation of each rule."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import click
import msgspec
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from control_plane.config import Settings, get_settings
from control_plane.context import Ctx
from control_plane.errors import StoreOpsError, describe_validation

T = TypeVar("T")
console = Console(soft_wrap=True)
err = Console(stderr=True)


def fail(message: str) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(1)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """One readable line and a non-zero exit for anything the user got wrong."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoreOpsError as exc:
            fail(exc.detail)
        except msgspec.ValidationError as exc:
            fail(f"invalid input: {describe_validation(str(exc))}")
        except (ValueError, OSError) as exc:
            fail(str(exc))
        return None

    return wrapper


def run(settings: Settings, fn: Callable[[Ctx], Awaitable[T]]) -> T:
    from control_plane.runner import run_as

    return asyncio.run(run_as(settings, fn))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, header_style="bold")
    for c in columns:
        t.add_column(c)
    for row in rows:
        t.add_row(*(("" if v is None else str(v)) for v in row))
    console.print(t)


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """StoreOps: white-label control plane for retail store-operations automation."""
    try:
        ctx.obj = get_settings()
    except ValueError as exc:
        fail(str(exc))


# --- serve and database -----------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="bind address (default STOREOPS_HOST)")
@click.option("--port", default=None, type=int, help="port (default STOREOPS_PORT)")
@click.option("--workers", default=1, show_default=True, type=int)
@click.pass_obj
def serve(settings: Settings, host: str | None, port: int | None, workers: int) -> None:
    """Serve the control-plane API."""
    import uvicorn

    uvicorn.run(
        "control_plane.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )


@main.command()
@click.pass_obj
def worker(settings: Settings) -> None:
    """Run the periodic jobs (alert evaluation, notifications, rollouts) until stopped."""
    import signal

    from control_plane import jobs
    from control_plane.db import Database

    async def go() -> None:
        database = Database(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        click.echo(f"storeops worker: jobs {', '.join(sorted(jobs.registered()))}", err=True)
        try:
            await jobs.loop(database, stop)
        finally:
            await database.dispose()

    asyncio.run(go())


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_obj
@handle_errors
def db_upgrade(settings: Settings, revision: str) -> None:
    """Apply migrations, then make sure a JWT signing key exists."""
    from control_plane.db.migrate import upgrade
    from control_plane.identity.admin import ensure_signing_key

    with console.status(f"migrating {_safe_url(settings.migration_url)} to {revision}"):
        upgrade(settings, revision)
    console.print(f"database at [bold]{revision}[/bold]")
    created = run(settings, lambda c: ensure_signing_key(c, settings))
    if created:
        console.print(f"created signing key {created.kid} ({created.algorithm})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- partners and tenants ---------------------------------------------------------------


@main.group()
def partner() -> None:
    """Partners (MSPs, ERP partners, system integrators)."""


@partner.command("create")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option(
    "--kind", required=True, type=click.Choice(["msp", "erp_partner", "system_integrator"])
)
@click.option("--settings", "settings_json", default="{}", help="inherited settings as JSON")
@click.pass_obj
@handle_errors
def partner_create(settings: Settings, slug: str, name: str, kind: str, settings_json: str) -> None:
    from control_plane.tenancy import schemas, service

    data = msgspec.convert(
        {"slug": slug, "name": name, "kind": kind, "settings": _json(settings_json, "--settings")},
        schemas.PartnerCreate,
    )
    p = run(settings, lambda c: service.create_partner(c, data))
    console.print(f"created partner [bold]{p.slug}[/bold] {p.id}")


@partner.command("list")
@click.option("--limit", default=200, show_default=True)
@click.pass_obj
@handle_errors
def partner_list(settings: Settings, limit: int) -> None:
    from control_plane.tenancy import service

    rows, _ = run(settings, lambda c: service.list_partners(c, limit=limit))
    table(
        "Partners",
        ["id", "slug", "name", "kind", "status"],
        [(p.id, p.slug, p.name, p.kind, p.status) for p in rows],
    )


@main.group()
def tenant() -> None:
    """Tenants (retailers): onboard and lifecycle."""


def _json(raw: str, option: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{option} is not valid JSON: {exc.msg} at column {exc.colno}") from None


async def _by_slug(c: Ctx, model: Any, ref: str) -> UUID:
    """Accept an id or a slug on the command line."""
    from sqlalchemy import select

    from control_plane.errors import InvalidInput, NotFound

    try:
        return UUID(ref)
    except ValueError:
        pass
    found = (await c.session.scalars(select(model.id).where(model.slug == ref))).all()
    label = model.__tablename__.rstrip("s")
    if not found:
        raise NotFound(f"no {label} with slug {ref!r}")
    if len(found) > 1:
        raise InvalidInput(f"slug {ref!r} names several {label}s; use the id")
    return UUID(str(found[0]))


async def _partner_id(c: Ctx, ref: str) -> UUID:
    from control_plane.tenancy.models import Partner

    return await _by_slug(c, Partner, ref)


async def _tenant_id(c: Ctx, ref: str) -> UUID:
    from control_plane.tenancy.models import Tenant

    return await _by_slug(c, Tenant, ref)


@tenant.command("onboard")
@click.option("--partner", "partner_ref", required=True, help="partner id or slug")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--timezone", required=True, help="IANA zone, e.g. Europe/Paris")
@click.option(
    "--isolation-tier",
    default="shared_cluster",
    show_default=True,
    type=click.Choice(["shared_cluster", "dedicated_database", "dedicated_cluster"]),
)
@click.pass_obj
@handle_errors
def tenant_onboard(
    settings: Settings, partner_ref: str, slug: str, name: str, timezone: str, isolation_tier: str
) -> None:
    from control_plane.secrets.factory import make_store
    from control_plane.tenancy import lifecycle, schemas

    data = msgspec.convert(
        {"slug": slug, "name": name, "timezone": timezone, "isolation_tier": isolation_tier},
        schemas.TenantCreate,
    )

    store = make_store(settings)

    async def go(c: Ctx) -> Any:
        return await lifecycle.onboard(c, store, await _partner_id(c, partner_ref), data)

    from control_plane.runtimelink import bootstrap

    t = run(settings, go)
    console.print(f"onboarded tenant [bold]{t.slug}[/bold] {t.id} (status {t.status})")
    issued = bootstrap.onboarding_token(t)
    if issued:
        console.print(
            f"runtime bootstrap token (one use, until {issued.expires_at:%Y-%m-%d %H:%M} UTC): "
            f"{issued.token}"
        )


def _lifecycle(action: str) -> None:
    @tenant.command(action, help=f"{action.capitalize()} a tenant.")
    @click.argument("tenant_ref")
    @click.option("--reason", default=None)
    @click.pass_obj
    @handle_errors
    def command(settings: Settings, tenant_ref: str, reason: str | None) -> None:
        from control_plane.secrets.factory import make_store
        from control_plane.tenancy import lifecycle

        store = make_store(settings)

        async def go(c: Ctx) -> Any:
            return await lifecycle.transition(
                c, store, await _tenant_id(c, tenant_ref), action, reason=reason
            )

        t = run(settings, go)
        console.print(f"tenant [bold]{t.slug}[/bold] is now {t.status}")


for _action in ("activate", "suspend", "resume", "offboard"):
    _lifecycle(_action)


@tenant.command("list")
@click.option("--partner", "partner_ref", default=None, help="partner id or slug")
@click.option("--status", default=None)
@click.option("--limit", default=200, show_default=True)
@click.pass_obj
@handle_errors
def tenant_list(
    settings: Settings, partner_ref: str | None, status: str | None, limit: int
) -> None:
    from control_plane.tenancy import service

    async def go(c: Ctx) -> Any:
        pid = await _partner_id(c, partner_ref) if partner_ref else None
        return await service.list_tenants(c, partner_id=pid, status=status, limit=limit)

    rows, _ = run(settings, go)
    table(
        "Tenants",
        ["id", "partner", "slug", "name", "status", "timezone"],
        [(t.id, t.partner_id, t.slug, t.name, t.status, t.timezone) for t in rows],
    )


@tenant.command("helm-values")
@click.argument("tenant_ref")
@click.option(
    "--image-tag", default=None, help="image tag to run (default: the chart's appVersion)"
)
@click.pass_obj
@handle_errors
def tenant_helm_values(settings: Settings, tenant_ref: str, image_tag: str | None) -> None:
    """Print the values of a tenant's helm/storeops-tenant-runtime release (YAML)."""
    from control_plane import packaging

    async def go(c: Ctx) -> packaging.TenantRelease:
        return await packaging.load_tenant(c, await _tenant_id(c, tenant_ref))

    found = run(settings, go)
    text = packaging.render_values(found, settings, image_tag=image_tag)
    if found.namesakes:
        err.print(
            f"[yellow]warning:[/yellow] partner(s) {escape(', '.join(found.namesakes))} also "
            f"have a tenant {escape(found.slug)}: release {packaging.release_name(found)} and "
            f"database {packaging.database_name(found)} need separate namespaces and clusters",
            highlight=False,
            soft_wrap=True,
        )
    click.echo(text, nl=False)


@tenant.command("bootstrap-token")
@click.argument("tenant_ref")
@click.pass_obj
@handle_errors
def tenant_bootstrap_token(settings: Settings, tenant_ref: str) -> None:
    """Issue a single-use bootstrap token for the tenant's runtime (earlier unused ones stop
    working); it is printed once and only its digest is stored."""
    from control_plane.runtimelink import bootstrap

    async def go(c: Ctx) -> Any:
        return await bootstrap.issue(
            c, await _tenant_id(c, tenant_ref), settings.bootstrap_token_ttl_seconds
        )

    issued = run(settings, go)
    console.print(
        f"bootstrap token {issued.token}\n"
        f"expires         {issued.expires_at.isoformat()}\n"
        f"exchange at     {settings.issuer}/runtime/v1/bootstrap\n"
        "[yellow]hand it to the runtime now: it is not shown again[/yellow]",
        highlight=False,
    )


# --- identity ---------------------------------------------------------------------------


def _grant(role: str, node: str | None) -> dict[str, Any]:
    """``--role partner_admin --at partner:<id>`` -> a grant spec."""
    spec: dict[str, Any] = {"role": role}
    if node and node != "platform":
        kind, _, node_id = node.partition(":")
        if kind not in {"partner", "tenant", "region", "store"} or not node_id:
            raise ValueError(
                f"--at {node!r}: use platform, partner:<id>, tenant:<id>, region:<id> or store:<id>"
            )
        spec[f"{kind}_id"] = node_id
    return spec


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = click.prompt("password", hide_input=True, confirmation_prompt=True)
    return value


@main.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", required=True, help="e.g. partner_admin")
@click.option(
    "--at",
    "node",
    default="platform",
    show_default=True,
    help="platform | partner:<id> | tenant:<id> | ...",
)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_obj
@handle_errors
def user_create(
    settings: Settings, email: str, name: str, role: str, node: str, password_stdin: bool
) -> None:
    from control_plane.identity import schemas, service

    data = msgspec.convert(
        {
            "email": email,
            "name": name,
            "password": _read_password(password_stdin),
            "grants": [_grant(role, node)],
        },
        schemas.UserCreate,
    )
    u, _ = run(settings, lambda c: service.create_user(c, data))
    console.print(f"created user [bold]{u.email}[/bold] {u.id}")


@main.group()
def client() -> None:
    """OAuth2 API clients."""


@client.command("create")
@click.option("--name", required=True)
@click.option("--role", required=True)
@click.option("--at", "node", default="platform", show_default=True)
@click.pass_obj
@handle_errors
def client_create(settings: Settings, name: str, role: str, node: str) -> None:
    """Create a client; its secret is printed once and never stored."""
    from control_plane.identity import schemas, service

    data = msgspec.convert({"name": name, "grants": [_grant(role, node)]}, schemas.ClientCreate)
    c, _, secret = run(settings, lambda x: service.create_client(x, data))
    console.print(
        f"client_id     {c.client_id}\nclient_secret {secret}\n"
        "[yellow]store the secret now: it is not shown again[/yellow]"
    )


@main.group()
def keys() -> None:
    """JWT signing keys."""


@keys.command("rotate")
@click.option("--algorithm", type=click.Choice(["Ed25519", "RS256"]), default=None)
@click.pass_obj
@handle_errors
def keys_rotate(settings: Settings, algorithm: str | None) -> None:
    """New key signs; the old one verifies until it retires (token lifetime)."""
    from control_plane.identity.admin import rotate

    key, previous = run(settings, lambda c: rotate(c, settings, algorithm))
    console.print(f"signing with {key.kid} ({key.algorithm})")
    for k in previous:
        console.print(f"{k.kid} verifies until {k.retires_at:%Y-%m-%d %H:%M:%S} UTC")


@keys.command("retire")
@click.argument("kid")
@click.pass_obj
@handle_errors
def keys_retire(settings: Settings, kid: str) -> None:
    """Stop a rotated-out key from verifying now."""
    from control_plane.identity.admin import retire

    if run(settings, lambda c: retire(c, kid)) is None:
        fail(f"no key with kid {kid}")
    console.print(f"retired {kid}")


@keys.command("list")
@click.pass_obj
@handle_errors
def keys_list(settings: Settings) -> None:
    from control_plane.identity.admin import list_keys

    rows = run(settings, list_keys)
    table(
        "Signing keys",
        ["kid", "algorithm", "status", "created", "retires"],
        [
            (k.kid, k.algorithm, k.status, f"{k.created_at:%Y-%m-%d %H:%M}", k.retires_at)
            for k in rows
        ],
    )


# --- audit ------------------------------------------------------------------------------


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@click.pass_obj
@handle_errors
def audit_verify(settings: Settings) -> None:
    """Walk the chain; report every edited, deleted or reordered entry by position."""
    from control_plane.audit.service import verify_chain

    with console.status("verifying the audit chain"):
        count, problems = run(settings, lambda c: verify_chain(c.session))
    if problems:
        for p in problems:
            err.print(f"[red]broken:[/red] {escape(str(p))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    console.print(f"audit chain intact: {count} entries")


# --- secrets ----------------------------------------------------------------------------


@main.group()
def secret() -> None:
    """Partner and tenant secrets: values go in from stdin or a file, never from argv."""


def _secret_owner(tenant: str | None, partner: str | None) -> tuple[str, str]:
    if (tenant is None) == (partner is None):
        raise ValueError("name exactly one owner: --tenant <id or slug> or --partner <id or slug>")
    return ("tenants", tenant) if tenant else ("partners", partner or "")


def _secret_value(file: Path | None) -> str:
    if file is not None:
        value = file.read_text(encoding="utf-8")
    elif sys.stdin.isatty():
        value = click.prompt("value", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read()
    value = value.removesuffix("\n")
    if not value:
        raise ValueError("the secret value is empty")
    return value


SecretAction = Callable[..., Awaitable[None]]


def _secret_command(
    name: str, help_text: str, *, takes_value: bool
) -> Callable[[SecretAction], click.Command]:
    def decorate(fn: SecretAction) -> click.Command:
        @secret.command(name, help=help_text)
        @click.option("--tenant", default=None, help="tenant id or slug")
        @click.option("--partner", default=None, help="partner id or slug")
        @click.argument("secret_name", required=name != "list")
        @click.option(
            "--file",
            "file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            default=None,
            help="read the value from this file" if takes_value else "unused",
        )
        @click.pass_obj
        @handle_errors
        def command(
            settings: Settings,
            tenant: str | None,
            partner: str | None,
            secret_name: str | None,
            file: Path | None,
        ) -> None:
            from control_plane.secrets.factory import make_store

            kind, ref = _secret_owner(tenant, partner)
            value = _secret_value(file) if takes_value else None
            store = make_store(settings)

            async def go(c: Ctx) -> Any:
                from control_plane.tenancy.models import Partner, Tenant

                owner_id = await _by_slug(c, Tenant if kind == "tenants" else Partner, ref)
                return await fn(c, store, kind, owner_id, secret_name, value)

            run(settings, go)

        return command

    return decorate


@_secret_command("set", "Create a secret (value from stdin or --file).", takes_value=True)
async def secret_set(c: Ctx, store: Any, kind: Any, owner_id: UUID, name: str, value: str) -> None:
    from control_plane.secrets import service

    meta = await service.create(c, store, kind, owner_id, name, value)
    console.print(f"created {meta.name} version {meta.version}")


@_secret_command("rotate", "Write a new version (value from stdin or --file).", takes_value=True)
async def secret_rotate(
    c: Ctx, store: Any, kind: Any, owner_id: UUID, name: str, value: str
) -> None:
    from control_plane.secrets import service

    meta = await service.rotate(c, store, kind, owner_id, name, value)
    console.print(f"rotated {meta.name} to version {meta.version}")


@_secret_command("delete", "Soft-delete the current version.", takes_value=False)
async def secret_delete(c: Ctx, store: Any, kind: Any, owner_id: UUID, name: str, _: None) -> None:
    from control_plane.secrets import service

    await service.delete(c, store, kind, owner_id, name)
    console.print(f"deleted {name}")


@_secret_command("list", "List secrets' metadata (never values).", takes_value=False)
async def secret_list(c: Ctx, store: Any, kind: Any, owner_id: UUID, _name: None, _: None) -> None:
    from control_plane.secrets import service

    metas = await service.list_metadata(c, store, kind, owner_id)
    table(
        "Secrets",
        ["name", "version", "updated", "by", "deleted"],
        [
            (m.name, m.version, f"{m.updated_at:%Y-%m-%d %H:%M}", m.updated_by, m.deleted)
            for m in metas
        ],
    )


@secret.command("rotate-master-key")
@click.option(
    "--new-key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="the new key (base64 of 32 bytes); default: generate one",
)
@click.pass_obj
@handle_errors
def secret_rotate_master_key(settings: Settings, new_key_file: Path | None) -> None:
    """Re-wrap every data key of the local store with a new master key."""
    from control_plane.secrets.factory import make_store, master_key_file, write_key_file
    from control_plane.secrets.local import (
        LocalSecretStore,
        derive_key_id,
        generate_master_key,
        read_key_file,
    )

    store = make_store(settings)
    if not isinstance(store, LocalSecretStore):
        fail("only the local store has a master key; Vault keeps its own")
        return
    new_key = read_key_file(new_key_file) if new_key_file else generate_master_key()
    count = asyncio.run(store.rotate_master_key(new_key, derive_key_id(new_key)))
    key_file = master_key_file(settings)
    if new_key_file is None and key_file is not None:
        write_key_file(key_file, new_key)
        console.print(f"re-wrapped {count} data key(s); the new key is in {key_file}")
    elif new_key_file is None:
        console.print(f"re-wrapped {count} data key(s); set STOREOPS_MASTER_KEY to the new key:")
        console.print(base64.b64encode(new_key).decode(), highlight=False)
    else:
        console.print(
            f"re-wrapped {count} data key(s); point STOREOPS_MASTER_KEY_FILE at {new_key_file}"
        )


# --- catalog ----------------------------------------------------------------------------


@main.group()
def catalog() -> None:
    """The workflow template catalog."""


@catalog.command("lint")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def catalog_lint(paths: tuple[Path, ...]) -> None:
    """Validate template files (folders are searched); print every problem."""
    from control_plane.catalog.lint import lint_paths

    report = lint_paths(paths)
    for problem in report.problems:
        console.print(escape(str(problem)), highlight=False, soft_wrap=True)
    summary = f"{report.files} file(s), {len(report.problems)} problem(s)"
    if report.problems or not report.files:
        err.print(f"[red]{escape(summary)}[/red]" if report.files else "no template files found")
        sys.exit(1)
    console.print(f"{summary}: all valid")


@catalog.command("publish")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.pass_obj
@handle_errors
def catalog_publish(settings: Settings, paths: tuple[Path, ...]) -> None:
    """Lint, then publish every version found; identical content again is a no-op."""
    counts = _publish(settings, paths, quiet=False)
    console.print(", ".join(f"{n} {k}" for k, n in counts.items()))
    if counts["refused"]:
        sys.exit(1)


def _publish(settings: Settings, paths: Sequence[Path], *, quiet: bool) -> dict[str, int]:
    from control_plane.catalog import service
    from control_plane.catalog.lint import lint_paths

    report = lint_paths(paths)
    if report.problems:
        for problem in report.problems:
            err.print(escape(str(problem)), highlight=False, soft_wrap=True)
        fail(f"{len(report.problems)} problem(s): nothing published")
    counts = {"published": 0, "unchanged": 0, "refused": 0}
    for path, template in report.templates:
        label = f"{template.id} {template.version}"
        text, shown = path.read_text(encoding="utf-8"), str(path)
        try:
            result = run(settings, lambda c: service.publish(c, text, shown))  # noqa: B023
        except StoreOpsError as exc:
            counts["refused"] += 1
            err.print(f"[red]refused[/red]   {escape(label)}: {escape(exc.detail)}", soft_wrap=True)
            continue
        state = "published" if result.created else "unchanged"
        counts[state] += 1
        if not quiet:
            console.print(f"{state:<10}{escape(label)}", highlight=False)
    return counts


@catalog.command("diff")
@click.argument("template_slug")
@click.argument("old")
@click.argument("new")
@click.option("--owner", default="platform", show_default=True, help="platform or a partner slug")
@click.pass_obj
@handle_errors
def catalog_diff(settings: Settings, template_slug: str, old: str, new: str, owner: str) -> None:
    """Show what changed between two published versions, breaking changes first."""
    from control_plane.catalog import service

    async def go(c: Ctx) -> Any:
        line = await service.find_template(c, template_slug, owner)
        return await service.diff(c, line.id, old, new)

    result = run(settings, go)
    for change in result.breaking:
        console.print(f"[yellow]breaking:[/yellow] {escape(change)}")
    console.print(escape(result.unified) or "no differences", highlight=False, soft_wrap=True)


@catalog.command("docs")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("docs/templates"), show_default=True
)
@handle_errors
def catalog_docs(paths: tuple[Path, ...], out: Path) -> None:
    """Write one Markdown page per template version, with a Mermaid flow of its steps."""
    from control_plane.catalog.docs import write_docs
    from control_plane.catalog.lint import lint_paths

    report = lint_paths(paths)
    if report.problems:
        fail(f"{len(report.problems)} problem(s); run `storeops catalog lint` first")
    written = write_docs([t for _, t in report.templates], out)
    console.print(f"wrote {len(written)} page(s) to {out}")


# --- deployments ------------------------------------------------------------------------


@main.group()
def deploy() -> None:
    """Deployments: which template versions a tenant runs (plan and apply a file)."""


def _desired_file(path: Path) -> Any:
    import yaml

    from control_plane.deployments.schemas import DesiredDeployments

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or "deployments" not in raw:
        raise ValueError(f"{path}: expected a mapping with a 'deployments' list")
    return msgspec.convert(raw, DesiredDeployments)


def _every_problem(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An invalid deployment list names every problem, on one line."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from control_plane.deployments.validation import InvalidDeployment

        try:
            return fn(*args, **kwargs)
        except InvalidDeployment as exc:
            fail("; ".join(str(p) for p in exc.problems))
        return None

    return wrapper


def _show_plan(changes: Sequence[Any]) -> None:
    rows = []
    for c in changes:
        versions = " -> ".join(v for v in (c.from_version, c.to_version) if v)
        rows.append((c.template_id, c.action, versions, ", ".join(c.fields)))
    table("Plan", ["template", "change", "version", "fields"], rows)


@deploy.command("list")
@click.argument("tenant_ref")
@click.pass_obj
@handle_errors
def deploy_list(settings: Settings, tenant_ref: str) -> None:
    """The tenant's deployments, desired against what its runtime reported."""
    from control_plane.deployments import service

    async def go(c: Ctx) -> Any:
        return await service.desired_vs_reported(c, await _tenant_id(c, tenant_ref))

    view = run(settings, go)
    table(
        f"Deployments (generation {view.generation})",
        ["template", "version", "status", "reported", "drift", "id"],
        [
            (
                d.template_id,
                d.version,
                d.status,
                d.reported.status if d.reported else "-",
                "yes" if d.drift else "no",
                d.id,
            )
            for d in view.deployments
        ],
    )
    for d in view.deployments:
        if d.drift_reason:
            console.print(f"{escape(d.template_id)}: {escape(d.drift_reason)}", highlight=False)


@deploy.command("plan")
@click.argument("tenant_ref")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@handle_errors
@_every_problem
def deploy_plan(settings: Settings, tenant_ref: str, file: Path) -> None:
    """What applying FILE (the tenant's complete desired list) would change."""
    from control_plane.deployments import plan

    data = _desired_file(file)

    async def go(c: Ctx) -> Any:
        return await plan.plan(c, await _tenant_id(c, tenant_ref), data)

    result = run(settings, go)
    _show_plan(result.changes)
    console.print(f"generation {result.generation}; " + _summary_line(result.summary))


def _summary_line(summary: dict[str, int]) -> str:
    return ", ".join(f"{n} {action}" for action, n in summary.items())


@deploy.command("apply")
@click.argument("tenant_ref")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@handle_errors
@_every_problem
def deploy_apply(settings: Settings, tenant_ref: str, file: Path) -> None:
    """Plan FILE, print the plan, then apply exactly that plan as one new generation."""
    from control_plane.deployments import plan

    data = _desired_file(file)

    async def make_plan(c: Ctx) -> Any:
        return await plan.plan(c, await _tenant_id(c, tenant_ref), data)

    planned = run(settings, make_plan)
    _show_plan(planned.changes)

    async def go(c: Ctx) -> Any:
        # If-Match: anything changed since the plan was printed refuses the apply.
        return await plan.apply(c, planned.tenant_id, data, planned.etag)

    applied = run(settings, go)
    if applied.generation == planned.generation:
        console.print(f"nothing to change; generation stays {applied.generation}")
    else:
        console.print(
            f"applied ({_summary_line(applied.summary)}); generation {applied.generation}"
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True, type=int)
@click.option(
    "--seed", default=42, show_default=True, type=int, help="fixes the fake data and faults"
)
def sandbox(host: str, port: int, seed: int) -> None:
    """Serve simulated ERP, POS, WMS, CRM, HR, service desk, eCommerce and payments systems."""
    from tenant_runtime.sandbox import SandboxConfig, serve

    console.print(f"sandbox at http://{host}:{port}/ (operations at /_sandbox/operations)")
    serve(host, port, SandboxConfig(seed=seed))


# --- telemetry --------------------------------------------------------------------------


@main.group()
def telemetry() -> None:
    """Telemetry storage: retention and rollups."""


@telemetry.command("retention")
@click.option(
    "--keep-days",
    default=30,
    show_default=True,
    type=click.IntRange(min=1),
    help="whole days (UTC) of raw events kept before today",
)
@click.pass_obj
@handle_errors
def telemetry_retention(settings: Settings, keep_days: int) -> None:
    """Drop raw events older than --keep-days (whole day partitions on PostgreSQL) and refuse
    late copies of them; rollups are kept. Runs as the table owner
    (STOREOPS_ADMIN_DATABASE_URL) and makes the coming days' partitions too."""
    from control_plane.telemetry import apply_retention

    result = asyncio.run(apply_retention(settings, keep_days))
    console.print(f"horizon {result.horizon.isoformat()}: older events are dropped and refused")
    for name in result.dropped_partitions:
        console.print(f"dropped {name}", highlight=False)
    for name in result.created_partitions:
        console.print(f"created {name}", highlight=False)
    console.print(
        f"{len(result.dropped_partitions)} partition(s) dropped,"
        f" {result.deleted_rows} row(s) deleted"
    )


_TIMES = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]


@telemetry.command("rollup")
@click.option("--since", type=click.DateTime(_TIMES), default=None, help="UTC; default 24 h ago")
@click.option("--until", type=click.DateTime(_TIMES), default=None, help="UTC; default now")
@click.option("--tenant", "tenant_ref", default=None, help="one tenant (id or slug); default all")
@click.pass_obj
@handle_errors
def telemetry_rollup(settings: Settings, since: Any, until: Any, tenant_ref: str | None) -> None:
    """Rebuild the rollups of the whole hours in [--since, --until) from the raw events."""
    from datetime import UTC, datetime, timedelta

    from control_plane.db import Database
    from control_plane.runner import run_as
    from control_plane.telemetry import rebuild_rollups

    end = until.replace(tzinfo=UTC) if until else datetime.now(UTC)
    start = since.replace(tzinfo=UTC) if since else end - timedelta(hours=24)

    async def go() -> Any:
        db = Database(settings)
        try:
            tenant_id = None
            if tenant_ref:
                tenant_id = await run_as(settings, lambda c: _tenant_id(c, tenant_ref), db=db)
            return await rebuild_rollups(db, start, end, tenant_id)
        finally:
            await db.dispose()

    result = asyncio.run(go())
    console.print(
        f"rebuilt {result.rollups} rollup(s) from {result.events} event(s),"
        f" {result.since.isoformat()} to {result.until.isoformat()}"
    )


# --- tenant runtime ---------------------------------------------------------------------


@main.group()
def runtime() -> None:
    """One tenant's runtime (settings from STOREOPS_RUNTIME_* variables)."""


def _runtime_settings() -> Any:
    from tenant_runtime.config import RuntimeSettings

    return RuntimeSettings.from_env()


@runtime.command("db-upgrade")
@handle_errors
def runtime_db_upgrade() -> None:
    """Apply the runtime database's migrations."""
    from tenant_runtime.db.migrate import upgrade

    settings = _runtime_settings()
    with console.status(f"migrating the runtime database of tenant {settings.tenant_id}"):
        upgrade(settings.database_url)
    console.print("runtime database at head")


@runtime.command("worker")
@click.option("--name", default="worker", show_default=True, help="this worker's name in leases")
@handle_errors
def runtime_worker(name: str) -> None:
    """Run Dramatiq threads for one tenant, with the sweeper, timers and schedules."""
    from tenant_runtime.worker import run as run_worker

    settings = _runtime_settings()
    console.print(f"runtime worker {name} for tenant {settings.tenant_id}")
    run_worker(settings, name=name)


@runtime.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8100, show_default=True, type=int)
@click.option(
    "--bootstrap-token",
    default=None,
    envvar="STOREOPS_RUNTIME_BOOTSTRAP_TOKEN",
    help="one-time token from onboarding: exchanged for this runtime's own credentials",
)
@handle_errors
def runtime_serve(host: str, port: int, bootstrap_token: str | None) -> None:
    """Serve one tenant's API, signed webhooks and portal.

    In embedded mode (no STOREOPS_RUNTIME_REDIS_URL) this process executes the steps too.
    """
    from tenant_runtime.serve import run as run_server

    settings = _runtime_settings()
    from tenant_runtime.runtime import has_credentials

    if bootstrap_token and has_credentials(settings):
        console.print("already bootstrapped: the one-time token is not needed again")
    elif bootstrap_token:
        from tenant_runtime.link import ControlPlane, LinkError, credentials_file

        async def exchange() -> None:
            link = ControlPlane(settings)
            try:
                await link.bootstrap(bootstrap_token)
            finally:
                await link.close()

        try:
            asyncio.run(exchange())
        except LinkError as exc:
            fail(str(exc))
        console.print(f"bootstrapped: credentials kept in {credentials_file(settings)}")
    mode = "Dramatiq on Redis" if settings.redis_url else "embedded, in-process steps"
    console.print(f"tenant runtime {settings.tenant_id} at http://{host}:{port}/portal ({mode})")
    run_server(settings, host, port)


# --- demo -------------------------------------------------------------------------------


@main.command()
@click.option("--reset/--keep", default=False, help="start from an empty embedded database")
@click.option("--serve/--no-serve", "serve_after", default=True)
@click.pass_obj
@handle_errors
def demo(settings: Settings, reset: bool, serve_after: bool) -> None:
    """Seed demo data on the embedded defaults, print URLs and logins, then serve."""
    from control_plane.db.migrate import upgrade
    from control_plane.demo import DEMO_PASSWORD, seed
    from control_plane.identity.admin import ensure_signing_key

    if reset:
        if settings.is_postgres:
            fail("--reset only applies to the embedded SQLite database")
        shutil.rmtree(settings.home, ignore_errors=True)
    with console.status("migrating the database"):
        upgrade(settings)
    run(settings, lambda c: ensure_signing_key(c, settings))
    with console.status("seeding demo data"):
        result = run(settings, seed)
    library = Path(__file__).resolve().parents[1] / "templates"
    if library.is_dir():
        with console.status("publishing the workflow template library"):
            published = _publish(settings, [library], quiet=True)
        console.print(
            f"template catalog: {published['published']} published, "
            f"{published['unchanged']} already there"
        )
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"\n[bold]StoreOps control plane[/bold] at {base}")
    console.print(f"  NOC console         {base}/noc   (sign in as noc@storeops.local)")
    console.print(f"  API docs (OpenAPI)  {base}/schema/openapi.json")
    console.print(f"  health              {base}/healthz   {base}/readyz   {base}/metrics")
    console.print(f"  JWKS                {base}/.well-known/jwks.json")
    if result.created:
        table(
            f"Demo logins (password: {DEMO_PASSWORD})",
            ["email", "role", "where"],
            [(x.email, x.role, x.where) for x in result.logins],
        )
        console.print(
            f"API client (partner_admin at northwind): {result.client_id} / {result.client_secret}"
        )
    else:
        console.print(
            f"demo data already present (logins use password {DEMO_PASSWORD}); --reset starts over"
        )
    if not serve_after:
        return
    import uvicorn

    from control_plane import demo_brand, demo_fleet
    from control_plane.app import create_app

    fleet = run(settings, lambda ctx: demo_fleet.members(ctx, settings.home))
    asyncio.run(demo_fleet.credentials(settings, fleet))
    run(settings, demo_fleet.noc_scene)
    app = create_app(settings)
    with console.status("publishing the demo brands and verifying their domains"):
        run(settings, demo_brand.publish)
        pending = run(settings, lambda ctx: demo_brand.claim(ctx, settings))
        asyncio.run(demo_brand.verify(settings, app, pending))
    table(
        "White-label brands on their own hosts (*.localhost is loopback)",
        ["brand", "sign in at"],
        demo_brand.urls(settings),
    )
    table(
        "Tenant runtimes (embedded: SQLite, in-process steps) and their sandboxes",
        ["retailer", "portal", "sandbox"],
        [(m.name, f"{m.runtime_url}/portal", f"{m.sandbox_url}/_sandbox/stats") for m in fleet],
    )
    console.print(
        "Light traffic runs in the background: runs start, sandbox events arrive as signed "
        f"webhooks, some tasks get decided. Logs: {settings.home / 'fleet'}"
    )
    console.print(
        f"{demo_fleet.DEGRADED}'s ERP fails most calls, so the NOC shows it degraded with an "
        "open alert within a minute; maintenance-incident 1.2.0 (incident triage) is rolling "
        "out across Northwind (`storeops rollout status --watch`): FreshMart's vague incidents "
        "wait for a category review by north@freshmart.example. "
        f"Alert e-mails: {settings.home / 'mail'}; "
        f"task and escalation e-mails, in each retailer's brand: {settings.home / 'fleet'}/<retailer>/mail"
    )
    procs = demo_fleet.launch(
        fleet, base, settings.home, issuer=settings.issuer, audience=settings.jwt_audience
    )
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")
    finally:
        demo_fleet.stop(procs)


@main.command("demo-traffic", hidden=True)
@click.argument("fleet_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def demo_traffic(fleet_file: Path) -> None:
    """Keep the demo fleet busy (started by ``storeops demo``)."""
    from control_plane.demo_fleet import Traffic

    time.sleep(3)  # let the control plane and the runtimes come up
    Traffic(json.loads(fleet_file.read_text())).forever()


# --- fleet rollouts ---------------------------------------------------------------------


@main.group()
def rollout() -> None:
    """Fleet rollouts: move a template version across tenants in gated waves."""


def _rollout_view(settings: Settings, rollout_id: UUID) -> Any:
    from control_plane.rollouts import service, views

    async def go(c: Ctx) -> Any:
        return await views.detail(c, await service.get(c, rollout_id))

    return run(settings, go)


def _watch(settings: Settings, rollout_id: UUID, interval: float) -> Any:
    """Redraw until the rollout ends (or Ctrl-C); the worker or API process moves it."""
    from rich.live import Live

    from control_plane.rollouts.display import render

    view = _rollout_view(settings, rollout_id)
    with Live(render(view), console=console, refresh_per_second=4) as live:
        while view.status not in ("completed", "rolled_back", "aborted"):
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                break
            view = _rollout_view(settings, rollout_id)
            live.update(render(view))
    return view


def _waves(raw: str) -> list[int | str]:
    return [int(p) if p.strip().isdigit() else p.strip() for p in raw.split(",") if p.strip()]


@rollout.command("start")
@click.option("--template", "template_id", required=True, help="the template's id (slug)")
@click.option("--version", "version", required=True, help="the version to move to")
@click.option("--partner", "partner_ref", default=None, help="a partner's fleet (id or slug)")
@click.option("--tenant", "tenant_refs", multiple=True, help="a tenant (id or slug); repeat")
@click.option(
    "--match",
    "matches",
    multiple=True,
    help="label=value: a tenant label, or timezone, isolation_tier, region, status",
)
@click.option("--canary", "canary_ref", default=None, help="the tenant to move first")
@click.option("--waves", default="1,10%,rest", show_default=True, help="counts, N% or rest")
@click.option("--soak", "soak_seconds", default=600, show_default=True, type=int)
@click.option("--apply-timeout", "apply_timeout", default=300, show_default=True, type=int)
@click.option("--max-failure-increase", default=0.05, show_default=True, type=float)
@click.option("--max-breach-increase", default=0.05, show_default=True, type=float)
@click.option("--min-runs", default=20, show_default=True, type=int)
@click.option("--no-auto-rollback", is_flag=True, help="pause on regression instead")
@click.option("--watch", is_flag=True, help="show live progress until it ends")
@click.option("--interval", default=1.0, show_default=True, type=float)
@click.pass_obj
@handle_errors
def rollout_start(
    settings: Settings,
    template_id: str,
    version: str,
    partner_ref: str | None,
    tenant_refs: tuple[str, ...],
    matches: tuple[str, ...],
    canary_ref: str | None,
    waves: str,
    soak_seconds: int,
    apply_timeout: int,
    max_failure_increase: float,
    max_breach_increase: float,
    min_runs: int,
    no_auto_rollback: bool,
    watch: bool,
    interval: float,
) -> None:
    """Start a rollout; the first wave (the canary) moves at once."""
    from control_plane.rollouts import schemas, service, views
    from control_plane.rollouts.display import render

    pairs = [m.partition("=") for m in matches]
    if bad := [m for m, (_, sep, _) in zip(matches, pairs, strict=True) if not sep]:
        raise ValueError(f"--match {bad[0]!r}: use label=value")

    async def go(c: Ctx) -> Any:
        data = msgspec.convert(
            {
                "template_id": template_id,
                "version": version,
                "partner_id": str(await _partner_id(c, partner_ref)) if partner_ref else None,
                "tenant_ids": [str(await _tenant_id(c, r)) for r in tenant_refs] or None,
                "match": {k: v for k, _, v in pairs} or None,
                "canary": str(await _tenant_id(c, canary_ref)) if canary_ref else None,
                "waves": _waves(waves),
                "soak_seconds": soak_seconds,
                "apply_timeout_seconds": apply_timeout,
                "gates": {
                    "max_failure_rate_increase": max_failure_increase,
                    "max_breach_rate_increase": max_breach_increase,
                    "min_runs": min_runs,
                },
                "auto_rollback": not no_auto_rollback,
            },
            schemas.RolloutCreate,
        )
        return await views.detail(c, await service.create(c, data))

    view = run(settings, go)
    if watch:
        view = _watch(settings, view.id, interval)
    else:
        console.print(render(view))
    console.print(f"rollout {view.id} {view.status}")


@rollout.command("status")
@click.argument("rollout_id", required=False, type=click.UUID)
@click.option("--watch", is_flag=True, help="show live progress until it ends")
@click.option("--interval", default=1.0, show_default=True, type=float)
@click.pass_obj
@handle_errors
def rollout_status(
    settings: Settings, rollout_id: UUID | None, watch: bool, interval: float
) -> None:
    """One rollout's waves, tenants and gate readings; without an id, the latest rollouts."""
    from control_plane.rollouts import views
    from control_plane.rollouts.display import render

    if rollout_id is None:

        async def latest(c: Ctx) -> Any:
            from sqlalchemy import select

            from control_plane.rollouts.models import Rollout

            rows = (
                await c.session.scalars(select(Rollout).order_by(Rollout.id.desc()).limit(50))
            ).all()
            counts = await views.tenant_counts(c, [r.id for r in rows])
            return [views.summary(r, counts.get(r.id, 0)) for r in rows]

        table(
            "Rollouts",
            ["id", "template", "version", "status", "wave", "tenants", "reason"],
            [
                (r.id, r.template_id, r.version, r.status,
                 f"{r.current_wave + 1}/{r.wave_count}", r.tenant_count, r.reason or "")
                for r in run(settings, latest)
            ],
        )  # fmt: skip
        return
    if watch:
        _watch(settings, rollout_id, interval)
    else:
        console.print(render(_rollout_view(settings, rollout_id)))


def _act(action: str) -> None:
    @rollout.command(action)
    @click.argument("rollout_id", type=click.UUID)
    @click.option("--reason", default=None)
    @click.pass_obj
    @handle_errors
    def command(settings: Settings, rollout_id: UUID, reason: str | None) -> None:
        from control_plane.rollouts import service, views

        async def go(c: Ctx) -> Any:
            fn = service.promote if action == "promote" else service.abort
            return await views.detail(c, await fn(c, rollout_id, reason))

        view = run(settings, go)
        why = f": {view.reason}" if view.reason else ""
        console.print(f"rollout {view.id} {view.status}{why}")

    command.__doc__ = {
        "promote": "Skip the rest of the current soak, or resume a paused rollout.",
        "abort": "Stop and roll every moved tenant back to its previous version.",
    }[action]


_act("promote")
_act("abort")


@main.group()
def triage() -> None:
    """Incident triage models: evaluation on labelled files."""


@triage.command("eval")
@click.argument("labelled", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "kind",
    type=click.Choice(["tfidf", "embeddings"]),
    default="tfidf",
    show_default=True,
    help="embeddings needs the storeops[ai] extra",
)
@handle_errors
def triage_eval(labelled: Path, kind: str) -> None:
    """Judge LABELLED (CSV: text,category,priority) with a model trained on the project's
    labelled incidents: per-class precision, recall and F1, accuracy, and the share routed
    automatically at the model's threshold with their accuracy."""
    from tenant_runtime.triage.embed import ModelUnavailable
    from tenant_runtime.triage.evaluate import evaluate_file, table
    from tenant_runtime.triage.model import make

    try:
        make(kind)  # a missing extra is said before any training starts
        with console.status("training on the project's labelled incidents and evaluating"):
            found = evaluate_file(labelled, lambda: make(kind))
    except ModelUnavailable as exc:
        fail(str(exc))
        return
    for evaluation in found:
        console.print(table(evaluation) + "\n", highlight=False)


# Command groups kept with their feature; imported last, once ``main`` exists.
from control_plane.billing import cli as _billing_cli  # noqa: E402, F401
from control_plane.branding import cli as _brand_cli  # noqa: E402, F401

if __name__ == "__main__":
    main()
