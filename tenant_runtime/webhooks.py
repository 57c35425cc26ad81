"""Standard Webhooks for the runtime: the signing and checks of
:mod:`control_plane.contracts.signing`, plus the replay guard and a :class:`Verifier` bound
to a source's active secrets.

Signing and verification themselves live in the contracts package, so the control plane's
alert notifications sign exactly as the runtime does; every name is re-exported here.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from control_plane.contracts.signing import (
    DEFAULT_TOLERANCE,
    ID_HEADER,
    SECRET_PREFIX,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadSignature,
    InvalidSecret,
    MalformedHeader,
    MissingHeader,
    SecretLike,
    StaleTimestamp,
    VerifiedWebhook,
    WebhookError,
    WebhookSecret,
    WebhookVerificationError,
    check,
    generate_secret,
    sign,
    signature_header,
    webhook_headers,
)

if TYPE_CHECKING:
    from tenant_runtime.secrets import SecretCache

__all__ = [
    "DEFAULT_TOLERANCE",
    "ID_HEADER",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "BadSignature",
    "DuplicateWebhook",
    "InvalidSecret",
    "MalformedHeader",
    "MemorySeenIds",
    "MissingHeader",
    "SecretLike",
    "SeenIds",
    "StaleTimestamp",
    "VerifiedWebhook",
    "Verifier",
    "WebhookError",
    "WebhookSecret",
    "WebhookVerificationError",
    "generate_secret",
    "sign",
    "signature_header",
    "webhook_headers",
]


class DuplicateWebhook(WebhookError):
    """Authentic, but this ``webhook-id`` was already accepted: acknowledge (2xx), do nothing."""

    def __init__(self, msg_id: str) -> None:
        super().__init__(f"webhook {msg_id!r} was already received; ignored")
        self.msg_id = msg_id


# --- replay guard ----------------------------------------------------------------------


class SeenIds(Protocol):
    """Remembers accepted webhook ids for a while (Redis ``SET NX EX`` fits, as does memory)."""

    async def remember(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; True if it was new, False if already held."""
        ...


class MemorySeenIds:
    """In-process :class:`SeenIds`: ids held until their TTL passes, at most ``max_entries``
    (the oldest forgotten first; the timestamp tolerance still bounds any replay)."""

    def __init__(
        self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be positive")
        self.max_entries = max_entries
        self.clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def _purge(self, now: float) -> None:
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now:
                break
            del self._expiry[key]

    async def remember(self, key: str, ttl: float) -> bool:
        now = self.clock()
        self._purge(now)
        expires = self._expiry.get(key)
        if expires is not None and expires > now:
            return False
        self._expiry[key] = now + ttl
        self._expiry.move_to_end(key)
        while len(self._expiry) > self.max_entries:
            self._expiry.popitem(last=False)
        return True

    def __len__(self) -> int:
        self._purge(self.clock())
        return len(self._expiry)


# --- verification ----------------------------------------------------------------------


class Verifier:
    """Checks Standard Webhooks requests against the secrets currently active for a source.

    ``tolerance`` bounds ``|now - webhook-timestamp|``; ``clock`` is wall time (Unix
    seconds). ``seen`` remembers accepted ids for twice the tolerance (long enough that a
    replay is either a known id or a stale timestamp); ``namespace`` prefixes the ids there,
    so one store can serve several sources or tenants.
    """

    def __init__(
        self,
        secrets: Iterable[SecretLike],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
        seen: SeenIds | None = None,
        namespace: str = "",
    ) -> None:
        self._secrets = tuple(WebhookSecret.parse(s) for s in secrets)
        if not self._secrets:
            raise ValueError("a webhook verifier needs at least one secret")
        if tolerance <= 0:
            raise ValueError("tolerance must be positive")
        self.tolerance = float(tolerance)
        self.clock = clock
        self.seen: SeenIds = seen if seen is not None else MemorySeenIds()
        self.namespace = namespace

    @classmethod
    async def from_bindings(
        cls, bindings: Iterable[str], secrets: SecretCache, **options: Any
    ) -> Verifier:
        """A verifier for secrets bound as ``secret://name`` (or literals), resolved through
        the runtime's cache. Build one per request — it is cheap — so a rotated secret is
        used once the cache lets go of the old value; share ``seen`` between them."""
        resolved = [await secrets.resolve(binding) for binding in bindings]
        if not all(isinstance(value, str) for value in resolved):
            raise InvalidSecret("a webhook secret binding resolved to no string")
        return cls(resolved, **options)

    def __repr__(self) -> str:
        return f"Verifier(<{len(self._secrets)} secrets>, tolerance={self.tolerance:g})"

    def check(self, headers: Mapping[str, str], body: bytes | str) -> VerifiedWebhook:
        """Authenticity only: headers present, timestamp fresh, a signature valid.

        Raises :class:`MissingHeader`, :class:`MalformedHeader`, :class:`StaleTimestamp`
        or :class:`BadSignature`. Does not consult the replay guard (see :meth:`verify`).
        """
        return check(self._secrets, headers, body, now=self.clock(), tolerance=self.tolerance)

    async def verify(self, headers: Mapping[str, str], body: bytes | str) -> VerifiedWebhook:
        """:meth:`check`, then the replay guard: an id accepted before raises
        :class:`DuplicateWebhook` (answer 2xx, process nothing). Only authentic requests
        are remembered, so a forged request cannot burn a genuine id."""
        verified = self.check(headers, body)
        key = f"{self.namespace}:{verified.msg_id}" if self.namespace else verified.msg_id
        if not await self.seen.remember(key, 2 * self.tolerance):
            raise DuplicateWebhook(verified.msg_id)
        return verified
