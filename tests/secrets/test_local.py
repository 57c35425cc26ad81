"""LocalSecretStore: Vault KV v2 semantics, envelope encryption, tamper evidence, rotation.

Every test runs on its own directory (``tmp_path``); no database is involved.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from control_plane.secrets.local import (
    LocalSecretStore,
    MasterKeyMismatch,
    derive_key_id,
    generate_master_key,
)
from control_plane.secrets.store import (
    CasMismatch,
    SecretCorrupt,
    SecretNotFound,
    SecretPath,
    SecretStore,
    SecretStoreError,
)

TENANT_A = UUID("0b5f5d7e-0000-4000-8000-00000000000a")
TENANT_B = UUID("0b5f5d7e-0000-4000-8000-00000000000b")
PARTNER = UUID("0b5f5d7e-0000-4000-8000-0000000000cc")


def tenant(name: str, owner_id: UUID = TENANT_A) -> SecretPath:
    return SecretPath("tenants", owner_id, name)


def canary() -> str:
    """A value distinctive enough that finding it anywhere means it leaked."""
    return f"canary-{secrets.token_hex(12)}-value"


@pytest.fixture
def key() -> bytes:
    return generate_master_key()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home" / "secrets"


@pytest.fixture
def store(home: Path, key: bytes) -> LocalSecretStore:
    return LocalSecretStore(home, key, "k1")


def load(store: LocalSecretStore) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(store.path.read_text())
    return doc


def save(store: LocalSecretStore, doc: dict[str, Any]) -> None:
    store.path.write_text(json.dumps(doc))


def version_entry(doc: dict[str, Any], path: SecretPath, version: int) -> dict[str, Any]:
    entry: dict[str, Any] = doc["owners"][path.prefix]["secrets"][path.name]["versions"][
        str(version)
    ]
    return entry


def flip(b64: str, index: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def assert_no_leak(exc: BaseException, *values: str) -> None:
    text = f"{exc} {exc!r} {exc.args!r}"
    for value in values:
        assert value not in text


@contextlib.contextmanager
def captured_logs(caplog: pytest.LogCaptureFixture, level: int) -> Iterator[None]:
    """The store's own log lines, even when the app has set ``storeops`` not to propagate."""
    logger = logging.getLogger("storeops.secrets.local")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(level, logger=logger.name):
            yield
    finally:
        logger.removeHandler(caplog.handler)


