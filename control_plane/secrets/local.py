"""``LocalSecretStore``: the embedded default :class:`SecretStore`, one encrypted JSON file.

Envelope encryption, Vault KV v2 semantics, no plaintext on disk.

* A **master key** (AES-256, from a file or a base64 value) named by a ``key_id``.
* A **data key per owner** (``tenants/<id>`` or ``partners/<id>``): random 256 bits, stored
  only wrapped by the master key with AES-256-GCM. The associated data names the owner and
  the master key id, so a wrapped key moved to another owner, or relabelled with another key
  id, fails authentication. Each wrapped key keeps the id of the master key that wrapped it.
* **Values** are sealed with their owner's data key, AES-256-GCM, a fresh random 96-bit nonce
  per encryption, and associated data naming path and version: a ciphertext swapped between
  secrets or versions fails authentication (:class:`SecretCorrupt`) instead of decrypting.
* A **key check** (a GCM tag over nothing, under the master key) lets every load tell a wrong
  master key apart at once, before anything could be written with it.
* :meth:`LocalSecretStore.rotate_master_key` re-wraps the data keys (values are untouched)
  and replaces the file atomically; afterwards the old master key opens nothing.

``<directory>/store.json`` (mode 0600, replaced atomically: temp file, fsync, ``os.replace``)::

    {"format": "storeops-local-secrets/1",
     "check": {"key_id": "...", "nonce": "<b64>", "tag": "<b64>"},
     "owners": {"tenants/<uuid>": {
        "data_key": {"key_id": "...", "nonce": "<b64>", "wrapped": "<b64>", "created_at": "..."},
        "secrets": {"<name>": {"created_at": "...", "current_version": 2, "versions": {
            "1": {"created_at": "...", "created_by": "...", "deleted_at": null,
                  "destroyed_at": "...", "nonce": null, "ciphertext": null},
            "2": {..., "nonce": "<b64>", "ciphertext": "<b64>"}}}}}}}

Writers serialise on an ``asyncio.Lock`` per store object and on an ``flock`` of
``store.json.lock`` (so a CLI and a server sharing the directory do not lose each other's
writes); file I/O and crypto run in ``asyncio.to_thread``. Nothing here ever puts a secret
value, or key material, in an exception message, a ``repr`` or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, get_args
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from control_plane.secrets.store import (
    CasMismatch,
    OwnerKind,
    Secret,
    SecretCorrupt,
    SecretMeta,
    SecretNotFound,
    SecretPath,
    SecretStoreError,
)

if TYPE_CHECKING:
    from control_plane.secrets.store import SecretStore

__all__ = [
    "FILE_NAME",
    "KEY_BYTES",
    "LocalSecretStore",
    "MasterKeyMismatch",
    "derive_key_id",
    "generate_master_key",
]

log = logging.getLogger("storeops.secrets.local")

FILE_NAME = "store.json"
FORMAT = "storeops-local-secrets/1"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit GCM nonce
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")
_OWNER_KINDS: tuple[str, ...] = get_args(OwnerKind)

T = TypeVar("T")


class MasterKeyMismatch(SecretCorrupt):
    """The master key given does not open this store (another key, or a tampered check)."""


def generate_master_key() -> bytes:
    """A fresh random 256-bit master key (store it base64-encoded, or raw, mode 0600)."""
    return AESGCM.generate_key(bit_length=256)


def read_key_file(path: str | os.PathLike[str]) -> bytes:
    """A master key file: 32 raw bytes, or their base64 on one line."""
    raw = Path(path).read_bytes()
    key = (
        raw if len(raw) == KEY_BYTES else _decode_b64_key(raw, f"master key file {os.fspath(path)}")
    )
    if Path(path).stat().st_mode & 0o077:
        log.warning("master key file %s is readable by group or others", os.fspath(path))
    return key


def derive_key_id(master_key: bytes) -> str:
    """A stable, non-secret id for a key: a truncated HMAC keyed by the key itself."""
    _check_key(master_key)
    digest = hmac.new(master_key, b"storeops/local-secrets/key-id", hashlib.sha256).hexdigest()
    return f"local-{digest[:16]}"


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
        raise ValueError(f"a master key must be exactly {KEY_BYTES} bytes (AES-256)")


def _check_key_id(key_id: str) -> None:
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise ValueError(
            "a master key id must be 1-128 characters: letters, digits, '_', '.', ':', '/' or '-'"
        )


def _decode_b64_key(text: bytes, source: str) -> bytes:
    """Standard or URL-safe base64 of 32 bytes; errors name the source, never the content."""
    text = text.strip()
    for altchars in (None, b"-_"):
        try:
            key = base64.b64decode(text, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(key) == KEY_BYTES:
            return key
        raise ValueError(f"{source}: decodes to {len(key)} bytes, a master key is {KEY_BYTES}")
    raise ValueError(f"{source}: not valid base64")


def _aad(*parts: str) -> bytes:
    """Associated data: an unambiguous encoding of what a ciphertext is bound to."""
    return json.dumps(["storeops/local-secrets/1", *parts], separators=(",", ":")).encode()


def _now() -> datetime:
    return datetime.now(UTC)


# --- the file's shape -------------------------------------------------------------------


def _malformed(where: str) -> SecretCorrupt:
    return SecretCorrupt(f"secret store file is malformed at {where}")


def _get(obj: object, key: str, where: str) -> object:
    if not isinstance(obj, dict) or key not in obj:
        raise _malformed(f"{where}.{key}")
    return obj[key]


def _str(obj: object, key: str, where: str) -> str:
    value = _get(obj, key, where)
    if not isinstance(value, str):
        raise _malformed(f"{where}.{key}")
    return value


def _int(obj: object, key: str, where: str) -> int:
    value = _get(obj, key, where)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _malformed(f"{where}.{key}")
    return value


def _dict(obj: object, key: str, where: str) -> dict[str, object]:
    value = _get(obj, key, where)
    if not isinstance(value, dict):
        raise _malformed(f"{where}.{key}")
    return value


def _bytes(obj: object, key: str, where: str, length: int | None = None) -> bytes:
    try:
        value = base64.b64decode(_str(obj, key, where), validate=True)
    except (binascii.Error, ValueError):
        raise _malformed(f"{where}.{key}") from None
    if length is not None and len(value) != length:
        raise _malformed(f"{where}.{key}")
    return value


def _time(obj: object, key: str, where: str) -> datetime:
    try:
        value = datetime.fromisoformat(_str(obj, key, where))
    except ValueError:
        raise _malformed(f"{where}.{key}") from None
    if value.tzinfo is None:
        raise _malformed(f"{where}.{key}")
    return value


def _opt_time(obj: object, key: str, where: str) -> datetime | None:
    return None if _get(obj, key, where) is None else _time(obj, key, where)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class _Check:
    """A GCM tag over the empty string under the master key: proves which key seals the file."""

    key_id: str
    nonce: bytes
    tag: bytes

    @classmethod
    def parse(cls, obj: object) -> _Check:
        return cls(
            key_id=_str(obj, "key_id", "check"),
            nonce=_bytes(obj, "nonce", "check", NONCE_BYTES),
            tag=_bytes(obj, "tag", "check", 16),
        )

    def dump(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "nonce": _b64(self.nonce), "tag": _b64(self.tag)}


@dataclass
class _WrappedKey:
    key_id: str
    nonce: bytes
    wrapped: bytes
    created_at: datetime

    @classmethod
    def parse(cls, obj: object, where: str) -> _WrappedKey:
        return cls(
            key_id=_str(obj, "key_id", where),
            nonce=_bytes(obj, "nonce", where, NONCE_BYTES),
            wrapped=_bytes(obj, "wrapped", where, KEY_BYTES + 16),
            created_at=_time(obj, "created_at", where),
        )

    def dump(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "nonce": _b64(self.nonce),
            "wrapped": _b64(self.wrapped),
            "created_at": self.created_at.isoformat(),
        }


@dataclass
class _Version:
    created_at: datetime
    created_by: str
    nonce: bytes | None
    ciphertext: bytes | None
    deleted_at: datetime | None = None
    destroyed_at: datetime | None = None

    @property
    def readable(self) -> bool:
        return self.deleted_at is None and self.destroyed_at is None

    @classmethod
    def parse(cls, obj: object, where: str) -> _Version:
        destroyed_at = _opt_time(obj, "destroyed_at", where)
        sealed = destroyed_at is None
        if sealed != (_get(obj, "nonce", where) is not None):
            raise _malformed(f"{where}.nonce")
        if sealed != (_get(obj, "ciphertext", where) is not None):
            raise _malformed(f"{where}.ciphertext")
        return cls(
            created_at=_time(obj, "created_at", where),
            created_by=_str(obj, "created_by", where),
            nonce=_bytes(obj, "nonce", where, NONCE_BYTES) if sealed else None,
            ciphertext=_bytes(obj, "ciphertext", where) if sealed else None,
            deleted_at=_opt_time(obj, "deleted_at", where),
            destroyed_at=destroyed_at,
        )

    def dump(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
            "destroyed_at": self.destroyed_at.isoformat() if self.destroyed_at else None,
            "nonce": _b64(self.nonce) if self.nonce is not None else None,
            "ciphertext": _b64(self.ciphertext) if self.ciphertext is not None else None,
        }


@dataclass
class _Record:
    created_at: datetime
    current_version: int
    versions: dict[int, _Version]

    @classmethod
    def parse(cls, obj: object, where: str) -> _Record:
        current = _int(obj, "current_version", where)
        versions: dict[int, _Version] = {}
        for key, value in _dict(obj, "versions", where).items():
            if not key.isdigit() or not 1 <= int(key) <= current:
                raise _malformed(f"{where}.versions")
            versions[int(key)] = _Version.parse(value, f"{where}.versions.{key}")
        if current not in versions:
            raise _malformed(f"{where}.current_version")
        return cls(_time(obj, "created_at", where), current, versions)

    def dump(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at.isoformat(),
            "current_version": self.current_version,
            "versions": {str(n): v.dump() for n, v in sorted(self.versions.items())},
        }

    def meta(self, name: str) -> SecretMeta:
        current = self.versions[self.current_version]
        return SecretMeta(
            name=name,
            version=self.current_version,
            created_at=self.created_at,
            updated_at=current.created_at,
            updated_by=current.created_by,
            deleted=current.deleted_at is not None and current.destroyed_at is None,
            destroyed=current.destroyed_at is not None,
        )


@dataclass
class _Owner:
    data_key: _WrappedKey
    secrets: dict[str, _Record]

    @classmethod
    def parse(cls, obj: object, where: str) -> _Owner:
        secrets = {
            name: _Record.parse(value, f"{where}.secrets.{name}")
            for name, value in _dict(obj, "secrets", where).items()
        }
        return cls(_WrappedKey.parse(_get(obj, "data_key", where), f"{where}.data_key"), secrets)

    def dump(self) -> dict[str, Any]:
        return {
            "data_key": self.data_key.dump(),
            "secrets": {name: r.dump() for name, r in sorted(self.secrets.items())},
        }


@dataclass
class _Doc:
    check: _Check
    owners: dict[str, _Owner]

    @classmethod
    def parse(cls, raw: bytes) -> _Doc:
        try:
            obj: object = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise SecretCorrupt("secret store file is not valid JSON") from None
        if _get(obj, "format", "") != FORMAT:
            raise SecretStoreError(f"secret store file is not in format {FORMAT!r}")
        owners = {
            prefix: _Owner.parse(value, f"owners.{prefix}")
            for prefix, value in _dict(obj, "owners", "").items()
        }
        return cls(_Check.parse(_get(obj, "check", "")), owners)

    def dump(self) -> bytes:
        doc = {
            "format": FORMAT,
            "check": self.check.dump(),
            "owners": {prefix: o.dump() for prefix, o in sorted(self.owners.items())},
        }
        return json.dumps(doc, indent=1).encode() + b"\n"


# --- the store --------------------------------------------------------------------------


class LocalSecretStore:
    """The embedded :class:`~control_plane.secrets.store.SecretStore` (see the module doc)."""

    def __init__(self, directory: str | os.PathLike[str], master_key: bytes, key_id: str) -> None:
        _check_key(master_key)
        _check_key_id(key_id)
        self._dir = Path(directory)
        self._file = self._dir / FILE_NAME
        self._lockfile = self._dir / f"{FILE_NAME}.lock"
        self._key = bytes(master_key)
        self._key_id = key_id
        self._lock = asyncio.Lock()

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        directory: str | os.PathLike[str],
        key_id: str | None = None,
    ) -> LocalSecretStore:
        """The master key from a file: 32 raw bytes, or their base64 on one line.

        Without ``key_id`` the id is derived from the key (:func:`derive_key_id`).
        """
        key = read_key_file(path)
        return cls(directory, key, key_id or derive_key_id(key))

    @classmethod
    def from_env_value(
        cls, value: str, *, directory: str | os.PathLike[str], key_id: str | None = None
    ) -> LocalSecretStore:
        """The master key from a base64 value (e.g. an environment variable)."""
        key = _decode_b64_key(value.encode("ascii", "replace"), "master key value")
        return cls(directory, key, key_id or derive_key_id(key))

    @property
    def path(self) -> Path:
        return self._file

    @property
    def key_id(self) -> str:
        return self._key_id

    def __repr__(self) -> str:
        return f"LocalSecretStore(path={os.fspath(self._file)!r}, key_id={self._key_id!r})"

    # -- the protocol ----------------------------------------------------------------------

    async def put(
        self, path: SecretPath, value: str, *, actor: str, cas: int | None = None
    ) -> SecretMeta:
        """Write a new version; ``cas`` is the version the writer saw (0: must not exist)."""
        if not isinstance(value, str):
            raise TypeError("a secret value must be a str")
        if not isinstance(actor, str) or not actor:
            raise ValueError("put needs the acting principal (actor)")
        if cas is not None and (not isinstance(cas, int) or isinstance(cas, bool) or cas < 0):
            raise ValueError("cas must be a version number >= 0")
        return await self._run(
            lambda: self._transact(lambda doc: self._put(doc, path, value, actor, cas))
        )

    async def read(self, path: SecretPath, version: int | None = None) -> Secret:
        return await self._run(lambda: self._read(path, version))

    async def metadata(self, path: SecretPath) -> SecretMeta:
        def meta() -> SecretMeta:
            return self._record(self._load(), path).meta(path.name)

        return await self._run(meta)

    async def list_secrets(self, owner: OwnerKind, owner_id: UUID) -> list[SecretMeta]:
        """Every secret under one partner or tenant (deleted ones flagged), by name."""
        if owner not in _OWNER_KINDS:
            raise ValueError(f"owner must be one of {', '.join(_OWNER_KINDS)}")
        if not isinstance(owner_id, UUID):
            raise TypeError("owner_id must be a UUID")

        def listing() -> list[SecretMeta]:
            found = self._load().owners.get(f"{owner}/{owner_id}")
            if found is None:
                return []
            return [record.meta(name) for name, record in sorted(found.secrets.items())]

        return await self._run(listing)

    async def delete(self, path: SecretPath) -> None:
        """Soft-delete the current version (a no-op if it already is deleted or destroyed)."""

        def delete(doc: _Doc) -> None:
            record = self._record(doc, path)
            current = record.versions[record.current_version]
            if current.readable:
                current.deleted_at = _now()

        await self._run(lambda: self._transact(delete))

    async def undelete(self, path: SecretPath, versions: list[int]) -> None:
        """Restore these soft-deleted versions; unknown or destroyed versions are ignored."""
        wanted = _versions(versions)

        def undelete(doc: _Doc) -> None:
            record = self._record(doc, path)
            for number in wanted:
                version = record.versions.get(number)
                if version is not None and version.destroyed_at is None:
                    version.deleted_at = None

        await self._run(lambda: self._transact(undelete))

    async def destroy(self, path: SecretPath, versions: list[int]) -> None:
        """Remove these versions' values permanently; unknown versions are ignored."""
        wanted = _versions(versions)

        def destroy(doc: _Doc) -> None:
            record = self._record(doc, path)
            now = _now()
            for number in wanted:
                version = record.versions.get(number)
                if version is not None and version.destroyed_at is None:
                    version.destroyed_at = now
                    version.nonce = version.ciphertext = None

        await self._run(lambda: self._transact(destroy))

    async def purge(self, path: SecretPath) -> None:
        """Remove the secret with all its versions and metadata.

        The owner's data key goes with its last secret (a new one is made on the next put).
        """

        def purge(doc: _Doc) -> None:
            self._record(doc, path)
            owner = doc.owners[path.prefix]
            del owner.secrets[path.name]
            if not owner.secrets:
                del doc.owners[path.prefix]

        await self._run(lambda: self._transact(purge))

    # -- beyond the protocol ---------------------------------------------------------------

    async def rotate_master_key(self, new_key: bytes, new_key_id: str) -> int:
        """Re-wrap every data key with ``new_key`` and switch to it; returns how many.

        Values are not re-encrypted. The file is replaced atomically, so a failure leaves the
        store as it was (still opened by the current key); after success the old key opens
        nothing. Other processes holding the old key must be restarted with the new one.
        """
        _check_key(new_key)
        _check_key_id(new_key_id)
        if new_key_id == self._key_id:
            raise ValueError("the new master key needs a key id of its own")
        return await self._run(lambda: self._rotate(bytes(new_key), new_key_id))

    # -- the synchronous core (runs in a worker thread, under the locks) ------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        """``fn`` in a worker thread under the store's lock.

        If the caller is cancelled, the lock is held until the thread finishes, so the next
        operation never overlaps a write (or a key switch) still in flight.
        """
        async with self._lock:
            work = asyncio.ensure_future(asyncio.to_thread(fn))
            try:
                return await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])
                if not work.cancelled():
                    work.exception()  # retrieved: the caller's cancellation wins
                raise

    def _put(
        self, doc: _Doc, path: SecretPath, value: str, actor: str, cas: int | None
    ) -> SecretMeta:
        owner = doc.owners.get(path.prefix)
        record = owner.secrets.get(path.name) if owner is not None else None
        current = record.current_version if record is not None else 0
        if cas is not None and cas != current:
            expected = "must not exist yet" if cas == 0 else f"expected version {cas}"
            raise CasMismatch(f"{path}: check-and-set {expected}, current version is {current}")
        now = _now()
        if owner is None:
            owner = doc.owners[path.prefix] = _Owner(self._new_data_key(path.prefix, now), {})
        if record is None:
            record = owner.secrets[path.name] = _Record(now, 0, {})
        version = current + 1
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._data_key(path.prefix, owner).encrypt(
            nonce, value.encode("utf-8"), _aad("value", path.prefix, path.name, str(version))
        )
        record.versions[version] = _Version(now, actor, nonce, ciphertext)
        record.current_version = version
        return record.meta(path.name)

    def _read(self, path: SecretPath, version: int | None) -> Secret:
        doc = self._load()
        record = self._record(doc, path)
        number = record.current_version if version is None else version
        found = record.versions.get(number)
        if found is None:
            raise SecretNotFound(f"{path} has no version {number}")
        if found.destroyed_at is not None:
            raise SecretNotFound(f"{path} version {number} is destroyed")
        if found.deleted_at is not None:
            raise SecretNotFound(f"{path} version {number} is deleted")
        if found.nonce is None or found.ciphertext is None:  # parse() rules this out
            raise SecretCorrupt(f"{path} version {number} has no ciphertext")
        data_key = self._data_key(path.prefix, doc.owners[path.prefix])
        aad = _aad("value", path.prefix, path.name, str(number))
        try:
            value = data_key.decrypt(found.nonce, found.ciphertext, aad).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise SecretCorrupt(f"{path} version {number} failed authentication") from None
        meta = SecretMeta(
            name=path.name,
            version=number,
            created_at=record.created_at,
            updated_at=found.created_at,
            updated_by=found.created_by,
        )
        return Secret(value, meta)

    def _rotate(self, new_key: bytes, new_key_id: str) -> int:
        with self._flock():
            doc = self._load()
            for prefix, owner in doc.owners.items():
                raw = self._unwrap(prefix, owner.data_key)
                owner.data_key = _wrap(new_key, new_key_id, prefix, raw, owner.data_key.created_at)
            doc.check = _make_check(new_key, new_key_id)
            self._save(doc)
            old_key_id, self._key, self._key_id = self._key_id, new_key, new_key_id
        log.info(
            "secret store %s: master key %s replaced by %s (%d data keys re-wrapped)",
            os.fspath(self._file),
            old_key_id,
            new_key_id,
            len(doc.owners),
        )
        return len(doc.owners)

    def _record(self, doc: _Doc, path: SecretPath) -> _Record:
        owner = doc.owners.get(path.prefix)
        record = owner.secrets.get(path.name) if owner is not None else None
        if record is None:
            raise SecretNotFound(f"no secret at {path}")
        return record

    def _new_data_key(self, prefix: str, now: datetime) -> _WrappedKey:
        log.debug("secret store %s: new data key for %s", os.fspath(self._file), prefix)
        return _wrap(self._key, self._key_id, prefix, AESGCM.generate_key(bit_length=256), now)

    def _data_key(self, prefix: str, owner: _Owner) -> AESGCM:
        return AESGCM(self._unwrap(prefix, owner.data_key))

    def _unwrap(self, prefix: str, wrapped: _WrappedKey) -> bytes:
        if wrapped.key_id != self._key_id:
            raise MasterKeyMismatch(
                f"the data key of {prefix} is wrapped by master key {wrapped.key_id!r}, "
                f"not {self._key_id!r}"
            )
        try:
            raw = AESGCM(self._key).decrypt(
                wrapped.nonce, wrapped.wrapped, _aad("data-key", prefix, wrapped.key_id)
            )
        except InvalidTag:
            raise SecretCorrupt(f"the data key of {prefix} failed authentication") from None
        if len(raw) != KEY_BYTES:  # pragma: no cover - authenticated, so only if we wrote it
            raise SecretCorrupt(f"the data key of {prefix} has the wrong length")
        return raw

    # -- the file --------------------------------------------------------------------------

    def _transact(self, mutate: Callable[[_Doc], T]) -> T:
        """Load, change and atomically rewrite the file, holding the cross-process lock."""
        with self._flock():
            doc = self._load()
            result = mutate(doc)
            self._save(doc)
            return result

    def _load(self) -> _Doc:
        try:
            raw = self._file.read_bytes()
        except FileNotFoundError:
            return _Doc(check=_make_check(self._key, self._key_id), owners={})
        except OSError as exc:
            raise SecretStoreError(f"cannot read {os.fspath(self._file)}: {exc.strerror}") from None
        doc = _Doc.parse(raw)
        self._verify_check(doc.check)
        return doc

    def _verify_check(self, check: _Check) -> None:
        where = os.fspath(self._file)
        if check.key_id != self._key_id:
            raise MasterKeyMismatch(
                f"{where} is sealed by master key {check.key_id!r}; this store was opened "
                f"with {self._key_id!r}"
            )
        try:
            AESGCM(self._key).decrypt(check.nonce, check.tag, _aad("check", check.key_id))
        except InvalidTag:
            raise MasterKeyMismatch(
                f"master key {self._key_id!r} does not open {where} "
                "(another key under the same id, or the file was tampered with)"
            ) from None

    def _save(self, doc: _Doc) -> None:
        data = doc.dump()
        tmp: str | None = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", suffix=".tmp", dir=self._dir)
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._file)
            tmp = None
            _fsync_dir(self._dir)
        except OSError as exc:
            raise SecretStoreError(
                f"cannot write {os.fspath(self._file)}: {exc.strerror or type(exc).__name__}"
            ) from exc
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    @contextlib.contextmanager
    def _flock(self) -> Iterator[None]:
        try:
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self._lockfile, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SecretStoreError(
                f"cannot lock {os.fspath(self._lockfile)}: {exc.strerror}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _versions(versions: list[int]) -> list[int]:
    if not versions or not all(isinstance(n, int) and not isinstance(n, bool) for n in versions):
        raise ValueError("name at least one version number")
    return list(versions)


def _wrap(
    key: bytes, key_id: str, prefix: str, data_key: bytes, created_at: datetime
) -> _WrappedKey:
    nonce = os.urandom(NONCE_BYTES)
    wrapped = AESGCM(key).encrypt(nonce, data_key, _aad("data-key", prefix, key_id))
    return _WrappedKey(key_id, nonce, wrapped, created_at)


def _make_check(key: bytes, key_id: str) -> _Check:
    nonce = os.urandom(NONCE_BYTES)
    return _Check(key_id, nonce, AESGCM(key).encrypt(nonce, b"", _aad("check", key_id)))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


if TYPE_CHECKING:

    def _implements(store: LocalSecretStore) -> SecretStore:  # mypy checks the protocol
        return store
