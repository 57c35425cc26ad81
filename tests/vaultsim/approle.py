"""The AppRole auth method at one mount: roles, role-ids, secret-ids, login."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from .common import (
    JSON,
    Clock,
    Reply,
    VaultError,
    bad_request,
    new_uuid,
    not_found,
    ok,
    parse_bool,
    parse_duration,
    parse_int,
    parse_str_list,
)
from .tokens import TokenStore


@dataclass
class SecretId:
    accessor: str
    ttl: int
    num_uses: int
    uses_left: int
    expires: float | None
    metadata: dict[str, str]


@dataclass
class Role:
    name: str
    role_id: str = field(default_factory=new_uuid)
    entity_id: str = field(default_factory=new_uuid)
    policies: list[str] = field(default_factory=list)
    token_ttl: int = 0
    token_max_ttl: int = 0
    token_no_default_policy: bool = False
    secret_id_ttl: int = 0
    secret_id_num_uses: int = 0
    bind_secret_id: bool = True
    secret_ids: dict[str, SecretId] = field(default_factory=dict)


_ROLE = re.compile(r"role/(?P<name>[^/]+)(?:/(?P<sub>role-id|secret-id))?\Z")
INVALID_CREDENTIALS = "invalid role or secret ID"


def sanitize_policies(policies: list[str], *, add_default: bool) -> list[str]:
    names = {p.strip().lower() for p in policies if p.strip()}
    if add_default and "root" not in names:
        names.add("default")
    return sorted(names)


class AppRole:
    """One AppRole mount (``auth/<mount>/``)."""

    def __init__(
        self, mount: str, clock: Clock, tokens: TokenStore, *, revoke_tokens_on_delete: bool
    ) -> None:
        self.mount = mount
        self.clock = clock
        self.tokens = tokens
        self.revoke_tokens_on_delete = revoke_tokens_on_delete
        self.roles: dict[str, Role] = {}

    def role_exists(self, rest: str) -> bool:
        match = _ROLE.match(rest)
        return bool(match and not match["sub"] and match["name"] in self.roles)

    def handle(self, method: str, rest: str, body: JSON) -> Reply:
        if rest == "login":
            if method not in ("POST", "PUT"):
                raise VaultError(405, "unsupported operation")
            return self.login(body)
        match = _ROLE.match(rest)
        if match is None:
            raise not_found()
        name, sub = match["name"], match["sub"]
        match (sub, method):
            case (None, "POST" | "PUT"):
                return self.write_role(name, body)
            case (None, "DELETE"):
                return self.delete_role(name)
            case ("role-id", "GET"):
                role = self.roles.get(name)
                if role is None:
                    raise not_found()
                return ok({"role_id": role.role_id})
            case ("secret-id", "POST" | "PUT"):
                return self.new_secret_id(name, body)
        raise VaultError(405, "unsupported operation")

    def write_role(self, name: str, body: JSON) -> Reply:
        existing = self.roles.get(name)
        # Change a copy: a rejected update leaves the stored role as it was.
        role = replace(existing) if existing is not None else Role(name=name)
        for param in ("token_policies", "policies"):
            if param in body:
                role.policies = parse_str_list(body[param], param)
        durations = ("token_ttl", "token_max_ttl", "secret_id_ttl")
        for param in durations:
            if param in body:
                setattr(role, param, parse_duration(body[param], param))
        if "secret_id_num_uses" in body:
            role.secret_id_num_uses = parse_int(body["secret_id_num_uses"], "secret_id_num_uses")
            if role.secret_id_num_uses < 0:
                raise bad_request("secret_id_num_uses cannot be negative")
        for param in ("bind_secret_id", "token_no_default_policy"):
            if param in body:
                setattr(role, param, parse_bool(body[param], param))
        if role.token_max_ttl and role.token_ttl > role.token_max_ttl:
            raise bad_request("token_ttl should not be greater than token_max_ttl")
        self.roles[name] = role
        return Reply()

    def delete_role(self, name: str) -> Reply:
        if self.roles.pop(name, None) is not None and self.revoke_tokens_on_delete:
            self.tokens.revoke_role(self.mount, name)
        return Reply()

    def new_secret_id(self, name: str, body: JSON) -> Reply:
        role = self.roles.get(name)
        if role is None:
            raise bad_request(f'role "{name}" does not exist')
        ttl = role.secret_id_ttl
        if "ttl" in body:
            ttl = parse_duration(body["ttl"], "ttl")
            if role.secret_id_ttl and (ttl == 0 or ttl > role.secret_id_ttl):
                raise bad_request("ttl cannot be longer than the role's secret_id_ttl")
        uses = role.secret_id_num_uses
        if "num_uses" in body:
            uses = parse_int(body["num_uses"], "num_uses")
            if role.secret_id_num_uses and (uses == 0 or uses > role.secret_id_num_uses):
                raise bad_request("num_uses cannot be higher than the role's secret_id_num_uses")
        metadata = _metadata(body.get("metadata"))
        secret_id = new_uuid()
        entry = SecretId(
            accessor=new_uuid(),
            ttl=ttl,
            num_uses=uses,
            uses_left=uses,
            expires=self.clock.now() + ttl if ttl else None,
            metadata=metadata,
        )
        role.secret_ids[secret_id] = entry
        return ok(
            {
                "secret_id": secret_id,
                "secret_id_accessor": entry.accessor,
                "secret_id_ttl": ttl,
                "secret_id_num_uses": uses,
            }
        )

    def login(self, body: JSON) -> Reply:
        role_id = str(body.get("role_id") or "").strip()
        if not role_id:
            raise bad_request("missing role_id")
        role = next((r for r in self.roles.values() if r.role_id == role_id), None)
        if role is None:
            raise bad_request(INVALID_CREDENTIALS)
        meta: dict[str, str] = {}
        if role.bind_secret_id:
            secret_id = str(body.get("secret_id") or "").strip()
            if not secret_id:
                raise bad_request("missing secret_id")
            entry = role.secret_ids.get(secret_id)
            if entry is None or (entry.expires is not None and self.clock.now() >= entry.expires):
                role.secret_ids.pop(secret_id, None)
                raise bad_request(INVALID_CREDENTIALS)
            if entry.num_uses:
                entry.uses_left -= 1
                if entry.uses_left <= 0:
                    del role.secret_ids[secret_id]
            meta.update(entry.metadata)
        meta["role_name"] = role.name
        token = self.tokens.issue(
            policies=sanitize_policies(role.policies, add_default=not role.token_no_default_policy),
            ttl=role.token_ttl,
            max_ttl=role.token_max_ttl,
            path=f"auth/{self.mount}/login",
            display_name=self.mount,
            meta=meta,
            role=(self.mount, role.name),
            entity_id=role.entity_id,
        )
        return ok(None, auth=token.auth_block())


def _metadata(raw: Any) -> dict[str, str]:
    """Secret-ID metadata: a JSON object, or a JSON string of one (what hvac sends)."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise bad_request("failed to parse metadata: invalid JSON") from None
    if not isinstance(raw, dict):
        raise bad_request("metadata must be a JSON object")
    return {str(k): str(v) for k, v in raw.items()}
