from __future__ import annotations

from .fixtures import vault_client, vault_root, vault_sim, vault_sim_factory

__all__ = ["vault_client", "vault_root", "vault_sim", "vault_sim_factory"]
