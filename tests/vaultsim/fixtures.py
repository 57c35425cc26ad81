"""Pytest fixtures for the Vault simulator. Import the ones a test module or conftest uses::

    from tests.vaultsim.fixtures import vault_root, vault_sim  # noqa: F401

``vault_sim`` is a fresh simulator per test, set up like ``vault server -dev``: root
token ``root``, KV v2 at ``secret``, no AppRole until something enables it (``POST
sys/auth/approle``). ``vault_sim_factory(**options)`` starts others with
:meth:`VaultSim.start`'s options (``approle_mounts=("approle",)``,
``role_delete_revokes_tokens=False``, ...). ``vault_root`` is an hvac client holding the
root token of ``vault_sim``; ``vault_client(token)`` makes hvac clients for it holding
any token, or none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import hvac
import pytest

from .server import VaultSim

VaultSimFactory = Callable[..., VaultSim]
VaultClientFactory = Callable[[str | None], hvac.Client]


@pytest.fixture
def vault_sim_factory() -> Iterator[VaultSimFactory]:
    """``start(**options)`` takes :meth:`VaultSim.start`'s options; all stop at teardown."""
    started: list[VaultSim] = []

    def start(**options: Any) -> VaultSim:
        sim = VaultSim.start(**options)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def vault_sim(vault_sim_factory: VaultSimFactory) -> VaultSim:
    return vault_sim_factory()


@pytest.fixture
def vault_client(vault_sim: VaultSim) -> Iterator[VaultClientFactory]:
    clients: list[hvac.Client] = []

    def make(token: str | None = None) -> hvac.Client:
        client = hvac.Client(url=vault_sim.url, token=token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.adapter.close()


@pytest.fixture
def vault_root(vault_client: VaultClientFactory, vault_sim: VaultSim) -> hvac.Client:
    return vault_client(vault_sim.root_token)
