"""The dbos side of the engine benchmark: one process, started by ``bench/engine.py``.

    python bench/engine_dbos.py --url URL --executor-id w1 worker --threads 8 --poll 0.05
    python bench/engine_dbos.py --url URL --executor-id d1 direct --runs 1000 --prefix tp

``worker`` launches DBOS, registers the bench queue (``--threads`` workflows at once in
this process, polled every ``--poll`` seconds) and executes what the benchmark enqueues
with ``DBOSClient`` until SIGTERM. ``direct`` launches DBOS and calls the workflow itself:
``--threads`` threads back to back (closed loop) or, with ``--rate``, one start every
1/rate seconds (open loop), then exits. Both print ``BENCH_READY cpu=<s>`` once launched,
``direct`` also ``BENCH_DONE cpu=<s>`` at the end (the process's CPU seconds so far).
Timings are read by the benchmark from the system database (``dbos.workflow_status``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID

APP_NAME = "storeops-bench"
QUEUE = "bench-runs"
WORKFLOW = "bench_three_steps"


@DBOS.step(name="bench_step_one")
def step_one(n: int) -> int:
    return n + 1


@DBOS.step(name="bench_step_two")
def step_two(n: int) -> int:
    return n + 1


@DBOS.step(name="bench_step_three")
def step_three(n: int) -> int:
    return n + 1


@DBOS.workflow(name=WORKFLOW)
def three_steps(n: int) -> int:
    """The same shape as the StoreOps template: three no-op steps, each one checkpointed."""
    return step_three(step_two(step_one(n)))


def launch(url: str, executor_id: str, pool: int) -> None:
    config: DBOSConfig = {
        "name": APP_NAME,
        "system_database_url": url,
        "executor_id": executor_id,
        "application_version": "bench",
        "sys_db_pool_size": pool,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()


def serve_queue(threads: int, poll: float) -> None:
    DBOS.register_queue(
        QUEUE, worker_concurrency=threads, polling_interval_sec=poll, on_conflict="always_update"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"BENCH_READY cpu={time.process_time():.3f}", flush=True)
    stop.wait()


def run_direct(runs: int, threads: int, rate: float | None, prefix: str, offset: int) -> None:
    """Workflow ids are ``<prefix>-<n>``: the benchmark selects each phase's rows by them."""
    print(f"BENCH_READY cpu={time.process_time():.3f}", flush=True)
    if rate:
        handles: list[Any] = []
        started = time.monotonic()
        for i in range(runs):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with SetWorkflowID(f"{prefix}-{offset + i}"):
                handles.append(DBOS.start_workflow(three_steps, offset + i))
        for handle in handles:
            handle.get_result()
        return
    counter = iter(range(offset, offset + runs))
    lock = threading.Lock()

    def loop() -> None:
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return
            with SetWorkflowID(f"{prefix}-{n}"):
                three_steps(n)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the system database")
    parser.add_argument("--executor-id", required=True)
    sub = parser.add_subparsers(dest="mode", required=True)
    worker = sub.add_parser("worker", help="execute what is enqueued on the bench queue")
    worker.add_argument("--threads", type=int, default=8)
    worker.add_argument("--poll", type=float, default=0.05)
    direct = sub.add_parser("direct", help="call the workflow from this process")
    direct.add_argument("--runs", type=int, required=True)
    direct.add_argument("--threads", type=int, default=8)
    direct.add_argument("--rate", type=float, default=None)
    direct.add_argument("--prefix", default="run", help="workflow ids are <prefix>-<n>")
    direct.add_argument("--offset", type=int, default=0)
    args = parser.parse_args(argv)

    launch(args.url, args.executor_id, pool=args.threads + 4)
    try:
        if args.mode == "worker":
            serve_queue(args.threads, args.poll)
        else:
            run_direct(args.runs, args.threads, args.rate, args.prefix, args.offset)
            print(f"BENCH_DONE cpu={time.process_time():.3f}", flush=True)
    finally:
        DBOS.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
