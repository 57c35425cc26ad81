"""Where a tenant runtime gets secret values: its own Vault AppRole, or (embedded mode) the
control plane's broker. Connector bindings say ``secret://<name>``; values are resolved at
call time and kept in memory for a bounded time only."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

import httpx

SCHEME = "secret://"


class SecretUnavailable(Exception):
    """A secret could not be resolved; the message names the secret, never a value."""


class SecretProvider(Protocol):
    async def get(self, name: str) -> str: ...


class BrokerProvider:
    """Embedded mode: ``GET /runtime/v1/secrets/{name}`` with the runtime's own token."""

    def __init__(
        self, client: httpx.AsyncClient, token: Callable[[], str | Awaitable[str]]
    ) -> None:
        self.client = client
        self.token = token

    async def get(self, name: str) -> str:
        token = self.token()
        if not isinstance(token, str):
            token = await token
        response = await self.client.get(
            f"/runtime/v1/secrets/{name}", headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code != 200:
            raise SecretUnavailable(f"secret {name!r}: the broker answered {response.status_code}")
        return str(response.json()["value"])


@dataclass
class _Login:
    token: str
    expires_at: float
    lease_seconds: int


class VaultProvider:
    """Vault mode: unwrap the one-time secret_id, log in with AppRole, renew the token
    before it expires, read ``<mount>/data/<prefix>/tenants/<tenant_id>/<name>``."""

    def __init__(
        self,
        url: str,
        tenant_id: UUID,
        role_id: str,
        wrapped_secret_id: str,
        *,
        mount: str = "secret",
        prefix: str = "storeops",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import hvac  # only a Vault-backed runtime pays for it

        self.client = hvac.Client(url=url)
        self.tenant_id = tenant_id
        self.role_id = role_id
        self._wrapped: str | None = wrapped_secret_id
        self._secret_id: str | None = None
        self.mount = mount
        self.prefix = prefix
        self.clock = clock
        self._login: _Login | None = None
        self._lock = asyncio.Lock()

    def _unwrap_and_login(self) -> _Login:
        if self._secret_id is None:
            if self._wrapped is None:
                raise SecretUnavailable("no secret_id: the wrapped one was already used")
            wrapped, self._wrapped = self._wrapped, None
            unwrapped = type(self.client)(url=self.client.url, token=wrapped).sys.unwrap()
            self._secret_id = str(unwrapped["data"]["secret_id"])
        auth = self.client.auth.approle.login(role_id=self.role_id, secret_id=self._secret_id)[
            "auth"
        ]
        self.client.token = auth["client_token"]
        lease = int(auth["lease_duration"])
        return _Login(auth["client_token"], self.clock() + lease, lease)

    def _renew(self, login: _Login) -> _Login:
        auth = self.client.auth.token.renew_self()["auth"]
        lease = int(auth["lease_duration"])
        return _Login(login.token, self.clock() + lease, lease)

    async def _ensure_token(self) -> None:
        async with self._lock:
            login = self._login
            if login is None:
                self._login = await asyncio.to_thread(self._unwrap_and_login)
            elif login.expires_at - self.clock() < login.lease_seconds / 3:
                try:
                    self._login = await asyncio.to_thread(self._renew, login)
                except _vault_error():
                    self._login = await asyncio.to_thread(self._unwrap_and_login)

    async def get(self, name: str) -> str:
        try:
            await self._ensure_token()
            path = f"{self.prefix}/tenants/{self.tenant_id}/{name}"
            response = await asyncio.to_thread(
                lambda: self.client.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=self.mount, raise_on_deleted_version=True
                )
            )
        except (_vault_error(), OSError) as exc:
            raise SecretUnavailable(
                f"secret {name!r}: Vault refused ({type(exc).__name__})"
            ) from None
        return str(response["data"]["data"]["value"])


class SecretCache:
    """Resolves ``secret://name`` through a provider, holding values ``ttl`` seconds at most."""

    def __init__(
        self,
        provider: SecretProvider,
        *,
        ttl: float = 300.0,
        size: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self._values: OrderedDict[str, tuple[float, str]] = OrderedDict()

    async def get(self, name: str) -> str:
        now = self.clock()
        hit = self._values.get(name)
        if hit is not None and hit[0] > now:
            self._values.move_to_end(name)
            return hit[1]
        value = await self.provider.get(name)
        self._values[name] = (now + self.ttl, value)
        self._values.move_to_end(name)
        while len(self._values) > self.size:
            self._values.popitem(last=False)
        return value

    async def resolve(self, binding: Any) -> Any:
        """A binding value with ``secret://`` references replaced, recursively."""
        if isinstance(binding, str) and binding.startswith(SCHEME):
            return await self.get(binding.removeprefix(SCHEME))
        if isinstance(binding, dict):
            return {k: await self.resolve(v) for k, v in binding.items()}
        if isinstance(binding, list):
            return [await self.resolve(v) for v in binding]
        return binding

    def forget(self) -> None:
        self._values.clear()


def _vault_error() -> type[Exception]:
    from hvac.exceptions import VaultError

    error: type[Exception] = VaultError
    return error