def files_under(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


# --- the protocol -----------------------------------------------------------------------


def test_is_a_secret_store(store: LocalSecretStore) -> None:
    backend: SecretStore = store  # mypy checks the structural match
    assert backend is store


async def test_versions_start_at_one_and_increase(store: LocalSecretStore) -> None:
    path = tenant("smtp.password")
    m1 = await store.put(path, "first", actor="user:alice")
    m2 = await store.put(path, "second", actor="user:bob")
    assert (m1.version, m2.version) == (1, 2)
    assert m1.name == "smtp.password"
    assert (m1.updated_by, m2.updated_by) == ("user:alice", "user:bob")
    assert m2.created_at == m1.created_at
    assert m2.updated_at >= m1.updated_at
    assert not (m2.deleted or m2.destroyed)

    current = await store.read(path)
    assert current.value == "second"
    assert current.meta.version == 2
    old = await store.read(path, version=1)
    assert old.value == "first"
    assert (old.meta.version, old.meta.updated_by) == (1, "user:alice")

    meta = await store.metadata(path)
    assert (meta.version, meta.updated_by, meta.created_at) == (2, "user:bob", m1.created_at)


async def test_values_round_trip(store: LocalSecretStore) -> None:
    for i, value in enumerate(["", "ünïcødé ✓ 秘密", "line\nbreak\x00nul", "x" * 100_000]):
        await store.put(tenant(f"v{i}"), value, actor="t")
        assert (await store.read(tenant(f"v{i}"))).value == value


async def test_missing_versions_are_not_found(store: LocalSecretStore) -> None:
    path = tenant("api-key")
    with pytest.raises(SecretNotFound):
        await store.read(path)
    await store.put(path, "v", actor="t")
    for version in (0, -1, 2, 99):
        with pytest.raises(SecretNotFound):
            await store.read(path, version=version)


async def test_check_and_set(store: LocalSecretStore) -> None:
    path = tenant("token")
    with pytest.raises(CasMismatch):
        await store.put(path, "v", actor="t", cas=1)  # does not exist yet
    assert (await store.put(path, "v1", actor="t", cas=0)).version == 1
    with pytest.raises(CasMismatch):
        await store.put(path, "again", actor="t", cas=0)  # must not exist
    assert (await store.put(path, "v2", actor="t", cas=1)).version == 2
    with pytest.raises(CasMismatch, match="current version is 2"):
        await store.put(path, "stale", actor="t", cas=1)
    with pytest.raises(CasMismatch):
        await store.put(path, "ahead", actor="t", cas=3)
    assert (await store.read(path)).value == "v2"
    assert (await store.put(path, "v3", actor="t")).version == 3  # no cas: unconditional


async def test_cas_counts_deleted_and_destroyed_versions(store: LocalSecretStore) -> None:
    path = tenant("token")
    await store.put(path, "v1", actor="t")
    await store.delete(path)
    with pytest.raises(CasMismatch):
        await store.put(path, "v", actor="t", cas=0)  # it still exists, soft-deleted
    await store.destroy(path, [1])
    assert (await store.put(path, "v2", actor="t", cas=1)).version == 2


async def test_put_rejects_bad_arguments(store: LocalSecretStore) -> None:
    with pytest.raises(ValueError, match="cas"):
        await store.put(tenant("x"), "v", actor="t", cas=-1)
    with pytest.raises(ValueError, match="actor"):
        await store.put(tenant("x"), "v", actor="")
    with pytest.raises(TypeError):
        await store.put(tenant("x"), b"bytes", actor="t")  # type: ignore[arg-type]
    assert not store.path.exists()


async def test_soft_delete_and_undelete(store: LocalSecretStore) -> None:
    path = tenant("db-password")
    await store.put(path, "one", actor="t")
    await store.put(path, "two", actor="t")
    await store.delete(path)

    with pytest.raises(SecretNotFound, match="deleted"):
        await store.read(path)
    with pytest.raises(SecretNotFound):
        await store.read(path, version=2)
    assert (await store.read(path, version=1)).value == "one"  # only the current version
    meta = await store.metadata(path)
    assert (meta.version, meta.deleted, meta.destroyed) == (2, True, False)
    [listed] = await store.list_secrets("tenants", TENANT_A)
    assert listed.deleted

    await store.delete(path)  # idempotent
    await store.undelete(path, [2, 7])  # unknown versions are ignored
    assert (await store.read(path)).value == "two"
    assert not (await store.metadata(path)).deleted


async def test_a_new_version_after_delete_is_live(store: LocalSecretStore) -> None:
    path = tenant("db-password")
    await store.put(path, "one", actor="t")
    await store.delete(path)
    meta = await store.put(path, "two", actor="t", cas=1)
    assert (meta.version, meta.deleted) == (2, False)
    assert (await store.read(path)).value == "two"
    with pytest.raises(SecretNotFound):
        await store.read(path, version=1)


async def test_destroy_removes_values_for_good(store: LocalSecretStore) -> None:
    path = tenant("signing-key")
    await store.put(path, "one", actor="t")
    await store.put(path, "two", actor="t")
    await store.put(path, "three", actor="t")
    await store.delete(path)
    await store.destroy(path, [1, 3, 42])

    for version in (1, 3):
        with pytest.raises(SecretNotFound, match="destroyed"):
            await store.read(path, version=version)
        entry = version_entry(load(store), path, version)
        assert entry["ciphertext"] is None
        assert entry["nonce"] is None
    await store.undelete(path, [1, 3])  # destroyed is not deleted: nothing comes back
    with pytest.raises(SecretNotFound):
        await store.read(path, version=1)
    with pytest.raises(SecretNotFound):
        await store.read(path)
    meta = await store.metadata(path)
    assert (meta.version, meta.deleted, meta.destroyed) == (3, False, True)
    assert (await store.read(path, version=2)).value == "two"
    await store.destroy(path, [3])  # idempotent


async def test_purge_removes_everything(store: LocalSecretStore) -> None:
    path, other = tenant("a"), tenant("b")
    await store.put(path, "one", actor="t")
    await store.put(path, "two", actor="t")
    await store.put(other, "keep", actor="t")
    data_key = load(store)["owners"][path.prefix]["data_key"]

    await store.purge(path)
    for call in (store.read(path), store.read(path, 1), store.metadata(path)):
        with pytest.raises(SecretNotFound):
            await call
    assert [m.name for m in await store.list_secrets("tenants", TENANT_A)] == ["b"]
    assert load(store)["owners"][path.prefix]["data_key"] == data_key  # still in use
    assert (await store.put(path, "fresh", actor="t", cas=0)).version == 1

    await store.purge(path)
    await store.purge(other)
    assert load(store)["owners"] == {}  # the owner's data key goes with its last secret
    assert await store.list_secrets("tenants", TENANT_A) == []


@pytest.mark.parametrize(
    "operation",
    [
        lambda s, p: s.read(p),
        lambda s, p: s.metadata(p),
        lambda s, p: s.delete(p),
        lambda s, p: s.undelete(p, [1]),
        lambda s, p: s.destroy(p, [1]),
        lambda s, p: s.purge(p),
    ],
    ids=["read", "metadata", "delete", "undelete", "destroy", "purge"],
)
async def test_operations_on_a_missing_secret(
    store: LocalSecretStore, operation: Callable[[LocalSecretStore, SecretPath], Any]
) -> None:
    await store.put(tenant("present"), "v", actor="t")
    with pytest.raises(SecretNotFound):
        await operation(store, tenant("absent"))
    with pytest.raises(SecretNotFound):
        await operation(store, tenant("present", TENANT_B))


async def test_versions_must_be_named(store: LocalSecretStore) -> None:
    path = tenant("x")
    await store.put(path, "v", actor="t")
    for call in (store.undelete, store.destroy):
        with pytest.raises(ValueError, match="version"):
            await call(path, [])


async def test_list_secrets_per_owner(store: LocalSecretStore) -> None:
    await store.put(tenant("zeta"), "v", actor="t")
    await store.put(tenant("alpha"), "v", actor="t")
    await store.put(tenant("alpha"), "v2", actor="t")
    await store.put(tenant("beta"), "v", actor="t")
    await store.delete(tenant("beta"))
    await store.put(tenant("alpha", TENANT_B), "v", actor="t")
    await store.put(SecretPath("partners", TENANT_A, "webhook"), "v", actor="t")  # same uuid

    listed = await store.list_secrets("tenants", TENANT_A)
    assert [(m.name, m.version, m.deleted) for m in listed] == [
        ("alpha", 2, False),
        ("beta", 1, True),
        ("zeta", 1, False),
    ]
    assert [m.name for m in await store.list_secrets("tenants", TENANT_B)] == ["alpha"]
    assert [m.name for m in await store.list_secrets("partners", TENANT_A)] == ["webhook"]
    assert await store.list_secrets("partners", PARTNER) == []
    with pytest.raises(ValueError, match="owner"):
        await store.list_secrets("users", TENANT_A)  # type: ignore[arg-type]


async def test_owners_have_separate_data_keys(store: LocalSecretStore) -> None:
    await store.put(tenant("a"), "v", actor="t")
    await store.put(tenant("a", TENANT_B), "v", actor="t")
    await store.put(SecretPath("partners", PARTNER, "a"), "v", actor="t")
    wrapped = {o["data_key"]["wrapped"] for o in load(store)["owners"].values()}
    assert len(wrapped) == 3


# --- on disk ----------------------------------------------------------------------------


async def test_no_plaintext_on_disk(store: LocalSecretStore, home: Path, key: bytes) -> None:
    values = [canary() for _ in range(4)]
    path = tenant("planted")
    for value in values:
        await store.put(path, value, actor="user:alice")
    await store.put(SecretPath("partners", PARTNER, "planted"), values[0], actor="t")
    await store.delete(path)
    await store.undelete(path, [4])
    await store.destroy(path, [1])
    await store.rotate_master_key(generate_master_key(), "k2")
    await store.put(path, values[1], actor="t")

    found = files_under(home)
    assert store.path in found
    for file in found:
        data = file.read_bytes()
        for value in values:
            raw = value.encode()
            for form in (raw, base64.b64encode(raw), raw.hex().encode()):
                assert form not in data, f"{file.name} holds a secret value"
        for form in (key, base64.b64encode(key), key.hex().encode()):
            assert form not in data, f"{file.name} holds the master key"
    assert not [p for p in found if p.name.endswith(".tmp")]


async def test_file_modes(tmp_path: Path, key: bytes) -> None:
    home = tmp_path / "fresh" / "secrets"
    store = LocalSecretStore(home, key, "k1")
    previous = os.umask(0)  # the store must not depend on a careful umask
    try:
        await store.put(tenant("a"), "v", actor="t")
        await store.put(tenant("a"), "w", actor="t")
        await store.rotate_master_key(generate_master_key(), "k2")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    for file in files_under(home):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


async def test_nothing_is_written_until_the_first_put(store: LocalSecretStore) -> None:
    assert await store.list_secrets("tenants", TENANT_A) == []
    with pytest.raises(SecretNotFound):
        await store.metadata(tenant("a"))
    assert not store.path.exists()


async def test_malformed_file(store: LocalSecretStore) -> None:
    await store.put(tenant("a"), "v", actor="t")
    store.path.write_text("{ not json")
    with pytest.raises(SecretCorrupt, match="JSON"):
        await store.read(tenant("a"))
    store.path.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SecretStoreError, match="format"):
        await store.read(tenant("a"))


