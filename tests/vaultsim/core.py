"""Request handling: authenticate, route, enforce ACLs, dispatch, optionally wrap.

Each request maps to one capability as Vault does: GET is ``read``, LIST (or GET with
``?list=true``, checked against the path with a trailing ``/``) is ``list``, DELETE is
``delete``, and POST/PUT are ``create`` when the target does not exist yet and ``update``
when it does (KV data and metadata, AppRole roles; everything else is ``update``).
``sys/auth/*`` also needs ``sudo``. The root token skips the ACL.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .approle import AppRole
from .common import (
    JSON,
    Clock,
    Reply,
    VaultError,
    bad_request,
    denied,
    envelope,
    not_found,
    parse_duration,
)
from .kv import KINDS, KvMount
from .policy import DEFAULT_POLICY, Acl, Rule, parse_policy
from .tokens import Token, TokenStore

UNSUPPORTED = "unsupported operation"


@dataclass
class Request:
    method: str
    #: The logical path: what follows ``/v1/``, without leading or trailing slashes.
    path: str
    query: dict[str, str]
    body: JSON
    token: str | None = None
    wrap_ttl: str | None = None


@dataclass
class Route:
    handler: Callable[[str, Request, Token], Reply]
    #: For POST/PUT: does the target exist (``update``) or not (``create``)?
    exists: Callable[[], bool] | None = None
    sudo: bool = False


class Policies:
    """``sys/policies/acl``: named HCL policies, parsed on write."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.rules: dict[str, list[Rule]] = {}
        self._put("default", DEFAULT_POLICY)

    def _put(self, name: str, text: str) -> None:
        self.rules[name] = parse_policy(text)
        self.texts[name] = text

    def acl(self, names: Sequence[str]) -> Acl:
        return Acl(self.rules[name] for name in names if name in self.rules)

    def handle(self, method: str, name: str, body: JSON) -> Reply:
        name = name.lower()
        if method == "LIST":
            keys = [*sorted(self.texts), "root"]
            return _sys_ok({"keys": keys})
        if not name:
            raise VaultError(405, UNSUPPORTED)
        if method == "GET":
            if name not in self.texts:
                raise not_found()
            return _sys_ok({"name": name, "policy": self.texts[name]})
        if method in ("POST", "PUT"):
            if name == "root":
                raise bad_request('cannot update "root" policy')
            text = body.get("policy")
            if not isinstance(text, str) or not text.strip():
                raise bad_request("'policy' parameter not supplied or empty")
            self._put(name, text)
            return Reply()
        if method == "DELETE":
            if name in ("root", "default"):
                raise bad_request(f'cannot delete "{name}" policy')
            self.texts.pop(name, None)
            self.rules.pop(name, None)
            return Reply()
        raise VaultError(405, UNSUPPORTED)


def _sys_ok(data: JSON) -> Reply:
    """``sys/`` answers repeat their data at the top level, for older clients."""
    return Reply(200, {**envelope(data), **data})


_KV = re.compile(r"(?P<mount>[^/]+)/(?P<kind>[a-z]+)(?:/(?P<path>.*))?\Z")
_SELF = ("lookup-self", "renew-self", "revoke-self", "revoke-accessor")


