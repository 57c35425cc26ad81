"""Choosing and opening the secret store the settings ask for."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from control_plane.config import Settings
from control_plane.secrets.store import SecretStore
from control_plane.secrets.vault import VaultSecretStore


def master_key_file(settings: Settings) -> Path | None:
    """The local store's key file (None when the key comes from STOREOPS_MASTER_KEY).
    Embedded mode creates ``<home>/master.key`` (mode 0600) on first use."""
    if settings.master_key:
        return None
    if settings.master_key_file:
        return Path(settings.master_key_file)
    path = settings.home / "master.key"
    if not path.exists():
        from control_plane.secrets.local import generate_master_key

        write_key_file(path, generate_master_key(), exclusive=True)
    return path


def write_key_file(path: Path, key: bytes, *, exclusive: bool = False) -> None:
    """Write a base64 key file, mode 0600; atomically replace an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path if exclusive else path.with_suffix(".tmp")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(target, flags, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    if not exclusive:
        os.replace(target, path)


def make_store(settings: Settings) -> SecretStore:
    if settings.secrets_backend == "vault":
        if not settings.vault_addr or not settings.vault_token:
            raise ValueError(
                "STOREOPS_SECRETS_BACKEND=vault needs STOREOPS_VAULT_ADDR and STOREOPS_VAULT_TOKEN"
            )
        return VaultSecretStore.connect(
            settings.vault_addr,
            settings.vault_token,
            mount=settings.vault_mount,
            prefix=settings.vault_prefix,
        )
    from control_plane.secrets.local import LocalSecretStore

    directory = settings.home / "secrets"
    key_file = master_key_file(settings)
    if key_file is None:
        return LocalSecretStore.from_env_value(settings.master_key, directory=directory)
    return LocalSecretStore.from_file(key_file, directory=directory)