# --- tampering ------------------------------------------------------------------------


def _version(doc: dict[str, Any], path: SecretPath) -> dict[str, Any]:
    return version_entry(doc, path, 1)


def _data_key(doc: dict[str, Any], path: SecretPath) -> dict[str, Any]:
    entry: dict[str, Any] = doc["owners"][path.prefix]["data_key"]
    return entry


def _check(doc: dict[str, Any], path: SecretPath) -> dict[str, Any]:
    entry: dict[str, Any] = doc["check"]
    return entry


@pytest.mark.parametrize(
    ("locate", "field"),
    [
        (_version, "ciphertext"),
        (_version, "nonce"),
        (_data_key, "wrapped"),
        (_data_key, "nonce"),
        (_check, "tag"),
        (_check, "nonce"),
    ],
    ids=["ciphertext", "nonce", "wrapped-key", "wrapped-key-nonce", "check-tag", "check-nonce"],
)
@pytest.mark.parametrize("position", [0, 5, -1])
async def test_a_flipped_byte_is_detected(
    store: LocalSecretStore,
    locate: Callable[[dict[str, Any], SecretPath], dict[str, Any]],
    field: str,
    position: int,
) -> None:
    path, value = tenant("target"), canary()
    await store.put(path, value, actor="t")
    doc = load(store)
    entry = locate(doc, path)
    entry[field] = flip(entry[field], position)
    save(store, doc)

    with pytest.raises(SecretCorrupt) as caught:
        await store.read(path)
    assert_no_leak(caught.value, value)
    assert caught.value.__cause__ is None  # nothing chained that could carry more
    assert caught.value.__suppress_context__


