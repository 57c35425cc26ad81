"""Tokens: TTLs, renewal, accessors, and response wrapping."""

from __future__ import annotations

from dataclasses import dataclass

from .common import (
    JSON,
    Clock,
    Reply,
    bad_request,
    envelope,
    new_accessor,
    new_token,
    new_uuid,
    ok,
    parse_duration,
    rfc3339,
)

#: Vault's system default and maximum token TTL (32 days).
DEFAULT_TTL = 768 * 3600
WRAPPING_INVALID = "wrapping token is not valid or does not exist"


@dataclass
class Token:
    id: str
    accessor: str
    policies: list[str]
    issued: float
    #: The TTL granted at issue or at the last renewal; 0 never expires (root).
    ttl: int
    max_ttl: int
    renewable: bool
    path: str
    display_name: str
    meta: dict[str, str] | None = None
    #: (approle mount, role name) for tokens issued by an AppRole login.
    role: tuple[str, str] | None = None
    entity_id: str = ""
    last_renewal: float | None = None
    #: The response a wrapping token holds; None for ordinary tokens.
    wrapped: JSON | None = None
    creation_ttl: int = 0

    @property
    def is_wrapping(self) -> bool:
        return self.wrapped is not None

    @property
    def is_root(self) -> bool:
        return "root" in self.policies

    def expires(self) -> float | None:
        if self.ttl == 0:
            return None
        return (self.last_renewal or self.issued) + self.ttl

    def remaining(self, now: float) -> int:
        expires = self.expires()
        return 0 if expires is None else max(0, int(expires - now))

    def auth_block(self) -> JSON:
        """The ``auth`` block of a login or renewal: the TTL just granted."""
        return {
            "client_token": self.id,
            "accessor": self.accessor,
            "policies": list(self.policies),
            "token_policies": list(self.policies),
            "metadata": self.meta,
            "lease_duration": self.ttl,
            "renewable": self.renewable,
            "entity_id": self.entity_id,
            "token_type": "service",
            "orphan": True,
            "mfa_requirement": None,
            "num_uses": 0,
        }

    def lookup_data(self, now: float) -> JSON:
        expires = self.expires()
        data: JSON = {
            "accessor": self.accessor,
            "creation_time": int(self.issued),
            "creation_ttl": self.creation_ttl,
            "display_name": self.display_name,
            "entity_id": self.entity_id,
            "expire_time": rfc3339(expires) if expires is not None else None,
            "explicit_max_ttl": 0,
            "id": self.id,
            "issue_time": rfc3339(self.issued),
            "meta": self.meta,
            "num_uses": 0,
            "orphan": True,
            "path": self.path,
            "policies": list(self.policies),
            "renewable": self.renewable,
            "ttl": self.remaining(now),
            "type": "service",
        }
        if self.last_renewal is not None:
            data["last_renewal"] = rfc3339(self.last_renewal)
            data["last_renewal_time"] = int(self.last_renewal)
        return data


class TokenStore:
    def __init__(self, clock: Clock, root_token: str) -> None:
        self.clock = clock
        self.by_id: dict[str, Token] = {}
        self.by_accessor: dict[str, Token] = {}
        self._add(
            Token(
                id=root_token,
                accessor=new_accessor(),
                policies=["root"],
                issued=clock.now(),
                ttl=0,
                max_ttl=0,
                renewable=False,
                path="auth/token/root",
                display_name="root",
            )
        )

    def _add(self, token: Token) -> Token:
        self.by_id[token.id] = token
        self.by_accessor[token.accessor] = token
        return token

    def get(self, token_id: str | None) -> Token | None:
        """The live token with this id; an expired one is revoked on the way."""
        token = self.by_id.get(token_id or "")
        if token is None:
            return None
        expires = token.expires()
        if expires is not None and self.clock.now() >= expires:
            self.revoke(token)
            return None
        return token

    def revoke(self, token: Token) -> None:
        self.by_id.pop(token.id, None)
        self.by_accessor.pop(token.accessor, None)

    def revoke_role(self, mount: str, role: str) -> None:
        for token in [t for t in self.by_id.values() if t.role == (mount, role)]:
            self.revoke(token)

    def issue(
        self,
        *,
        policies: list[str],
        ttl: int,
        max_ttl: int,
        path: str,
        display_name: str,
        meta: dict[str, str] | None = None,
        role: tuple[str, str] | None = None,
        entity_id: str = "",
    ) -> Token:
        ttl = min(ttl or DEFAULT_TTL, max_ttl or DEFAULT_TTL)
        return self._add(
            Token(
                id=new_token(),
                accessor=new_accessor(),
                policies=policies,
                issued=self.clock.now(),
                ttl=ttl,
                max_ttl=max_ttl or DEFAULT_TTL,
                renewable=True,
                path=path,
                display_name=display_name,
                meta=meta,
                role=role,
                entity_id=entity_id,
                creation_ttl=ttl,
            )
        )

    # --- response wrapping --------------------------------------------------------------

    def wrap(self, response: JSON, ttl: int, creation_path: str) -> Reply:
        """Put ``response`` into a single-use wrapping token; answer with its wrap_info."""
        now = self.clock.now()
        token = self._add(
            Token(
                id=new_token(),
                accessor=new_accessor(),
                policies=["response-wrapping"],
                issued=now,
                ttl=ttl,
                max_ttl=ttl,
                renewable=False,
                path=creation_path,
                display_name="response-wrapping",
                wrapped=response,
                creation_ttl=ttl,
            )
        )
        info: JSON = {
            "token": token.id,
            "accessor": token.accessor,
            "ttl": ttl,
            "creation_time": rfc3339(now),
            "creation_path": creation_path,
        }
        data = response.get("data") or {}
        auth = response.get("auth") or {}
        wrapped_accessor = auth.get("accessor") or data.get("secret_id_accessor")
        if wrapped_accessor:
            info["wrapped_accessor"] = wrapped_accessor
        return Reply(200, envelope(None, wrap_info=info))

    def wrapping_token(self, token_id: str | None) -> Token:
        token = self.get(token_id)
        if token is None or not token.is_wrapping:
            raise bad_request(WRAPPING_INVALID)
        return token

    def unwrap(self, token: Token) -> Reply:
        self.revoke(token)
        return Reply(200, {**(token.wrapped or {}), "request_id": new_uuid()})

    # --- auth/token endpoints -----------------------------------------------------------

    def lookup_self(self, token: Token) -> Reply:
        return ok(token.lookup_data(self.clock.now()))

    def renew_self(self, token: Token, body: JSON, default_ttl: int, max_ttl: int) -> Reply:
        """Vault's CalculateTTL: the increment (else the role's TTL), capped by what is
        left of the max TTL counted from issue."""
        if not token.renewable:
            raise bad_request("lease is not renewable")
        now = self.clock.now()
        increment = parse_duration(body.get("increment", 0), "increment")
        ttl = increment or default_ttl or DEFAULT_TTL
        left = round(token.issued + (max_ttl or DEFAULT_TTL) - now)
        if left <= 0:
            raise bad_request("past the max TTL, cannot renew")
        token.ttl = min(ttl, left)
        token.last_renewal = now
        return ok(None, auth=token.auth_block())

    def revoke_accessor(self, body: JSON) -> Reply:
        accessor = body.get("accessor")
        if not accessor:
            raise bad_request("missing accessor")
        token = self.by_accessor.get(str(accessor))
        if token is None:
            raise bad_request("invalid accessor")
        self.revoke(token)
        return Reply()