class Core:
    def __init__(
        self,
        clock: Clock,
        *,
        root_token: str,
        kv_mounts: Sequence[str],
        approle_mounts: Sequence[str],
        role_delete_revokes_tokens: bool,
    ) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.tokens = TokenStore(clock, root_token)
        self.policies = Policies()
        self.kv = {name: KvMount(name, clock) for name in kv_mounts}
        self.role_delete_revokes_tokens = role_delete_revokes_tokens
        self.approle: dict[str, AppRole] = {}
        for mount in approle_mounts:
            self._enable_approle(mount)

    def handle(self, req: Request) -> Reply:
        with self.lock:
            return self._handle(req)

    def _handle(self, req: Request) -> Reply:
        method = req.method
        if method == "GET" and req.query.get("list", "").lower() in ("true", "1"):
            method = "LIST"
        if req.path == "sys/wrapping/unwrap":
            return self._unwrap(method, req)
        head, _, rest = req.path.partition("/")
        if head == "auth" and rest.endswith("/login") and rest[: -len("/login")] in self.approle:
            reply = self.approle[rest[: -len("/login")]].handle(method, "login", req.body)
            return self._maybe_wrap(req, reply)

        token = self.tokens.get(req.token)
        if token is None or token.is_wrapping:
            raise denied()
        route = self._route(req.path)
        if not token.is_root:
            acl_path = req.path + "/" if method == "LIST" else req.path
            needed = _capability(method, route)
            if not self.policies.acl(token.policies).allows(
                acl_path, needed, sudo=route is not None and route.sudo
            ):
                raise denied()
        if route is None:
            raise not_found()
        return self._maybe_wrap(req, route.handler(method, req, token))

    def _maybe_wrap(self, req: Request, reply: Reply) -> Reply:
        if req.wrap_ttl and reply.status == 200 and reply.body is not None:
            ttl = parse_duration(req.wrap_ttl, "X-Vault-Wrap-TTL")
            if ttl > 0:
                return self.tokens.wrap(reply.body, ttl, req.path)
        return reply

    # --- routing ------------------------------------------------------------------------

    def _route(self, path: str) -> Route | None:
        kv = _KV.match(path)
        if kv and kv["mount"] in self.kv and kv["kind"] in KINDS:
            mount, kind, sub = self.kv[kv["mount"]], kv["kind"], kv["path"] or ""
            return Route(
                lambda method, req, _t: mount.handle(method, kind, sub, req.query, req.body),
                exists=(lambda: mount.exists(sub)) if kind in ("data", "metadata") else None,
            )
        if path == "sys/policies/acl" or path.startswith("sys/policies/acl/"):
            name = path[len("sys/policies/acl/") :]
            return Route(lambda method, req, _t: self.policies.handle(method, name, req.body))
        if path.startswith("sys/auth/") and len(path) > len("sys/auth/"):
            target = path[len("sys/auth/") :]
            return Route(lambda method, req, _t: self._enable(method, target, req.body), sudo=True)
        if path.startswith("auth/token/") and path[len("auth/token/") :] in _SELF:
            action = path[len("auth/token/") :]
            return Route(lambda method, req, token: self._token(method, action, req, token))
        head, _, rest = path.partition("/")
        auth_mount, _, auth_path = rest.partition("/")
        if head == "auth" and auth_mount in self.approle:
            backend = self.approle[auth_mount]
            return Route(
                lambda method, req, _t: backend.handle(method, auth_path, req.body),
                exists=lambda: backend.role_exists(auth_path),
            )
        return None

    # --- sys/auth, auth/token, sys/wrapping ---------------------------------------------

    def _enable_approle(self, mount: str) -> None:
        self.approle[mount] = AppRole(
            mount,
            self.clock,
            self.tokens,
            revoke_tokens_on_delete=self.role_delete_revokes_tokens,
        )

    def _enable(self, method: str, mount: str, body: JSON) -> Reply:
        if method not in ("POST", "PUT"):
            raise VaultError(405, UNSUPPORTED)
        kind = body.get("type")
        if kind != "approle":
            raise bad_request(f"plugin not found in the catalog: {kind}")
        if mount in self.approle or mount == "token":
            raise bad_request(f"path is already in use at {mount}/")
        self._enable_approle(mount)
        return Reply()

    def _token(self, method: str, action: str, req: Request, token: Token) -> Reply:
        if action == "lookup-self":
            if method != "GET":
                raise VaultError(405, UNSUPPORTED)
            return self.tokens.lookup_self(token)
        if method not in ("POST", "PUT"):
            raise VaultError(405, UNSUPPORTED)
        if action == "revoke-self":
            self.tokens.revoke(token)
            return Reply()
        if action == "revoke-accessor":
            return self.tokens.revoke_accessor(req.body)
        ttl, max_ttl = 0, 0
        if token.role is not None:
            mount, name = token.role
            role = self.approle[mount].roles.get(name) if mount in self.approle else None
            if role is None:
                raise VaultError(500, f'role "{name}" does not exist during renewal')
            ttl, max_ttl = role.token_ttl, role.token_max_ttl
        return self.tokens.renew_self(token, req.body, ttl, max_ttl)

    def _unwrap(self, method: str, req: Request) -> Reply:
        """The wrapping token comes as the client token, or in the body from a caller whose
        own token may use ``sys/wrapping/unwrap``. Either way it works once."""
        if method not in ("POST", "PUT"):
            raise VaultError(405, UNSUPPORTED)
        in_body = req.body.get("token")
        wrapping = self.tokens.wrapping_token(str(in_body) if in_body else req.token)
        if in_body:
            caller = self.tokens.get(req.token)
            if caller is None or caller.is_wrapping:
                raise denied()
            acl = self.policies.acl(caller.policies)
            if not caller.is_root and not acl.allows("sys/wrapping/unwrap", "update"):
                raise denied()
        return self.tokens.unwrap(wrapping)


def _capability(method: str, route: Route | None) -> str:
    if method in ("POST", "PUT"):
        exists = route.exists if route is not None else None
        return "create" if exists is not None and not exists() else "update"
    return {"GET": "read", "LIST": "list", "DELETE": "delete", "PATCH": "patch"}.get(
        method, "update"
    )