async def test_truncated_ciphertext_is_detected(store: LocalSecretStore) -> None:
    path = tenant("target")
    await store.put(path, canary(), actor="t")
    doc = load(store)
    entry = version_entry(doc, path, 1)
    entry["ciphertext"] = base64.b64encode(base64.b64decode(entry["ciphertext"])[:-1]).decode()
    save(store, doc)
    with pytest.raises(SecretCorrupt):
        await store.read(path)


def _swap(a: dict[str, Any], b: dict[str, Any]) -> None:
    for field in ("nonce", "ciphertext"):
        a[field], b[field] = b[field], a[field]


async def test_ciphertexts_swapped_between_secrets(store: LocalSecretStore) -> None:
    a, b = tenant("a"), tenant("b")
    va, vb = canary(), canary()
    await store.put(a, va, actor="t")
    await store.put(b, vb, actor="t")
    doc = load(store)
    _swap(version_entry(doc, a, 1), version_entry(doc, b, 1))
    save(store, doc)
    for path in (a, b):
        with pytest.raises(SecretCorrupt) as caught:
            await store.read(path)
        assert_no_leak(caught.value, va, vb)


async def test_ciphertexts_swapped_between_versions(store: LocalSecretStore) -> None:
    path = tenant("a")
    v1, v2 = canary(), canary()
    await store.put(path, v1, actor="t")
    await store.put(path, v2, actor="t")
    doc = load(store)
    _swap(version_entry(doc, path, 1), version_entry(doc, path, 2))
    save(store, doc)
    for version in (1, 2):
        with pytest.raises(SecretCorrupt) as caught:
            await store.read(path, version=version)
        assert_no_leak(caught.value, v1, v2)


