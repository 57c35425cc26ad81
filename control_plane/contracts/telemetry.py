"""What a tenant runtime reports home: events in gzip'd msgpack batches.

A runtime writes each event to its outbox in the same transaction as the state change it
describes, then sends batches to ``POST /runtime/v1/telemetry`` until they are
acknowledged. An event's ``id`` (a UUIDv7, minted once, when the event is written) is the
deduplication key: a batch sent twice, or an event in two batches, is counted once.
"""

from __future__ import annotations

import gzip
import zlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import msgspec

MEDIA_TYPE = "application/vnd.storeops.telemetry+msgpack"
#: Events per batch, and the largest batch body accepted before and after gunzip.
MAX_EVENTS = 5000
MAX_COMPRESSED_BYTES = 4 * 1024 * 1024
MAX_RAW_BYTES = 32 * 1024 * 1024


class Kind(StrEnum):
    HEARTBEAT = "heartbeat"
    RUN_STARTED = "run.started"
    RUN_FINISHED = "run.finished"
    STEP_FINISHED = "step.finished"
    TASK_OPENED = "task.opened"
    TASK_DECIDED = "task.decided"
    TASK_BREACHED = "task.breached"
    TASK_ESCALATED = "task.escalated"
    USAGE = "usage"
    DEPLOYMENT_STATUS = "deployment.status"
    #: A recurring incident pattern (``data``: :class:`control_plane.contracts.triage.Insight`).
    INSIGHT = "insight"


Name = Annotated[str, msgspec.Meta(max_length=200)]


class Event(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    id: UUID
    #: When it happened, on the runtime's clock (UTC).
    at: datetime
    kind: Kind
    template_id: Name | None = None
    template_version: Name | None = None
    run_id: UUID | None = None
    store: Name | None = None
    #: The outcome: succeeded/failed/cancelled (runs, steps), approved/rejected/... (tasks).
    status: Name | None = None
    #: Run or step duration, task turnaround.
    duration_ms: Annotated[int, msgspec.Meta(ge=0)] | None = None
    #: Kind-specific: heartbeat figures (version, uptime_s, queue_depth, dead_letters, workers,
    #: oldest_pending_s), usage counters ({"api_calls": 12, ...}), a step's id and kind,
    #: a deployment's status and reason.
    data: dict[str, Any] = msgspec.field(default_factory=dict)


#: The version of this message's shape; a receiver refuses versions it does not know.
CONTRACT_VERSION = 1


class Batch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    tenant_id: UUID
    #: The sending runtime instance (for diagnostics).
    runtime: Name
    sent_at: datetime
    events: Annotated[list[Event], msgspec.Meta(min_length=1, max_length=MAX_EVENTS)]
    contract_version: int = CONTRACT_VERSION


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Batch)


class InvalidBatch(ValueError):
    """A body that is not a valid telemetry batch; the message says why."""


def encode(batch: Batch) -> bytes:
    return gzip.compress(_encoder.encode(batch), compresslevel=5)


def decode(body: bytes) -> Batch:
    """A batch from a gzip'd msgpack body, refusing oversized or malformed input."""
    if len(body) > MAX_COMPRESSED_BYTES:
        raise InvalidBatch(f"batch body exceeds {MAX_COMPRESSED_BYTES} bytes")
    try:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        raw = inflater.decompress(body, MAX_RAW_BYTES)
        if inflater.unconsumed_tail:
            raise InvalidBatch(f"batch inflates beyond {MAX_RAW_BYTES} bytes")
        if not inflater.eof:
            raise InvalidBatch("batch body is a truncated gzip stream")
    except zlib.error as exc:
        raise InvalidBatch(f"batch body is not gzip: {exc}") from None
    try:
        batch = _decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise InvalidBatch(f"invalid batch: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidBatch(f"batch is not msgpack: {exc}") from None
    if batch.contract_version != CONTRACT_VERSION:
        raise InvalidBatch(
            f"telemetry contract version {batch.contract_version} is not supported "
            f"(this control plane speaks {CONTRACT_VERSION})"
        )
    return batch
