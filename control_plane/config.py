"""The one settings object, read from ``STOREOPS_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

_PREFIX = "STOREOPS_"
_DEFAULT_HOME = Path(".storeops")


@dataclass(frozen=True)
class Settings:
    """Every knob of the control plane; each field maps to ``STOREOPS_<FIELD>``."""

    #: Where embedded state (SQLite files, local keys) lives.
    home: Path = _DEFAULT_HOME
    #: The application's database URL. On PostgreSQL this role must not own the tables.
    #: Empty means the embedded SQLite file ``<home>/control_plane.db``.
    database_url: str = ""
    #: The URL migrations run with (the table owner). Defaults to ``database_url``.
    admin_database_url: str = ""
    #: The PostgreSQL role the application connects as; migrations grant it access.
    db_app_role: str = "storeops_app"
    db_pool_size: int = 10
    db_echo: bool = False
    #: Redis for Dramatiq queues; empty means in-process dispatch (embedded mode).
    redis_url: str = ""
    #: Public base URL of the control plane; also the JWT issuer.
    public_url: str = "http://localhost:8000"
    jwt_audience: str = "storeops-api"
    access_token_ttl_seconds: int = 900
    #: Supported: Ed25519 (EdDSA, named as RFC 9864 has it) or RS256.
    jwt_algorithm: str = "Ed25519"
    #: How long a key keeps verifying after rotation; defaults to the token lifetime.
    key_retirement_seconds: int = 0
    max_body_bytes: int = 1_048_576
    idempotency_ttl_hours: int = 24
    #: Where secret values live: "local" (AES-GCM files under home) or "vault".
    secrets_backend: str = "local"
    #: The local store's master key: base64 of 32 bytes, or a file holding it. With
    #: neither, embedded mode creates <home>/master.key (mode 0600) on first use.
    master_key: str = ""
    master_key_file: str = ""
    vault_addr: str = ""
    vault_token: str = ""
    vault_mount: str = "secret"
    vault_prefix: str = "storeops"
    #: How long a runtime may cache a resolved secret value, in seconds.
    secret_cache_seconds: int = 300
    #: How long a runtime bootstrap token stays exchangeable, in seconds.
    bootstrap_token_ttl_seconds: int = 3600
    #: The longest ``?wait=`` a runtime may long-poll its desired state for, in seconds.
    desired_state_max_wait_seconds: int = 60
    #: How often a long-poll rechecks the database for changes made by other processes.
    desired_state_poll_ms: int = 500
    #: Run the periodic jobs (alerts, notifications, rollouts) inside the API process.
    #: "auto" means yes on the embedded SQLite database, where there is no separate
    #: ``storeops worker``; set "false" where workers run them.
    jobs_inline: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    #: Alert e-mail: the SMTP server. Empty means the local sink: each message is written
    #: as an .eml file under ``<home>/mail/``.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_from: str = "StoreOps alerts <alerts@storeops.localhost>"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    #: A notification that failed this many times is dead (kept, no longer retried).
    alert_delivery_max_attempts: int = 8
    #: How a claimed domain's challenge is fetched: https in production; the demo's
    #: ``<name>.localhost`` hosts use http and the demo port.
    domain_check_scheme: str = "https"
    #: The port to fetch the challenge on; 0 means the scheme's own.
    domain_check_port: int = 0

    def __post_init__(self) -> None:
        if not self.database_url:
            url = f"sqlite+aiosqlite:///{self.home / 'control_plane.db'}"
            object.__setattr__(self, "database_url", url)
        if self.secrets_backend not in {"local", "vault"}:
            raise ValueError(
                f"STOREOPS_SECRETS_BACKEND={self.secrets_backend!r}: use local or vault"
            )
        if self.jwt_algorithm not in {"Ed25519", "RS256"}:
            raise ValueError(f"STOREOPS_JWT_ALGORITHM={self.jwt_algorithm!r}: use Ed25519 or RS256")

    @property
    def runs_jobs_inline(self) -> bool:
        if self.jobs_inline == "auto":
            return self.database_url.startswith("sqlite")
        return self.jobs_inline.lower() in {"1", "true", "yes"}

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def migration_url(self) -> str:
        return self.admin_database_url or self.database_url

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    @property
    def retirement_seconds(self) -> int:
        return self.key_retirement_seconds or self.access_token_ttl_seconds

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``env`` (default ``os.environ``); ``overrides`` win."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(_PREFIX + f.name.upper())
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.update(overrides)
        return cls(**values)


def _coerce(name: str, kind: Any, raw: str) -> Any:
    kind = str(kind)
    try:
        if kind == "int":
            return int(raw)
        if kind == "bool":
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError:
        raise ValueError(f"{_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