async def test_ciphertexts_swapped_between_owners(store: LocalSecretStore) -> None:
    a, b = tenant("same-name", TENANT_A), tenant("same-name", TENANT_B)
    await store.put(a, canary(), actor="t")
    await store.put(b, canary(), actor="t")
    doc = load(store)
    _swap(version_entry(doc, a, 1), version_entry(doc, b, 1))
    save(store, doc)
    for path in (a, b):
        with pytest.raises(SecretCorrupt):
            await store.read(path)


async def test_data_keys_swapped_between_owners(store: LocalSecretStore) -> None:
    a, b = tenant("x", TENANT_A), tenant("x", TENANT_B)
    await store.put(a, canary(), actor="t")
    await store.put(b, canary(), actor="t")
    doc = load(store)
    owners = doc["owners"]
    owners[a.prefix]["data_key"], owners[b.prefix]["data_key"] = (
        owners[b.prefix]["data_key"],
        owners[a.prefix]["data_key"],
    )
    save(store, doc)
    for path in (a, b):
        with pytest.raises(SecretCorrupt, match="data key"):
            await store.read(path)


async def test_relabelled_key_ids_are_detected(
    store: LocalSecretStore, home: Path, key: bytes
) -> None:
    path = tenant("x")
    await store.put(path, canary(), actor="t")
    doc = load(store)
    doc["owners"][path.prefix]["data_key"]["key_id"] = "k9"
    save(store, doc)
    with pytest.raises(MasterKeyMismatch):
        await store.read(path)
    # Relabel the whole file too: the ids then agree, but the key-id is bound into the tags.
    doc["check"]["key_id"] = "k9"
    save(store, doc)
    with pytest.raises(SecretCorrupt):
        await LocalSecretStore(home, key, "k9").read(path)


# --- master keys ----------------------------------------------------------------------


async def test_wrong_master_key(store: LocalSecretStore, home: Path) -> None:
    path, value = tenant("x"), canary()
    await store.put(path, value, actor="t")
    before = store.path.read_bytes()
    wrong_key = generate_master_key()

    for wrong in (LocalSecretStore(home, wrong_key, "k1"), LocalSecretStore(home, wrong_key, "k2")):
        for call in (
            wrong.read(path),
            wrong.metadata(path),
            wrong.list_secrets("tenants", TENANT_A),
            wrong.put(path, "overwrite", actor="t"),
            wrong.put(tenant("other", TENANT_B), "new owner", actor="t"),
            wrong.rotate_master_key(generate_master_key(), "k3"),
        ):
            with pytest.raises(MasterKeyMismatch) as caught:
                await call
            assert isinstance(caught.value, SecretCorrupt)
            assert_no_leak(caught.value, value, base64.b64encode(wrong_key).decode())
    assert store.path.read_bytes() == before  # a wrong key never writes
    assert (await store.read(path)).value == value


