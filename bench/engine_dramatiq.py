"""The raw Dramatiq baseline of the engine benchmark: a no-op actor on a RedisBroker.

    BENCH_DRAMATIQ_REDIS_URL=redis://127.0.0.1:6379/12 BENCH_DRAMATIQ_NAMESPACE=ns \\
        python -m dramatiq engine_dramatiq --path bench --processes 1 --threads 8

The actor only counts itself done (``INCR <namespace>:done``), so the benchmark can tell
when every message it sent was processed: what is left is Dramatiq's own cost per message
(fetch, decode, middleware, ack) on the same Redis the tenant runtime uses.
"""

from __future__ import annotations

import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

REDIS_URL = os.environ.get("BENCH_DRAMATIQ_REDIS_URL", "redis://127.0.0.1:6379/12")
NAMESPACE = os.environ.get("BENCH_DRAMATIQ_NAMESPACE", "storeops-bench-dramatiq")
QUEUE = "noop"
ACTOR = "noop"


def done_key(namespace: str) -> str:
    return f"{namespace}:done"


broker = RedisBroker(url=REDIS_URL, namespace=NAMESPACE)
dramatiq.set_broker(broker)
_counter = redis.Redis.from_url(REDIS_URL)
_done = done_key(NAMESPACE)


@dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, max_retries=0)
def noop() -> None:
    _counter.incr(_done)
