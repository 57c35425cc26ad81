"""One tenant runtime's settings, from ``STOREOPS_RUNTIME_*`` environment variables."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

_PREFIX = "STOREOPS_RUNTIME_"


@dataclass(frozen=True)
class RuntimeSettings:
    tenant_id: UUID
    home: Path = Path(".storeops")
    #: Empty: the embedded SQLite file <home>/runtime-<tenant>.db.
    database_url: str = ""
    #: Empty: in-process dispatch (embedded mode); else Dramatiq on this Redis.
    redis_url: str = ""
    worker_threads: int = 8
    lease_seconds: int = 60
    #: How often the worker relays the outbox and sweeps for overdue steps.
    sweep_seconds: float = 1.0
    #: Connector name -> {"base_url": ..., "auth": {...}, "timeout": s, "attempts": n}:
    #: set by deployments (later from the control plane's desired state).
    bindings: dict[str, Any] = field(default_factory=dict)
    #: A JSON file {"deployments": {template_id: {"version", "params"}}, "stores": {id:
    #: {"code", "name", "region_id", "timezone", "opening_hours", "holidays"}}}.
    desired_file: Path | None = None
    #: Where template versions are read from (``<dir>/<id>/<version>.yaml``).
    templates_dir: Path = Path(__file__).resolve().parents[1] / "templates"
    #: Inbound webhook signing secrets per source system (``whsec_...``; several during
    #: a rotation).
    webhook_secrets: dict[str, list[str]] = field(default_factory=dict)
    #: The control plane: JWKS for verifying callers, the secret broker.
    control_plane_url: str = ""
    #: The ``iss`` of the control plane's tokens (its public URL) when the runtime reaches
    #: it by another address; ``control_plane_url`` by default.
    token_issuer: str = ""
    token_audience: str = "storeops-api"  # noqa: S105 - an audience name, not a secret
    #: none | broker (the control plane's broker, with ``runtime_token``) | vault (AppRole).
    secrets_from: str = "none"
    runtime_token: str = ""
    #: This runtime's own client credentials at the control plane (else the file written
    #: by ``runtime serve --bootstrap-token``).
    client_id: str = ""
    client_secret: str = ""
    #: Seconds between heartbeats (and at most between telemetry sends).
    heartbeat_seconds: float = 30.0
    #: Seconds between passes of the recurring-pattern job (daily; the first at start).
    insight_seconds: float = 86400.0
    vault_addr: str = ""
    vault_role_id: str = ""
    vault_wrapped_secret_id: str = ""
    vault_mount: str = "secret"
    vault_prefix: str = "storeops"
    #: Email notifications go out through this SMTP server; empty: each message is written
    #: to ``<home>/mail/<notification id>.eml`` instead.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    #: The address emails come from; the display name is the brand's sender name.
    mail_from: str = "notifications@storeops.localhost"
    #: Failed sends are retried with backoff, then given up (the error stays on the row).
    mail_max_attempts: int = 8
    #: Who holds a role where, for email: ``role@scope`` as tasks name it
    #: (``store_manager@store:<id or code>``, ``regional_manager@region:<id>``,
    #: ``retailer_admin@tenant``) -> addresses.
    contacts: dict[str, list[str]] = field(default_factory=dict)
    #: The portal's public address, for links in emails (none when empty).
    portal_url: str = ""

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite+aiosqlite:///{self.home / f'runtime-{self.tenant_id}.db'}"
            object.__setattr__(self, "database_url", url)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> RuntimeSettings:
        source = os.environ if env is None else env

        def get(name: str, default: str = "") -> str:
            return source.get(_PREFIX + name, default)

        tenant = get("TENANT_ID")
        if not tenant:
            raise ValueError(f"{_PREFIX}TENANT_ID is required: the runtime serves one tenant")
        bindings, hooks = _json(get, "BINDINGS"), _json(get, "WEBHOOK_SECRETS")
        contacts = _json(get, "CONTACTS")
        provider = get("SECRET_PROVIDER", "none")
        if provider not in ("none", "broker", "vault"):
            raise ValueError(
                f"{_PREFIX}SECRET_PROVIDER must be none, broker or vault, not {provider!r}"
            )
        try:
            return cls(
                tenant_id=UUID(tenant),
                home=Path(get("HOME", ".storeops")),
                database_url=get("DATABASE_URL"),
                redis_url=get("REDIS_URL"),
                worker_threads=int(get("WORKER_THREADS", "8")),
                lease_seconds=int(get("LEASE_SECONDS", "60")),
                sweep_seconds=float(get("SWEEP_SECONDS", "1.0")),
                bindings=bindings,
                desired_file=Path(get("DESIRED_FILE")) if get("DESIRED_FILE") else None,
                templates_dir=Path(get("TEMPLATES_DIR"))
                if get("TEMPLATES_DIR")
                else cls.templates_dir,
                webhook_secrets={
                    k: [v] if isinstance(v, str) else list(v) for k, v in hooks.items()
                },
                control_plane_url=get("CONTROL_PLANE_URL"),
                token_issuer=get("TOKEN_ISSUER"),
                token_audience=get("TOKEN_AUDIENCE", "storeops-api"),
                secrets_from=provider,
                runtime_token=get("TOKEN"),
                client_id=get("CLIENT_ID"),
                client_secret=get("CLIENT_SECRET"),
                heartbeat_seconds=float(get("HEARTBEAT_SECONDS", "30")),
                insight_seconds=float(get("INSIGHT_SECONDS", "86400")),
                vault_addr=get("VAULT_ADDR"),
                vault_role_id=get("VAULT_ROLE_ID"),
                vault_wrapped_secret_id=get("VAULT_WRAPPED_SECRET_ID"),
                vault_mount=get("VAULT_MOUNT", "secret"),
                vault_prefix=get("VAULT_PREFIX", "storeops"),
                smtp_host=get("SMTP_HOST"),
                smtp_port=int(get("SMTP_PORT", "25")),
                smtp_username=get("SMTP_USERNAME"),
                smtp_password=get("SMTP_PASSWORD"),
                smtp_starttls=get("SMTP_STARTTLS", "false").lower() in ("1", "true", "yes"),
                mail_from=get("MAIL_FROM", cls.mail_from),
                mail_max_attempts=int(get("MAIL_MAX_ATTEMPTS", "8")),
                contacts={
                    k: [v] if isinstance(v, str) else [str(a) for a in v]
                    for k, v in contacts.items()
                },
                portal_url=get("PORTAL_URL"),
            )
        except ValueError as exc:
            raise ValueError(f"invalid runtime setting: {exc}") from None


def _json(get: Any, name: str) -> dict[str, Any]:
    try:
        value = json.loads(get(name, "{}"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{_PREFIX}{name} is not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{_PREFIX}{name} must be a JSON object")
    return value