async def test_master_key_rotation(store: LocalSecretStore, home: Path, key: bytes) -> None:
    paths = {
        tenant("smtp"): ["s1", "s2", "s3"],
        tenant("api", TENANT_B): ["a1"],
        SecretPath("partners", PARTNER, "webhook"): ["w1", "w2"],
    }
    for path, values in paths.items():
        for value in values:
            await store.put(path, value, actor="t")
    await store.delete(tenant("smtp"))
    before = load(store)

    new_key = generate_master_key()
    assert await store.rotate_master_key(new_key, "k2") == 3
    assert store.key_id == "k2"

    after = load(store)
    assert after["check"]["key_id"] == "k2"
    for prefix, owner in after["owners"].items():
        assert owner["data_key"]["key_id"] == "k2"
        assert owner["data_key"]["wrapped"] != before["owners"][prefix]["data_key"]["wrapped"]
        # the values themselves are not re-encrypted
        assert owner["secrets"] == before["owners"][prefix]["secrets"]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

    async def readable(s: LocalSecretStore) -> None:
        for path, values in paths.items():
            for version, value in enumerate(values, start=1):
                if path == tenant("smtp") and version == 3:
                    continue  # soft-deleted
                assert (await s.read(path, version=version)).value == value

    await readable(store)
    await readable(LocalSecretStore(home, new_key, "k2"))  # a restart with only the new key

    for old in (LocalSecretStore(home, key, "k1"), LocalSecretStore(home, key, "k2")):
        with pytest.raises(MasterKeyMismatch):
            await old.read(tenant("smtp"), version=1)
        with pytest.raises(MasterKeyMismatch):
            await old.put(tenant("smtp"), "late write", actor="t")

    await store.undelete(tenant("smtp"), [3])
    assert (await store.read(tenant("smtp"))).value == "s3"
    await store.put(tenant("new", PARTNER), "n1", actor="t")
    assert load(store)["owners"][f"tenants/{PARTNER}"]["data_key"]["key_id"] == "k2"

    assert await store.rotate_master_key(generate_master_key(), "k3") == 4
    await readable(store)


