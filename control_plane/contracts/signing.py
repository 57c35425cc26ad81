"""Standard Webhooks (https://www.standardwebhooks.com, spec 1.0.0): signing and
verification, pure (no I/O), shared by the control plane's alert notifications and the
tenant runtime's inbound and outbound webhooks.

A webhook carries three headers:

* ``webhook-id`` — the message id; the same on every delivery attempt of one event, so it
  doubles as the idempotency key;
* ``webhook-timestamp`` — integer Unix seconds of the attempt;
* ``webhook-signature`` — space-separated ``<version>,<base64 signature>`` entries.

The symmetric scheme (``v1``) is HMAC-SHA256, keyed with the secret's bytes, over
``{webhook-id}.{webhook-timestamp}.{body}``. Secrets are serialized as ``whsec_<base64>``.
Several entries in one header allow zero-downtime secret rotation: the sender signs with
every active secret, the receiver accepts a message when any entry matches any secret it
holds. Entries of other versions (``v1a``, asymmetric) are skipped, not refused.

No error message, ``repr`` or ``str`` produced here contains a secret or key bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets as _random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "DEFAULT_TOLERANCE",
    "ID_HEADER",
    "SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "BadSignature",
    "InvalidSecret",
    "MalformedHeader",
    "MissingHeader",
    "SecretLike",
    "StaleTimestamp",
    "VerifiedWebhook",
    "WebhookError",
    "WebhookSecret",
    "WebhookVerificationError",
    "check",
    "generate_secret",
    "sign",
    "signature_header",
    "webhook_headers",
]

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
VERSION = "v1"
#: Seconds a timestamp may be away from the receiver's clock, either direction (spec: 5 min).
DEFAULT_TOLERANCE = 300.0
#: Header values longer than this are refused before any parsing or HMAC work.
MAX_HEADER_LENGTH = 8192
_DIGEST_SIZE = hashlib.sha256().digest_size


# --- errors ----------------------------------------------------------------------------


class WebhookError(Exception):
    """Base of every webhook error here; messages never include secrets."""


class InvalidSecret(WebhookError, ValueError):
    """A configured secret is not ``whsec_<base64>`` (or empty)."""


class WebhookVerificationError(WebhookError):
    """The request is refused: answer 4xx and do not process it."""


class MissingHeader(WebhookVerificationError):
    def __init__(self, header: str) -> None:
        super().__init__(f"missing {header} header")
        self.header = header


class MalformedHeader(WebhookVerificationError):
    def __init__(self, header: str, reason: str) -> None:
        super().__init__(f"malformed {header} header: {reason}")
        self.header = header


class StaleTimestamp(WebhookVerificationError):
    """``webhook-timestamp`` is further than the tolerance from now (past or future)."""

    def __init__(self, skew: float, tolerance: float) -> None:
        direction = "old" if skew < 0 else "far in the future"
        super().__init__(
            f"webhook timestamp is {abs(skew):.0f} s {direction}; the tolerance is {tolerance:.0f} s"
        )
        self.skew = skew
        self.tolerance = tolerance


class BadSignature(WebhookVerificationError):
    def __init__(self, reason: str = "no signature matched a configured secret") -> None:
        super().__init__(reason)


# --- secrets ---------------------------------------------------------------------------


class WebhookSecret:
    """The HMAC key of one ``whsec_<base64>`` secret. Its repr shows no key material."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise InvalidSecret("webhook secret is empty")
        self._key = bytes(key)

    @classmethod
    def parse(cls, value: str | bytes | WebhookSecret) -> WebhookSecret:
        """``whsec_<base64>`` (the serialized form), bare base64 (as the reference
        libraries accept), raw key bytes, or an already parsed secret."""
        if isinstance(value, WebhookSecret):
            return value
        if isinstance(value, bytes):
            return cls(value)
        encoded = value.removeprefix(SECRET_PREFIX).strip()
        # Standard base64, padded or not (padding in excess is ignored by the decoder).
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidSecret("webhook secret is not whsec_<base64>") from None
        return cls(key)

    def serialize(self) -> str:
        return SECRET_PREFIX + base64.b64encode(self._key).decode("ascii")

    def digest(self, content: bytes) -> bytes:
        return hmac.new(self._key, content, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "WebhookSecret(<redacted>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WebhookSecret) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._key).digest())


SecretLike = str | bytes | WebhookSecret


def generate_secret(nbytes: int = 32) -> str:
    """A fresh ``whsec_`` secret; the spec asks for 24 to 64 random bytes."""
    if not 24 <= nbytes <= 64:
        raise ValueError("a webhook secret has 24 to 64 bytes")
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(nbytes)).decode("ascii")


