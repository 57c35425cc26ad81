"""VaultSim: a Vault HTTP API simulator for tests, in the standard library only.

It serves the endpoints StoreOps uses, with Vault's request and response shapes and status
codes: KV version 2 (data, metadata, delete, undelete, destroy, list), ACL policies in
``sys/policies/acl`` (enforced on every request with a token), AppRole (roles, role-id,
secret-id, login), the token self-endpoints and revoke-accessor, and response wrapping
with ``sys/wrapping/unwrap``. Its clock can be moved forward to run out TTLs::

    sim = VaultSim.start()
    client = hvac.Client(url=sim.url, token=sim.root_token)
    ...
    sim.advance(3600)
    sim.stop()

Fixtures are in :mod:`tests.vaultsim.fixtures`.
"""

from __future__ import annotations

from .server import VaultSim

__all__ = ["VaultSim"]