async def test_rotation_is_atomic(
    store: LocalSecretStore, home: Path, key: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tenant("x")
    await store.put(path, "v", actor="t")
    before = store.path.read_bytes()

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(SecretStoreError, match="cannot write"):
        await store.rotate_master_key(generate_master_key(), "k2")
    monkeypatch.undo()

    assert store.path.read_bytes() == before
    assert store.key_id == "k1"
    assert (await store.read(path)).value == "v"
    assert (await LocalSecretStore(home, key, "k1").read(path)).value == "v"
    assert not [p for p in files_under(home) if p.name.endswith(".tmp")]


async def test_rotation_of_a_tampered_store_changes_nothing(store: LocalSecretStore) -> None:
    await store.put(tenant("a"), "v", actor="t")
    await store.put(tenant("b", TENANT_B), "v", actor="t")
    doc = load(store)
    entry = doc["owners"][f"tenants/{TENANT_B}"]["data_key"]
    entry["wrapped"] = flip(entry["wrapped"], 3)
    save(store, doc)
    before = store.path.read_bytes()
    with pytest.raises(SecretCorrupt):
        await store.rotate_master_key(generate_master_key(), "k2")
    assert store.path.read_bytes() == before
    assert store.key_id == "k1"


async def test_rotation_arguments(store: LocalSecretStore) -> None:
    with pytest.raises(ValueError, match="key id of its own"):
        await store.rotate_master_key(generate_master_key(), "k1")
    with pytest.raises(ValueError, match="32 bytes"):
        await store.rotate_master_key(b"short", "k2")
    with pytest.raises(ValueError, match="key id"):
        await store.rotate_master_key(generate_master_key(), "")


async def test_key_from_file_and_from_env(tmp_path: Path, home: Path) -> None:
    key = generate_master_key()
    raw_file = tmp_path / "master.key"
    raw_file.write_bytes(key)
    raw_file.chmod(0o600)
    b64_file = tmp_path / "master.b64"
    b64_file.write_text(base64.b64encode(key).decode() + "\n")
    b64_file.chmod(0o600)

    from_raw = LocalSecretStore.from_file(raw_file, directory=home)
    from_b64 = LocalSecretStore.from_file(b64_file, directory=home)
    from_env = LocalSecretStore.from_env_value(base64.b64encode(key).decode(), directory=home)
    from_url = LocalSecretStore.from_env_value(
        base64.urlsafe_b64encode(key).decode(), directory=home
    )
    assert from_raw.key_id == from_b64.key_id == from_env.key_id == from_url.key_id
    assert from_raw.key_id == derive_key_id(key) != derive_key_id(generate_master_key())

    await from_raw.put(tenant("x"), "v", actor="t")
    for other in (from_b64, from_env, from_url):
        assert (await other.read(tenant("x"))).value == "v"
    named = LocalSecretStore.from_env_value(
        base64.b64encode(key).decode(), directory=home, key_id="prod-2025"
    )
    assert named.key_id == "prod-2025"


def test_bad_master_keys_are_not_echoed(tmp_path: Path, home: Path) -> None:
    short = secrets.token_bytes(16)
    short_b64 = base64.b64encode(short).decode()
    with pytest.raises(ValueError, match="16 bytes") as caught:
        LocalSecretStore.from_env_value(short_b64, directory=home)
    assert_no_leak(caught.value, short_b64)

    garbage = "not base64 at all!" + secrets.token_hex(8)
    with pytest.raises(ValueError, match="base64") as caught:
        LocalSecretStore.from_env_value(garbage, directory=home)
    assert_no_leak(caught.value, garbage)

    key_file = tmp_path / "bad.key"
    key_file.write_text(short_b64)
    with pytest.raises(ValueError, match="master key file") as caught:
        LocalSecretStore.from_file(key_file, directory=home)
    assert_no_leak(caught.value, short_b64)

    with pytest.raises(ValueError, match="32 bytes"):
        LocalSecretStore(home, short, "k1")
    with pytest.raises(ValueError, match="key id"):
        LocalSecretStore(home, generate_master_key(), "has spaces")


def test_a_loose_key_file_is_warned_about(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_bytes(generate_master_key())
    key_file.chmod(0o644)
    with captured_logs(caplog, logging.WARNING):
        LocalSecretStore.from_file(key_file, directory=home)
    assert "readable by group or others" in caplog.text


# --- no leaks ---------------------------------------------------------------------------


async def test_values_and_keys_stay_out_of_repr_and_logs(
    store: LocalSecretStore, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    value = canary()
    path = tenant("x")
    with captured_logs(caplog, logging.DEBUG):
        await store.put(path, value, actor="t")
        secret = await store.read(path)
        await store.put(path, value + "2", actor="t", cas=1)
        with pytest.raises(CasMismatch) as caught:
            await store.put(path, value + "3", actor="t", cas=1)
        await store.rotate_master_key(generate_master_key(), "k2")
        await store.destroy(path, [1])
    assert secret.value == value
    assert value not in repr(secret)
    assert_no_leak(caught.value, value)
    for text in (repr(store), caplog.text):
        assert value not in text
        assert base64.b64encode(key).decode() not in text
        assert key.hex() not in text
    assert "k1" in caplog.text  # the rotation is logged, by key id


# --- concurrency ------------------------------------------------------------------------


async def test_concurrent_puts_get_distinct_sequential_versions(store: LocalSecretStore) -> None:
    path = tenant("counter")
    values = [f"value-{i}" for i in range(25)]
    metas = await asyncio.gather(*(store.put(path, v, actor=f"w{i}") for i, v in enumerate(values)))
    assert sorted(m.version for m in metas) == list(range(1, 26))
    for meta, value in zip(metas, values, strict=True):
        assert (await store.read(path, version=meta.version)).value == value
    assert (await store.metadata(path)).version == 25


async def test_concurrent_puts_across_store_objects(home: Path, key: bytes) -> None:
    """Two objects on one directory (as a CLI and a server would be) serialise on the file lock."""
    first, second = LocalSecretStore(home, key, "k1"), LocalSecretStore(home, key, "k1")
    path = tenant("shared")
    metas = await asyncio.gather(
        *(s.put(path, f"v{i}", actor="t") for i in range(10) for s in (first, second))
    )
    assert sorted(m.version for m in metas) == list(range(1, 21))
    assert (await first.metadata(path)).version == 20


async def test_concurrent_creates_with_cas_zero(store: LocalSecretStore) -> None:
    path = tenant("once")
    results = await asyncio.gather(
        *(store.put(path, f"v{i}", actor="t", cas=0) for i in range(8)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert sum(isinstance(r, CasMismatch) for r in results) == 7
    assert (await store.metadata(path)).version == 1


async def test_cancelled_put_leaves_a_consistent_store(store: LocalSecretStore) -> None:
    path = tenant("x")
    task = asyncio.create_task(store.put(path, "v1", actor="t"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    meta = await store.put(path, "v-next", actor="t")
    assert meta.version in (1, 2)
    assert (await store.read(path)).value == "v-next"