# --- signing ---------------------------------------------------------------------------


def _timestamp(value: int | datetime) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("timestamp datetime must be timezone-aware")
        return math.floor(value.timestamp())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("timestamp must be non-negative integer Unix seconds")
    return value


def _check_id(msg_id: str) -> str:
    if not msg_id or len(msg_id) > 256 or "." in msg_id or not msg_id.isprintable():
        raise ValueError("webhook id must be 1-256 printable characters without '.'")
    if any(c.isspace() for c in msg_id):
        raise ValueError("webhook id must not contain whitespace")
    return msg_id


def _body(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign(secret: SecretLike, msg_id: str, timestamp: int | datetime, body: bytes | str) -> str:
    """``v1,<base64 HMAC-SHA256 of "{msg_id}.{timestamp}.{body}">``.

    ``body`` must be the exact bytes sent (a ``str`` is encoded as UTF-8).
    """
    key = WebhookSecret.parse(secret)
    content = _content(_check_id(msg_id), _timestamp(timestamp), _body(body))
    return f"{VERSION},{base64.b64encode(key.digest(content)).decode('ascii')}"


def signature_header(
    secrets: Iterable[SecretLike], msg_id: str, timestamp: int | datetime, body: bytes | str
) -> str:
    """The ``webhook-signature`` value: one signature per active secret, space-separated."""
    signatures = [sign(secret, msg_id, timestamp, body) for secret in secrets]
    if not signatures:
        raise ValueError("at least one secret is needed to sign a webhook")
    return " ".join(signatures)


def webhook_headers(
    secrets: Iterable[SecretLike], msg_id: str, timestamp: int | datetime, body: bytes | str
) -> dict[str, str]:
    """All three Standard Webhooks headers for one delivery attempt."""
    ts = _timestamp(timestamp)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: signature_header(secrets, msg_id, ts, body),
    }


# --- verification ----------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedWebhook:
    msg_id: str
    timestamp: int
    body: bytes


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        # Plain dicts are case-sensitive; HTTP header names are not.
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    if value is None or not value.strip():
        raise MissingHeader(name)
    if len(value) > MAX_HEADER_LENGTH:
        raise MalformedHeader(name, "too long")
    return value.strip()


def _parse_signatures(value: str) -> list[bytes]:
    """The ``v1`` signatures of a header; other versions skipped, broken entries refused."""
    found: list[bytes] = []
    for entry in value.split():
        version, comma, encoded = entry.partition(",")
        if not comma or not version or not encoded:
            raise MalformedHeader(SIGNATURE_HEADER, "entries are <version>,<base64>")
        if version != VERSION:
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedHeader(SIGNATURE_HEADER, "a v1 signature is not base64") from None
        found.append(raw)
    return found


def check(
    secrets: Iterable[WebhookSecret],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float,
    tolerance: float = DEFAULT_TOLERANCE,
) -> VerifiedWebhook:
    """Authenticity only: headers present, timestamp fresh, a signature valid.

    Raises :class:`MissingHeader`, :class:`MalformedHeader`, :class:`StaleTimestamp`
    or :class:`BadSignature`. ``now`` is wall time (Unix seconds).
    """
    msg_id = _header(headers, ID_HEADER)
    raw_timestamp = _header(headers, TIMESTAMP_HEADER)
    raw_signatures = _header(headers, SIGNATURE_HEADER)
    try:
        _check_id(msg_id)
    except ValueError as exc:
        raise MalformedHeader(ID_HEADER, str(exc)) from None
    if not (raw_timestamp.isascii() and raw_timestamp.isdigit()) or len(raw_timestamp) > 15:
        raise MalformedHeader(TIMESTAMP_HEADER, "not integer Unix seconds")
    timestamp = int(raw_timestamp)
    skew = timestamp - now
    if abs(skew) > tolerance:
        raise StaleTimestamp(skew, tolerance)
    signatures = _parse_signatures(raw_signatures)
    if not signatures:
        raise BadSignature("no v1 signature in the webhook-signature header")
    payload = _body(body)
    content = _content(msg_id, timestamp, payload)
    matched = False
    for secret in secrets:
        expected = secret.digest(content)
        for candidate in signatures:
            # No early exit: every pair is compared, each in constant time.
            matched |= len(candidate) == _DIGEST_SIZE and hmac.compare_digest(expected, candidate)
    if not matched:
        raise BadSignature()
    return VerifiedWebhook(msg_id=msg_id, timestamp=timestamp, body=payload)
