"""The KV version 2 secrets engine at one mount: data, metadata, delete/undelete/destroy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .common import (
    JSON,
    Clock,
    Reply,
    VaultError,
    bad_request,
    envelope,
    not_found,
    ok,
    parse_bool,
    parse_int,
    rfc3339,
)

DEFAULT_MAX_VERSIONS = 10
KINDS = ("data", "metadata", "delete", "undelete", "destroy")


def unsupported() -> VaultError:
    return VaultError(405, "unsupported operation")


@dataclass
class Version:
    data: JSON | None
    created: float
    deleted: float | None = None
    destroyed: bool = False

    def view(self) -> JSON:
        return {
            "created_time": rfc3339(self.created),
            "deletion_time": rfc3339(self.deleted) if self.deleted is not None else "",
            "destroyed": self.destroyed,
        }


@dataclass
class Key:
    created: float
    updated: float
    versions: dict[int, Version] = field(default_factory=dict)
    current: int = 0
    oldest: int = 0
    max_versions: int = 0
    cas_required: bool = False
    custom_metadata: dict[str, str] | None = None
    delete_version_after: str = "0s"

    def version_view(self, number: int) -> JSON:
        return {
            **self.versions[number].view(),
            "custom_metadata": self.custom_metadata,
            "version": number,
        }


class KvMount:
    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self.keys: dict[str, Key] = {}

    def exists(self, path: str) -> bool:
        """The existence check behind create-versus-update on data and metadata writes."""
        return path.strip("/") in self.keys

    def handle(self, method: str, kind: str, path: str, query: JSON, body: JSON) -> Reply:
        path = path.strip("/")
        if kind == "metadata" and method == "LIST":
            return self.list(path)
        if path == "":
            raise not_found() if method == "GET" else unsupported()
        match (kind, method):
            case ("data", "GET"):
                return self.read(path, query.get("version"))
            case ("data", "POST" | "PUT"):
                return self.write(path, body)
            case ("data", "DELETE"):
                return self.delete_latest(path)
            case ("metadata", "GET"):
                return self.read_metadata(path)
            case ("metadata", "POST" | "PUT"):
                return self.write_metadata(path, body)
            case ("metadata", "DELETE"):
                self.keys.pop(path, None)
                return Reply()
            case ("delete" | "undelete" | "destroy", "POST" | "PUT"):
                return self.change_versions(kind, path, body)
        raise unsupported()

    # --- data ---------------------------------------------------------------------------

    def read(self, path: str, version_param: Any) -> Reply:
        key = self.keys.get(path)
        if key is None:
            raise not_found()
        number = parse_int(version_param, "version") if version_param is not None else 0
        number = number or key.current
        version = key.versions.get(number)
        if version is None:
            raise not_found()
        metadata = key.version_view(number)
        if version.deleted is not None or version.destroyed:
            # Vault answers 404 but still shows the version's metadata.
            raise VaultError(
                404, body=envelope({"data": None, "metadata": metadata}, mount_type="kv")
            )
        return ok({"data": version.data, "metadata": metadata}, mount_type="kv")

    def write(self, path: str, body: JSON) -> Reply:
        data = body.get("data")
        if data is None:
            raise bad_request("no data provided")
        if not isinstance(data, dict):
            raise bad_request("error parsing data: expected a JSON object")
        options = body.get("options") or {}
        key = self.keys.get(path)
        cas = options.get("cas")
        if cas is None and (key is not None and key.cas_required):
            raise bad_request("check-and-set parameter required for this call")
        if cas is not None:
            current = key.current if key is not None else 0
            if parse_int(cas, "cas") != current:
                raise bad_request("check-and-set parameter did not match the current version")
        now = self.clock.now()
        if key is None:
            key = self.keys[path] = Key(created=now, updated=now)
        key.current += 1
        key.updated = now
        key.versions[key.current] = Version(data=dict(data), created=now)
        self._prune(key)
        return ok(key.version_view(key.current), mount_type="kv")

    def delete_latest(self, path: str) -> Reply:
        key = self.keys.get(path)
        if key is not None:
            version = key.versions.get(key.current)
            if version is not None and version.deleted is None and not version.destroyed:
                version.deleted = self.clock.now()
        return Reply()

    def change_versions(self, action: str, path: str, body: JSON) -> Reply:
        raw = body.get("versions")
        if not raw:
            raise bad_request("no version number provided")
        if not isinstance(raw, list):
            raw = [raw]
        numbers = [parse_int(v, "versions") for v in raw]
        key = self.keys.get(path)
        if key is None:
            return Reply()
        now = self.clock.now()
        for number in numbers:
            version = key.versions.get(number)
            if version is None or version.destroyed:
                continue
            if action == "delete" and version.deleted is None:
                version.deleted = now
            elif action == "undelete":
                version.deleted = None
            elif action == "destroy":
                version.destroyed = True
                version.data = None
        return Reply()

    # --- metadata -----------------------------------------------------------------------

    def read_metadata(self, path: str) -> Reply:
        key = self.keys.get(path)
        if key is None:
            raise not_found()
        return ok(
            {
                "cas_required": key.cas_required,
                "created_time": rfc3339(key.created),
                "current_version": key.current,
                "custom_metadata": key.custom_metadata,
                "delete_version_after": key.delete_version_after,
                "max_versions": key.max_versions,
                "oldest_version": key.oldest,
                "updated_time": rfc3339(key.updated),
                "versions": {str(n): v.view() for n, v in sorted(key.versions.items())},
            },
            mount_type="kv",
        )

    def write_metadata(self, path: str, body: JSON) -> Reply:
        now = self.clock.now()
        key = self.keys.get(path) or Key(created=now, updated=now)
        if "max_versions" in body:
            key.max_versions = parse_int(body["max_versions"], "max_versions")
        if "cas_required" in body:
            key.cas_required = parse_bool(body["cas_required"], "cas_required")
        if "delete_version_after" in body:
            key.delete_version_after = str(body["delete_version_after"])
        if "custom_metadata" in body:
            custom = body["custom_metadata"]
            if custom is not None and (
                not isinstance(custom, dict)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in custom.items())
            ):
                raise bad_request("custom_metadata must be a map of strings to strings")
            key.custom_metadata = dict(custom) if custom else None
        key.updated = now
        self.keys[path] = key
        return Reply()

    def list(self, path: str) -> Reply:
        prefix = f"{path}/" if path else ""
        children: set[str] = set()
        for name in self.keys:
            if name.startswith(prefix):
                head, sep, _ = name[len(prefix) :].partition("/")
                children.add(head + sep)
        if not children:
            raise not_found()
        return ok({"keys": sorted(children)}, mount_type="kv")

    def _prune(self, key: Key) -> None:
        limit = key.max_versions or DEFAULT_MAX_VERSIONS
        stale = sorted(key.versions)[:-limit]
        for number in stale:
            del key.versions[number]
        if stale:
            key.oldest = min(key.versions)
