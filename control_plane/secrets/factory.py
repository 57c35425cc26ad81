"""Choosing and opening the secret store the settings ask for."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets as random
from pathlib import Path

from control_plane.config import Settings
from control_plane.secrets.store import SecretStore
from control_plane.secrets.vault import VaultSecretStore


def master_key(settings: Settings) -> tuple[bytes, str]:
    """The local store's master key and its id: from the variable, the file, or (embedded
    mode, first run) a new key file under the home directory."""
    if settings.master_key:
        raw = settings.master_key
        origin = "STOREOPS_MASTER_KEY"
    else:
        path = (
            Path(settings.master_key_file)
            if settings.master_key_file
            else settings.home / "master.key"
        )
        if not path.exists() and not settings.master_key_file:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.b64encode(random.token_bytes(32)).decode() + "\n")
        try:
            raw = path.read_text().strip()
        except OSError as exc:
            raise ValueError(f"cannot read the master key file {path}: {exc.strerror}") from None
        origin = str(path)
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{origin}: the master key must be base64 of 32 bytes") from None
    if len(key) != 32:
        raise ValueError(f"{origin}: the master key must be 32 bytes, not {len(key)}")
    return key, hashlib.sha256(key).hexdigest()[:16]


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

    key, key_id = master_key(settings)
    return LocalSecretStore(settings.home / "secrets", key, key_id)
