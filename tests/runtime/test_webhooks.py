"""Standard Webhooks: signing, verification, rotation, replay, and interoperability with the
reference ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import httpx
import pytest
import standardwebhooks

from tenant_runtime.secrets import SecretCache
from tenant_runtime.webhooks import (
    BadSignature,
    DuplicateWebhook,
    InvalidSecret,
    MalformedHeader,
    MemorySeenIds,
    MissingHeader,
    StaleTimestamp,
    Verifier,
    WebhookError,
    WebhookSecret,
    WebhookVerificationError,
    generate_secret,
    sign,
    signature_header,
    webhook_headers,
)

KEY = b"storeops-test-key-0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"storeops-previous-key-9876543210fe").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"someone-else-entirely-0000000000").decode()
NOW = 1_700_000_000
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
BODY = b'{"type":"stock.low","timestamp":"2023-11-14T22:13:20Z","data":{"sku":"A-1","qty":2}}'


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def headers_for(
    secrets: list[str], *, msg_id: str = MSG_ID, ts: int = NOW, body: bytes = BODY
) -> dict[str, str]:
    return webhook_headers(secrets, msg_id, ts, body)


def verifier(*secrets: str, now: float = NOW, tolerance: float = 300) -> Verifier:
    return Verifier(list(secrets) or [SECRET], tolerance=tolerance, clock=Clock(now))


# --- signing ----------------------------------------------------------------------------


def test_sign_is_hmac_sha256_of_id_timestamp_body() -> None:
    expected = hmac.new(KEY, f"{MSG_ID}.{NOW}.".encode() + BODY, hashlib.sha256).digest()
    assert sign(SECRET, MSG_ID, NOW, BODY) == "v1," + base64.b64encode(expected).decode()
    # str body is its UTF-8 bytes; a datetime is floored to Unix seconds; raw key bytes work
    as_dt = datetime.fromtimestamp(NOW + 0.9, tz=UTC)
    assert sign(KEY, MSG_ID, as_dt, BODY.decode()) == sign(SECRET, MSG_ID, NOW, BODY)


def test_sign_matches_the_reference_library_for_the_same_inputs() -> None:
    reference = standardwebhooks.Webhook(SECRET)
    when = datetime.fromtimestamp(NOW, tz=UTC)
    assert sign(SECRET, MSG_ID, NOW, BODY) == reference.sign(MSG_ID, when, BODY.decode())


def test_signature_header_has_one_signature_per_secret() -> None:
    header = signature_header([SECRET, OLD_SECRET], MSG_ID, NOW, BODY)
    assert header.split(" ") == [
        sign(SECRET, MSG_ID, NOW, BODY),
        sign(OLD_SECRET, MSG_ID, NOW, BODY),
    ]
    with pytest.raises(ValueError, match="at least one secret"):
        signature_header([], MSG_ID, NOW, BODY)


def test_webhook_headers() -> None:
    headers = webhook_headers([SECRET], MSG_ID, NOW, BODY)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": sign(SECRET, MSG_ID, NOW, BODY),
    }


@pytest.mark.parametrize("msg_id", ["", "a.b", "has space", "line\nbreak"])
def test_sign_refuses_ids_that_could_shift_the_signed_content(msg_id: str) -> None:
    with pytest.raises(ValueError, match="webhook id"):
        sign(SECRET, msg_id, NOW, BODY)


def test_sign_refuses_naive_datetimes_and_negative_timestamps() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(SECRET, MSG_ID, datetime(2024, 1, 1), BODY)
    with pytest.raises(ValueError, match="non-negative"):
        sign(SECRET, MSG_ID, -1, BODY)


def test_secrets_parse_and_never_show() -> None:
    parsed = WebhookSecret.parse(SECRET)
    assert parsed.serialize() == SECRET
    assert WebhookSecret.parse(SECRET.removeprefix("whsec_")) == parsed  # bare base64
    assert WebhookSecret.parse(SECRET.rstrip("=")) == parsed  # unpadded
    assert "storeops" not in repr(parsed) and SECRET not in repr(parsed)
    bad_secrets: list[str | bytes] = ["whsec_", "whsec_not base64!", "", b""]
    for bad in bad_secrets:
        with pytest.raises(InvalidSecret) as info:
            WebhookSecret.parse(bad)
        assert "not base64!" not in str(info.value)
    fresh = generate_secret()
    assert fresh.startswith("whsec_") and len(base64.b64decode(fresh[6:])) == 32
    with pytest.raises(ValueError, match="24 to 64"):
        generate_secret(8)


# --- verification -----------------------------------------------------------------------


async def test_round_trip() -> None:
    verified = await verifier().verify(headers_for([SECRET]), BODY)
    assert (verified.msg_id, verified.timestamp, verified.body) == (MSG_ID, NOW, BODY)


async def test_headers_are_case_insensitive_and_str_bodies_work() -> None:
    headers = {k.title(): v for k, v in headers_for([SECRET]).items()}
    verified = await verifier().verify(headers, BODY.decode())
    assert verified.body == BODY
    assert verifier().check(httpx.Headers(headers), BODY).msg_id == MSG_ID


async def test_rotation_either_secret_is_accepted() -> None:
    both = verifier(SECRET, OLD_SECRET)
    # The sender still signs with the old secret only, with the new only, or with both.
    for i, sender in enumerate([[OLD_SECRET], [SECRET], [SECRET, OLD_SECRET]]):
        await both.verify(headers_for(sender, msg_id=f"msg_{i}"), BODY)
    # A receiver that already dropped the old secret accepts the dual-signed message.
    await verifier(SECRET).verify(headers_for([OLD_SECRET, SECRET]), BODY)
    # ...but not one signed with the old secret alone.
    with pytest.raises(BadSignature):
        verifier(SECRET).check(headers_for([OLD_SECRET]), BODY)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b + b" "), id="body"),
        pytest.param(lambda h, b: ({**h, "webhook-id": "msg_other"}, b), id="id"),
        pytest.param(lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b), id="timestamp"),
        pytest.param(
            lambda h, b: ({**h, "webhook-signature": sign(OTHER_SECRET, MSG_ID, NOW, b)}, b),
            id="wrong-secret",
        ),
        pytest.param(
            lambda h, b: (
                {**h, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()},
                b,
            ),
            id="garbage",
        ),
        pytest.param(
            lambda h, b: ({**h, "webhook-signature": "v1," + h["webhook-signature"][3:23]}, b),
            id="truncated",
        ),
    ],
)
def test_bad_signature_is_refused(tamper: object) -> None:
    headers, body = tamper(headers_for([SECRET]), BODY)  # type: ignore[operator]
    with pytest.raises(BadSignature) as info:
        verifier().check(headers, body)
    assert isinstance(info.value, WebhookVerificationError)


def test_unknown_signature_versions_are_skipped_not_refused() -> None:
    signed = headers_for([SECRET])
    asym = "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg=="
    mixed = {**signed, "webhook-signature": f"{asym} {signed['webhook-signature']}"}
    assert verifier().check(mixed, BODY).msg_id == MSG_ID
    with pytest.raises(BadSignature, match="no v1 signature"):
        verifier().check({**signed, "webhook-signature": asym}, BODY)


@pytest.mark.parametrize("skew", [-301, 301, -86_400, 86_400])
def test_stale_timestamp_is_refused_in_both_directions(skew: int) -> None:
    # Correctly signed, but sent too long ago (skew < 0) or dated too far ahead.
    headers = headers_for([SECRET], ts=NOW + skew)
    with pytest.raises(StaleTimestamp) as info:
        verifier().check(headers, BODY)
    assert ("old" in str(info.value)) == (skew < 0)
    assert info.value.skew == skew


@pytest.mark.parametrize("skew", [-300, 0, 300])
def test_timestamps_within_tolerance_are_accepted(skew: int) -> None:
    assert verifier().check(headers_for([SECRET], ts=NOW + skew), BODY).timestamp == NOW + skew


def test_tolerance_is_configurable() -> None:
    with pytest.raises(StaleTimestamp):
        verifier(tolerance=30).check(headers_for([SECRET], ts=NOW - 31), BODY)
    verifier(tolerance=30).check(headers_for([SECRET], ts=NOW - 30), BODY)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(missing: str) -> None:
    headers = headers_for([SECRET])
    without = {k: v for k, v in headers.items() if k != missing}
    with pytest.raises(MissingHeader) as info:
        verifier().check(without, BODY)
    assert info.value.header == missing and missing in str(info.value)
    with pytest.raises(MissingHeader):
        verifier().check({**headers, missing: "  "}, BODY)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("webhook-signature", "v1"),
        ("webhook-signature", "K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
        ("webhook-signature", "v1,"),
        ("webhook-signature", ",abc"),
        ("webhook-signature", "v1,not-base64!!"),
        ("webhook-signature", "v1=K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="),
        ("webhook-signature", "v1," + "A" * 9000),
        ("webhook-timestamp", "1700000000.5"),
        ("webhook-timestamp", "-1700000000"),
        ("webhook-timestamp", "2023-11-14T22:13:20Z"),
        ("webhook-timestamp", "\u0661\u0667" + "\u0660" * 8),  # Arabic-Indic digits
        ("webhook-id", "msg.1"),
    ],
)
def test_malformed_headers_are_refused(header: str, value: str) -> None:
    headers = {**headers_for([SECRET]), header: value}
    with pytest.raises(MalformedHeader) as info:
        verifier().check(headers, BODY)
    assert header in str(info.value)


def test_a_valid_signature_alongside_a_malformed_entry_is_still_refused() -> None:
    signed = headers_for([SECRET])
    headers = {**signed, "webhook-signature": f"garbage {signed['webhook-signature']}"}
    with pytest.raises(MalformedHeader):
        verifier().check(headers, BODY)


def test_errors_never_include_secrets() -> None:
    v = verifier(SECRET, OLD_SECRET)
    signed = headers_for([SECRET])
    cases = [
        {k: v for k, v in signed.items() if k != "webhook-id"},
        {**signed, "webhook-timestamp": str(NOW - 999)},
        {**signed, "webhook-signature": "v1,zzz"},
        {**signed, "webhook-signature": sign(OTHER_SECRET, MSG_ID, NOW, BODY)},
    ]
    needles = [SECRET, OLD_SECRET, SECRET[6:], OLD_SECRET[6:], KEY.decode()]
    for headers in cases:
        with pytest.raises(WebhookVerificationError) as info:
            v.check(headers, BODY)
        text = f"{info.value} {info.value!r} {v!r}"
        assert not any(needle in text for needle in needles), text


def test_verifier_needs_a_secret_and_a_positive_tolerance() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        Verifier([])
    with pytest.raises(ValueError, match="tolerance"):
        Verifier([SECRET], tolerance=0)


async def test_verifier_from_secret_bindings_picks_up_rotation() -> None:
    class Provider:
        values = {"pos-webhook": SECRET}

        async def get(self, name: str) -> str:
            return self.values[name]

    provider = Provider()
    cache_clock = Clock(0.0)
    cache = SecretCache(provider, ttl=60, clock=cache_clock)
    seen = MemorySeenIds()

    async def receive(msg_id: str, signer: str) -> None:
        v = await Verifier.from_bindings(
            ["secret://pos-webhook"], cache, clock=Clock(NOW), seen=seen
        )
        await v.verify(headers_for([signer], msg_id=msg_id), BODY)

    await receive("msg_1", SECRET)
    provider.values["pos-webhook"] = OLD_SECRET  # rotated
    await receive("msg_2", SECRET)  # the cache still holds the previous value
    cache_clock.now = 61.0
    with pytest.raises(BadSignature):
        await receive("msg_3", SECRET)
    await receive("msg_4", OLD_SECRET)
    with pytest.raises(DuplicateWebhook):
        await receive("msg_4", OLD_SECRET)


# --- replay guard -----------------------------------------------------------------------


async def test_replayed_id_is_ignored() -> None:
    v = verifier()
    headers = headers_for([SECRET])
    await v.verify(headers, BODY)
    with pytest.raises(DuplicateWebhook) as info:
        await v.verify(headers, BODY)
    assert info.value.msg_id == MSG_ID
    # Not a verification failure: the receiver acknowledges it and processes nothing.
    assert isinstance(info.value, WebhookError)
    assert not isinstance(info.value, WebhookVerificationError)
    # A redelivery (same id, new attempt timestamp, new signature) is a duplicate too.
    with pytest.raises(DuplicateWebhook):
        await v.verify(headers_for([SECRET], ts=NOW + 60), BODY)
    # Other ids still pass.
    await v.verify(headers_for([SECRET], msg_id="msg_next"), BODY)


async def test_forged_requests_do_not_burn_an_id() -> None:
    v = verifier()
    forged = {**headers_for([OTHER_SECRET]), "webhook-id": MSG_ID}
    with pytest.raises(BadSignature):
        await v.verify(forged, BODY)
    assert (await v.verify(headers_for([SECRET]), BODY)).msg_id == MSG_ID


async def test_check_does_not_consult_the_replay_guard() -> None:
    v = verifier()
    headers = headers_for([SECRET])
    v.check(headers, BODY)
    v.check(headers, BODY)
    await v.verify(headers, BODY)


async def test_ids_are_remembered_for_twice_the_tolerance_then_forgotten() -> None:
    clock = Clock(0.0)
    seen = MemorySeenIds(clock=clock)
    wall = Clock(NOW)
    v = Verifier([SECRET], tolerance=300, clock=wall, seen=seen)
    await v.verify(headers_for([SECRET]), BODY)
    clock.now = 599.0
    with pytest.raises(DuplicateWebhook):
        await v.verify(headers_for([SECRET]), BODY)
    # Past 2 x tolerance the id is forgotten; by then the timestamp is stale anyway.
    clock.now = 600.5
    assert len(seen) == 0
    wall.now = NOW + 600.5
    with pytest.raises(StaleTimestamp):
        await v.verify(headers_for([SECRET]), BODY)


async def test_a_shared_store_keeps_sources_apart_by_namespace() -> None:
    seen = MemorySeenIds()
    pos = Verifier([SECRET], clock=Clock(NOW), seen=seen, namespace="tenant-a:pos")
    erp = Verifier([SECRET], clock=Clock(NOW), seen=seen, namespace="tenant-a:erp")
    await pos.verify(headers_for([SECRET]), BODY)
    await erp.verify(headers_for([SECRET]), BODY)
    with pytest.raises(DuplicateWebhook):
        await pos.verify(headers_for([SECRET]), BODY)


async def test_memory_seen_ids_ttl_and_bound() -> None:
    clock = Clock(0.0)
    seen = MemorySeenIds(max_entries=2, clock=clock)
    assert await seen.remember("a", 10)
    assert not await seen.remember("a", 10)
    clock.now = 10.0
    assert await seen.remember("a", 10)  # expired, so new again
    assert await seen.remember("b", 10)
    assert await seen.remember("c", 10)  # evicts the oldest ("a")
    assert len(seen) == 2
    assert await seen.remember("a", 10)
    with pytest.raises(ValueError, match="positive"):
        MemorySeenIds(max_entries=0)


# --- interoperability with the reference package ----------------------------------------


async def test_reference_library_accepts_storeops_signatures() -> None:
    now = int(time.time())
    headers = webhook_headers([SECRET], MSG_ID, now, BODY)
    assert standardwebhooks.Webhook(SECRET).verify(BODY, headers) == {
        "type": "stock.low",
        "timestamp": "2023-11-14T22:13:20Z",
        "data": {"sku": "A-1", "qty": 2},
    }
    # With rotation: the package, holding either secret, finds its signature in the list.
    rotated = webhook_headers([SECRET, OLD_SECRET], MSG_ID, now, BODY)
    standardwebhooks.Webhook(SECRET).verify(BODY, rotated)
    standardwebhooks.Webhook(OLD_SECRET).verify(BODY, rotated)
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(OTHER_SECRET).verify(BODY, rotated)


async def test_storeops_accepts_reference_library_signatures() -> None:
    now = datetime.now(tz=UTC)
    signature = standardwebhooks.Webhook(SECRET).sign(MSG_ID, now, BODY.decode())
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    verified = await Verifier([SECRET]).verify(headers, BODY)  # the real clock
    assert verified.msg_id == MSG_ID
    # Rotation the other way round: the package signs with the old secret, StoreOps holds
    # both; and a secret StoreOps does not hold is refused.
    old = standardwebhooks.Webhook(OLD_SECRET).sign("msg_old", now, BODY.decode())
    await Verifier([SECRET, OLD_SECRET]).verify(
        {**headers, "webhook-id": "msg_old", "webhook-signature": old}, BODY
    )
    other = standardwebhooks.Webhook(OTHER_SECRET).sign(MSG_ID, now, BODY.decode())
    with pytest.raises(BadSignature):
        Verifier([SECRET]).check({**headers, "webhook-signature": other}, BODY)
