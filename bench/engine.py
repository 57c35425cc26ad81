"""Engine benchmark: StoreOps workflow runs against raw Dramatiq and against dbos.

    .venv/bin/python bench/engine.py            # --help for the options

1. StoreOps: creates ``storeops_bench_engine_<hex>`` (PostgreSQL on 127.0.0.1:5432, superuser
   ``postgres``), migrates the runtime schema, starts ``--workers`` real ``storeops runtime
   worker`` processes (``--threads`` Dramatiq threads each, Redis 127.0.0.1:6379 db 12, the
   tenant's own namespace) for a random tenant, and from this process starts runs of a
   three-step template (three ``set`` steps: no network call) with ``Engine.start``:
   a warm-up, then ``--runs`` as fast as ``--start-concurrency`` concurrent starts allow
   (throughput: runs/s and steps/s from the first ``created_at`` to the last
   ``finished_at``), then ``--latency-runs`` at ``--latency-rate`` runs/s (latency without
   queueing: p50/p99 of ``finished_at - created_at``). ``storeops runtime serve`` is started
   too when that command exists, and counted in the runtime's memory.
2. Raw Dramatiq: ``--messages`` messages queued in their own namespace on the same Redis,
   then ``--workers`` ``dramatiq`` processes x ``--threads`` threads run a no-op actor
   (``bench/engine_dramatiq.py``) that counts itself done; messages/s from 10 % to 100 %
   of the messages processed (both workers up; the sender not in the way).
3. dbos: the same three no-op steps as ``@DBOS.step`` functions in a ``@DBOS.workflow``
   (``bench/engine_dbos.py``) on its own fresh database ``storeops_bench_engine_<hex>_dbos``,
   in two ways (``--dbos-mode``): ``queue``, the shape closest to StoreOps (this process
   enqueues with ``DBOSClient``, ``--workers`` DBOS processes dequeue with
   ``worker_concurrency=--threads``, polling every ``--dbos-poll`` s), and ``direct``
   (``--workers`` DBOS processes each call the workflow from ``--threads`` threads, back to
   back: no queue, no polling). The ratio is taken against the faster of the two.
4. Prints a table (runs/s, steps/s, p50/p99 run latency, messages/s), the ratios StoreOps
   runs/s / dbos runs/s (target >= 2x) and StoreOps steps/s / Dramatiq messages/s (target
   >= 25 %), the runtime's memory (VmHWM of each process and its children, summed, from
   ``/proc/<pid>/status``) idle and after the load (targets: an idle runtime, the API
   process and one worker, < 200 MB; every runtime process at load < 300 MB), and writes
   everything to ``bench/results/engine.json``.

Processes, databases and this benchmark's Redis keys are removed at the end, also on
failure or Ctrl-C. Missing a target is reported, never an error: the exit status is 1 only
when something actually failed (a process that does not start or dies, a run that fails,
a phase that does not finish in time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import dramatiq
import httpx
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.ext.asyncio import create_async_engine

from control_plane.contracts import dsl
from control_plane.contracts.validate import lint
from tenant_runtime.config import RuntimeSettings
from tenant_runtime.db.migrate import upgrade
from tenant_runtime.engine.dispatch import Dispatcher, tenant_broker
from tenant_runtime.engine.executor import Engine

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "engine.json"
DBOS_HELPER = BENCH_DIR / "engine_dbos.py"

PG_HOST = os.environ.get("STOREOPS_BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("STOREOPS_BENCH_PG_PORT", "5432"))
PG_SUPERUSER = os.environ.get("STOREOPS_BENCH_PG_USER", "postgres")
REDIS_URL = os.environ.get("STOREOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

STEPS_PER_RUN = 3
TARGET_RUNS_RATIO = 2.0
TARGET_STEPS_RATIO = 0.25
TARGET_IDLE_MB = 200.0
TARGET_LOAD_MB = 300.0

# Kept in step with bench/engine_dbos.py and bench/engine_dramatiq.py (not imported here:
# importing them declares a DBOS registry or a Dramatiq broker in this process).
DBOS_APP = "storeops-bench"
DBOS_QUEUE = "bench-runs"
DBOS_WORKFLOW = "bench_three_steps"
DRAMATIQ_QUEUE = "noop"
DRAMATIQ_ACTOR = "noop"

FLOW = """
id: {id}
name: Engine benchmark
version: 1.0.0
category: inventory
owner: platform
summary: Three set steps and nothing else, so the engine's own cost is what is measured.
triggers: [{{kind: api}}]
steps:
  - id: first
    kind: set
    values: {{a: "1"}}
    next: second
  - id: second
    kind: set
    values: {{b: "vars.a + 1"}}
    next: third
  - id: third
    kind: set
    values: {{c: "vars.b + 1"}}
"""


class BenchError(RuntimeError):
    """A real failure: reported without a traceback, exit status 1."""


# --- databases and Redis -------------------------------------------------------------------


def pg_dsn(database: str) -> str:
    return f"postgresql://{PG_SUPERUSER}@{PG_HOST}:{PG_PORT}/{database}"


def sa_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_SUPERUSER}@{PG_HOST}:{PG_PORT}/{database}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(pg_dsn("postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def database(name: str) -> Iterator[str]:
    """A fresh database, dropped on the way out whatever happened."""
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    print(f"created database {name}")
    try:
        yield name
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"dropped database {name}")


def delete_namespace(client: redis.Redis, prefix: str) -> int:
    """Delete this benchmark's keys (``prefix*``) only: db 12 may hold other things."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for i in range(0, len(keys), 500):
        client.delete(*keys[i : i + 500])
    return len(keys)


# --- processes and /proc -------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def ensure_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
            raise BenchError(f"{self.name} {how}:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to the process group it leads, SIGKILL if it lingers."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # children left behind, if any
        if self.popen.poll() is None:
            self.popen.wait(timeout=5)


def spawn(
    name: str, cmd: Sequence[str], env: dict[str, str], workdir: Path, stack: ExitStack
) -> Proc:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(cmd),
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc = Proc(name, popen, log)
    stack.callback(proc.stop)
    return proc


def wait_for_log(procs: Sequence[Proc], marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = list(procs)
    while pending:
        for proc in list(pending):
            proc.ensure_alive()
            if marker in proc.log_text():
                pending.remove(proc)
        if pending and time.monotonic() > deadline:
            names = ", ".join(p.name for p in pending)
            raise BenchError(
                f"{names}: no {marker!r} after {timeout:.0f}s:\n{pending[0].log_tail()}"
            )
        time.sleep(0.05)


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STOREOPS_", "DBOS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants."""
    children = _children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name == key:
                    return int(value.split()[0])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (all its threads); with ``reaped_children``,
    plus those of the children it has waited for."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_hwm_mb(root: int) -> float:
    """Peak resident memory of a process and its children, summed (VmHWM)."""
    return sum(status_kb(pid, "VmHWM") for pid in tree_pids(root)) / 1024


def tree_cpu(roots: Sequence[int]) -> float:
    return sum(cpu_seconds(pid) for root in roots for pid in tree_pids(root))


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL server process (all sessions, not only ours); the
    postmaster's reaped children keep the backends that have exited in the count."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm", encoding="ascii", errors="replace") as fh:
                    if fh.read().strip() != "postgres":
                        continue
            except OSError:
                continue
            total += cpu_seconds(int(entry), reaped_children=True)
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


class CpuMeter:
    """CPU used during a phase: by given process trees, PostgreSQL, and the machine."""

    def __init__(self, roots: Sequence[int]) -> None:
        self.roots = list(roots)
        self.procs0 = tree_cpu(self.roots)
        self.pg0 = postgres_cpu()
        self.bench0 = time.process_time()
        self.busy0, self.total0 = machine_busy()
        self.t0 = time.monotonic()

    def read(self, runs: int) -> dict[str, float]:
        wall = max(time.monotonic() - self.t0, 1e-9)
        busy, total = machine_busy()
        procs = tree_cpu(self.roots) - self.procs0
        pg = postgres_cpu() - self.pg0
        bench = time.process_time() - self.bench0
        per = 1000 / max(runs, 1)
        return {
            "wall_s": round(wall, 3),
            "workers_cpu_s": round(procs, 2),
            "postgres_cpu_s": round(pg, 2),
            "bench_process_cpu_s": round(bench, 2),
            "workers_cpu_ms_per_run": round(procs * per, 2),
            "postgres_cpu_ms_per_run": round(pg * per, 2),
            "bench_process_cpu_ms_per_run": round(bench * per, 2),
            "machine_busy_pct": round(100 * (busy - self.busy0) / max(total - self.total0, 1.0), 1),
        }


def background_load(seconds: float = 1.0) -> dict[str, float]:
    """How busy the machine is before the benchmark starts anything (it may be shared)."""
    busy0, total0 = machine_busy()
    time.sleep(seconds)
    busy, total = machine_busy()
    with open("/proc/loadavg", encoding="ascii") as fh:
        load1 = float(fh.read().split()[0])
    return {
        "busy_pct": round(100 * (busy - busy0) / max(total - total0, 1.0), 1),
        "loadavg_1m": load1,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- figures -------------------------------------------------------------------------------


def latency_stats(latencies_ms: Sequence[float]) -> dict[str, float]:
    if not latencies_ms:
        return {"p50_ms": 0.0, "p90_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    if len(latencies_ms) == 1:
        only = round(latencies_ms[0], 1)
        return {"p50_ms": only, "p90_ms": only, "p99_ms": only, "max_ms": only}
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 1),
        "p90_ms": round(cuts[89], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(max(latencies_ms), 1),
    }


def phase_figures(spans: Sequence[tuple[float, float]], count: int) -> dict[str, Any]:
    """Throughput over first start .. last finish, and latency per run, from (start, end)
    timestamps in seconds."""
    if not spans:
        return {"runs": 0}
    first = min(s for s, _ in spans)
    last = max(e for _, e in spans)
    wall = max(last - first, 1e-9)
    return {
        "runs": count,
        "wall_s": round(wall, 3),
        "runs_per_s": round(count / wall, 1),
        "steps_per_s": round(count * STEPS_PER_RUN / wall, 1),
        **latency_stats([1000 * (e - s) for s, e in spans]),
    }


# --- StoreOps -----------------------------------------------------------------------------


class NoCalls:
    """This process only starts runs; the template makes no call anyway."""

    async def call(self, *args: object, **kwargs: object) -> dict[str, object]:
        raise AssertionError("the benchmark's template makes no connector call")


def template(template_id: str) -> dsl.Template:
    found, problems = lint(FLOW.format(id=template_id), f"{template_id}/1.0.0.yaml")
    if found is None or problems:
        raise BenchError(f"the benchmark template is invalid: {problems}")
    return found


class Starter:
    """Starts runs with ``Engine.start`` from this process, with the engine built the way
    ``storeops runtime serve`` builds its own (``tenant_runtime.serve.build_runtime``): a
    started run's first step is rung on the tenant's Dramatiq queue once it commits."""

    def __init__(self, env: dict[str, str], concurrency: int) -> None:
        self.settings = RuntimeSettings.from_env(env)
        self.concurrency = concurrency

    @asynccontextmanager
    async def _engine(self) -> AsyncIterator[Engine]:
        try:
            from tenant_runtime.serve import build_runtime
        except ImportError:  # a build without the runtime API: assemble the same parts
            broker = tenant_broker(self.settings.redis_url, self.settings.tenant_id)
            db = create_async_engine(self.settings.database_url, pool_size=self.concurrency)
            engine: Engine
            dispatcher = Dispatcher(broker, lambda: engine)
            engine = Engine(db, NoCalls(), worker="bench-starter", ring=dispatcher.ring)
            try:
                yield engine
            finally:
                await db.dispose()
                broker.close()
            return
        runtime = build_runtime(self.settings)
        try:
            yield runtime.engine
        finally:
            await runtime.close()

    def start(self, flow: dsl.Template, count: int, rate: float | None = None) -> float:
        """Start ``count`` runs (as fast as possible, or ``rate`` per second); returns the
        seconds the starts took."""

        async def body() -> float:
            async with self._engine() as engine:
                t0 = time.monotonic()
                if rate:
                    tasks = []
                    for i in range(count):
                        delay = t0 + i / rate - time.monotonic()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        tasks.append(asyncio.create_task(engine.start(flow, {}, {"n": i})))
                    await asyncio.gather(*tasks)
                else:
                    numbers = iter(range(count))

                    async def loop() -> None:
                        for i in numbers:
                            await engine.start(flow, {}, {"n": i})

                    await asyncio.gather(*(loop() for _ in range(self.concurrency)))
                return time.monotonic() - t0

        return asyncio.run(body())


async def _run_counts(dsn: str, template_id: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT status, count(*) AS n FROM runs WHERE template_id = $1 GROUP BY status",
            template_id,
        )
    finally:
        await conn.close()
    return {r["status"]: r["n"] for r in rows}


async def _run_spans(dsn: str, template_id: str) -> list[tuple[float, float]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT extract(epoch FROM created_at)::float8 AS s,"
            " extract(epoch FROM finished_at)::float8 AS e"
            " FROM runs WHERE template_id = $1 AND status = 'succeeded'",
            template_id,
        )
    finally:
        await conn.close()
    return [(r["s"], r["e"]) for r in rows]


async def _rerung(dsn: str, template_id: str) -> int | None:
    """Steps of a phase that the sweeper rang again (``dispatched_at`` moved after the step
    was written): each is one more Dramatiq message and one more claim attempt."""
    conn = await asyncpg.connect(dsn)
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM steps JOIN runs ON runs.id = steps.run_id"
            " WHERE runs.template_id = $1"
            " AND steps.dispatched_at > steps.created_at + interval '100 milliseconds'",
            template_id,
        )
    except asyncpg.PostgresError:  # a schema without these columns
        return None
    finally:
        await conn.close()
    return int(found)


def wait_until(
    done: Callable[[], tuple[int, int]],
    expected: int,
    timeout: float,
    what: str,
    alive: Callable[[], None],
) -> None:
    """Poll ``done() -> (finished, failed)`` until ``expected`` finished."""
    deadline = time.monotonic() + timeout
    finished = failed = 0
    while time.monotonic() < deadline:
        alive()
        finished, failed = done()
        if failed:
            raise BenchError(f"{what}: {failed} runs failed")
        if finished >= expected:
            return
        time.sleep(0.05)
    raise BenchError(f"{what}: {finished} of {expected} finished after {timeout:.0f}s")


def phase_timeout(count: int) -> float:
    return 60.0 + count / 10


def serve_command(storeops: list[str], env: dict[str, str]) -> tuple[list[str], str] | None:
    """``storeops runtime serve`` on a free loopback port and its URL, if this build has
    the command."""
    try:
        found = subprocess.run(
            [*storeops, "runtime", "serve", "--help"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if found.returncode != 0:
        return None
    port = free_port()
    return [*storeops, "runtime", "serve", "--host", "127.0.0.1", "--port", str(port)], (
        f"http://127.0.0.1:{port}"
    )


def wait_healthy(proc: Proc, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.ensure_alive()
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{proc.name} not healthy after {timeout:.0f}s:\n{proc.log_tail()}")


def storeops_command() -> list[str]:
    script = Path(sys.executable).parent / "storeops"
    if not script.exists():
        raise BenchError(f"{script} not found: install the project (make setup)")
    return [str(script)]


def bench_storeops(
    args: argparse.Namespace, tag: str, workdir: Path, stack: ExitStack
) -> dict[str, Any]:
    flows = {phase: template(f"bench-engine-{phase}") for phase in ("warmup", "load", "latency")}
    name = stack.enter_context(database(f"storeops_bench_engine_{tag}"))
    url, dsn = sa_url(name), pg_dsn(name)
    upgrade(url)
    tenant = uuid4()
    namespace = f"storeops-{tenant}"
    client = redis.Redis.from_url(REDIS_URL)
    stack.callback(lambda: print(f"deleted {delete_namespace(client, namespace)} Redis keys"))
    env = clean_env(
        {
            "STOREOPS_RUNTIME_TENANT_ID": str(tenant),
            "STOREOPS_RUNTIME_DATABASE_URL": url,
            "STOREOPS_RUNTIME_REDIS_URL": REDIS_URL,
            "STOREOPS_RUNTIME_WORKER_THREADS": str(args.threads),
            "STOREOPS_RUNTIME_HOME": str(workdir / "home"),
        }
    )
    if args.sweep_seconds is not None:
        env["STOREOPS_RUNTIME_SWEEP_SECONDS"] = str(args.sweep_seconds)
    storeops = storeops_command()
    serve = serve_command(storeops, env)
    workers = [
        spawn(
            f"storeops-worker-{i}",
            [*storeops, "runtime", "worker", "--name", f"bench-worker-{i}"],
            env,
            workdir,
            stack,
        )
        for i in range(1, args.workers + 1)
    ]
    runtime = list(workers)
    if serve:
        # Nothing listens there: the benchmark sends the API no request that needs a token.
        serve_env = {"STOREOPS_RUNTIME_CONTROL_PLANE_URL": f"http://127.0.0.1:{free_port()}"}
        runtime.append(spawn("storeops-serve", serve[0], {**serve_env, **env}, workdir, stack))
    print(
        f"storeops: tenant {tenant}, {args.workers} workers x {args.threads} threads"
        + (f", plus `runtime serve` at {serve[1]}" if serve else ", no `runtime serve`")
    )
    wait_for_log(workers, "runtime worker", timeout=60)
    if serve:
        wait_healthy(runtime[-1], serve[1])
    time.sleep(args.idle_seconds)  # imports done, Dramatiq threads up, nothing to do yet

    def alive() -> None:
        for proc in runtime:
            proc.ensure_alive()

    alive()
    idle = {p.name: round(tree_hwm_mb(p.pid), 1) for p in runtime}
    starter = Starter(env, args.start_concurrency)

    def finished(phase: str) -> Callable[[], tuple[int, int]]:
        def count() -> tuple[int, int]:
            counts = asyncio.run(_run_counts(dsn, flows[phase].id))
            return counts.get("succeeded", 0), counts.get("failed", 0)

        return count

    roots = [p.pid for p in runtime]
    if args.warmup:
        starter.start(flows["warmup"], args.warmup)
        wait_until(finished("warmup"), args.warmup, phase_timeout(args.warmup), "warm-up", alive)
        print(f"  warm-up: {args.warmup} runs done")

    meter = CpuMeter(roots)
    start_s = starter.start(flows["load"], args.runs)
    wait_until(finished("load"), args.runs, phase_timeout(args.runs), "throughput", alive)
    cpu = meter.read(args.runs)
    load = phase_figures(asyncio.run(_run_spans(dsn, flows["load"].id)), args.runs)
    load["starts_s"] = round(start_s, 3)
    load["starts_per_s"] = round(args.runs / start_s, 1)
    load["cpu"] = cpu
    load["steps_rung_again"] = asyncio.run(_rerung(dsn, flows["load"].id))
    print(
        f"  throughput: {load['runs_per_s']} runs/s, {load['steps_per_s']} steps/s"
        f" ({args.runs} runs, starts took {start_s:.1f}s, all done {load['wall_s']:.1f}s)"
    )

    meter = CpuMeter(roots)
    starter.start(flows["latency"], args.latency_runs, rate=args.latency_rate)
    wait_until(
        finished("latency"),
        args.latency_runs,
        phase_timeout(args.latency_runs),
        "latency phase",
        alive,
    )
    latency = phase_figures(asyncio.run(_run_spans(dsn, flows["latency"].id)), args.latency_runs)
    latency["rate"] = args.latency_rate
    latency["cpu"] = meter.read(args.latency_runs)
    print(
        f"  latency at {args.latency_rate:g} runs/s: p50 {latency['p50_ms']} ms,"
        f" p99 {latency['p99_ms']} ms"
    )
    alive()
    at_load = {p.name: round(tree_hwm_mb(p.pid), 1) for p in runtime}
    return {
        "tenant": str(tenant),
        "processes": [p.name for p in runtime],
        "serve_included": bool(serve),
        "sweep_seconds": args.sweep_seconds,
        "throughput": load,
        "latency": latency,
        "memory_mb": {
            "idle": idle,
            "idle_total": round(sum(idle.values()), 1),
            "at_load": at_load,
            "at_load_total": round(sum(at_load.values()), 1),
        },
    }


# --- raw Dramatiq ---------------------------------------------------------------------------


def bench_dramatiq(
    args: argparse.Namespace, tag: str, workdir: Path, stack: ExitStack
) -> dict[str, Any]:
    """The queue is filled first, then the workers start: what is timed is consumption
    alone, from 10 % to 100 % of the messages (both workers up; the sender not in the way)."""
    namespace = f"storeops-bench-dramatiq-{tag}"
    client = redis.Redis.from_url(REDIS_URL)
    stack.callback(lambda: delete_namespace(client, namespace))
    broker = RedisBroker(url=REDIS_URL, namespace=namespace)
    stack.callback(broker.close)
    broker.declare_queue(DRAMATIQ_QUEUE)
    done_key = f"{namespace}:done"
    t0 = time.monotonic()
    for _ in range(args.messages):
        broker.enqueue(
            dramatiq.Message(
                queue_name=DRAMATIQ_QUEUE, actor_name=DRAMATIQ_ACTOR, args=(), kwargs={}, options={}
            )
        )
    send_s = time.monotonic() - t0

    env = clean_env({"BENCH_DRAMATIQ_REDIS_URL": REDIS_URL, "BENCH_DRAMATIQ_NAMESPACE": namespace})
    cmd = [
        sys.executable, "-m", "dramatiq", "engine_dramatiq", "--path", str(BENCH_DIR),
        "--processes", "1", "--threads", str(args.threads), "--queues", DRAMATIQ_QUEUE,
    ]  # fmt: skip
    procs = [spawn(f"dramatiq-{i}", cmd, env, workdir, stack) for i in range(1, args.workers + 1)]
    meter = CpuMeter([p.pid for p in procs])
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + phase_timeout(args.messages)
    while True:
        count = int(client.get(done_key) or 0)
        samples.append((time.monotonic(), count))
        if count >= args.messages:
            break
        if time.monotonic() > deadline:
            raise BenchError(f"dramatiq: {count} of {args.messages} processed in time")
        for proc in procs:
            proc.ensure_alive()
        time.sleep(0.005)
    cpu = meter.read(args.messages)
    t_end = samples[-1][0]
    t_first = next(t for t, n in samples if n > 0)
    t_10, n_10 = next((t, n) for t, n in samples if n >= args.messages / 10)
    rate = (args.messages - n_10) / max(t_end - t_10, 1e-9)
    result = {
        "messages": args.messages,
        "messages_per_s": round(rate, 1),
        "measured_from": n_10,
        "first_to_last_s": round(t_end - t_first, 3),
        "messages_per_s_first_to_last": round(args.messages / max(t_end - t_first, 1e-9), 1),
        "prefill_s": round(send_s, 3),
        "cpu": cpu,
        "memory_mb": {p.name: round(tree_hwm_mb(p.pid), 1) for p in procs},
    }
    print(
        f"  dramatiq: {result['messages_per_s']} messages/s ({args.messages} messages,"
        f" first to last processed {t_end - t_first:.1f}s)"
    )
    for proc in procs:
        proc.stop()
    return result


# --- dbos ------------------------------------------------------------------------------------


async def _dbos_spans(dsn: str, prefix: str) -> tuple[list[tuple[float, float]], dict[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT status, created_at, updated_at FROM dbos.workflow_status"
            " WHERE workflow_uuid LIKE $1",
            f"{prefix}-%",
        )
    finally:
        await conn.close()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    spans = [(r["created_at"] / 1000, r["updated_at"] / 1000) for r in rows]
    return [s for s, r in zip(spans, rows, strict=True) if r["status"] == "SUCCESS"], counts


def dbos_progress(dsn: str, prefix: str) -> Callable[[], tuple[int, int]]:
    def count() -> tuple[int, int]:
        _, counts = asyncio.run(_dbos_spans(dsn, prefix))
        return counts.get("SUCCESS", 0), counts.get("ERROR", 0)

    return count


def marker_cpu(log: str, marker: str) -> float:
    for line in log.splitlines():
        if line.startswith(f"{marker} cpu="):
            return float(line.partition("cpu=")[2])
    return 0.0


def dbos_helper(url: str, executor: str, *rest: str) -> list[str]:
    return [sys.executable, str(DBOS_HELPER), "--url", url, "--executor-id", executor, *rest]


def dbos_queue(
    args: argparse.Namespace, url: str, dsn: str, workdir: Path, stack: ExitStack
) -> dict[str, Any]:
    """This process enqueues with DBOSClient; the worker processes dequeue and execute."""
    from dbos import DBOSClient

    env = clean_env({})
    worker_args = ["worker", "--threads", str(args.threads), "--poll", str(args.dbos_poll)]
    procs: list[Proc] = []
    for i in range(1, args.workers + 1):  # one at a time: the first one migrates
        proc = spawn(
            f"dbos-worker-{i}", dbos_helper(url, f"w{i}", *worker_args), env, workdir, stack
        )
        procs.append(proc)
        wait_for_log([proc], "BENCH_READY", timeout=90)
    client = DBOSClient(
        system_database_url=url,
        application_name=DBOS_APP,
        system_database_pool_size=args.start_concurrency,
    )
    stack.callback(client.destroy)

    def alive() -> None:
        for proc in procs:
            proc.ensure_alive()

    def enqueue(prefix: str, i: int) -> None:
        client.enqueue(
            {
                "workflow_name": DBOS_WORKFLOW,
                "queue_name": DBOS_QUEUE,
                "workflow_id": f"{prefix}-{i}",
            },
            i,
        )

    def start(prefix: str, count: int, rate: float | None = None) -> float:
        t0 = time.monotonic()
        with ThreadPoolExecutor(args.start_concurrency) as pool:
            if rate:
                futures = []
                for i in range(count):
                    delay = t0 + i / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    futures.append(pool.submit(enqueue, prefix, i))
                for f in futures:
                    f.result()
            else:
                list(pool.map(lambda i: enqueue(prefix, i), range(count)))
        return time.monotonic() - t0

    if args.warmup:
        start("wu", args.warmup)
        wait_until(
            dbos_progress(dsn, "wu"), args.warmup, phase_timeout(args.warmup), "dbos warm-up", alive
        )
    meter = CpuMeter([p.pid for p in procs])
    start_s = start("tp", args.runs)
    wait_until(dbos_progress(dsn, "tp"), args.runs, phase_timeout(args.runs), "dbos queue", alive)
    cpu = meter.read(args.runs)
    spans, _ = asyncio.run(_dbos_spans(dsn, "tp"))
    load = phase_figures(spans, args.runs)
    load.update(starts_s=round(start_s, 3), starts_per_s=round(args.runs / start_s, 1), cpu=cpu)
    start("lat", args.latency_runs, rate=args.latency_rate)
    wait_until(
        dbos_progress(dsn, "lat"), args.latency_runs, phase_timeout(args.latency_runs),
        "dbos queue latency", alive,
    )  # fmt: skip
    latency = phase_figures(asyncio.run(_dbos_spans(dsn, "lat"))[0], args.latency_runs)
    memory = {p.name: round(tree_hwm_mb(p.pid), 1) for p in procs}
    for proc in procs:
        proc.stop()
    return {
        "how": (
            f"DBOSClient.enqueue from the benchmark process ({args.start_concurrency} threads)"
            f" onto a DBOS queue; {args.workers} DBOS processes dequeue it with"
            f" worker_concurrency={args.threads}, polling every {args.dbos_poll:g}s"
        ),
        "throughput": load,
        "latency": latency,
        "memory_mb": memory,
    }


def dbos_direct(
    args: argparse.Namespace, url: str, dsn: str, workdir: Path, stack: ExitStack
) -> dict[str, Any]:
    """Each DBOS process calls the workflow itself from its threads: no queue, no polling."""
    env = clean_env({})

    def run(name: str, *rest: str, timeout: float) -> Proc:
        proc = spawn(name, dbos_helper(url, name, "direct", *rest), env, workdir, stack)
        deadline = time.monotonic() + timeout
        while proc.popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.popen.poll() is None:
            raise BenchError(f"{name} did not finish in {timeout:.0f}s:\n{proc.log_tail()}")
        if proc.popen.returncode != 0 or "BENCH_DONE" not in proc.log_text():
            raise BenchError(f"{name} exited with {proc.popen.returncode}:\n{proc.log_tail()}")
        return proc

    # The warm-up also creates the system database's schema, before two processes race to.
    warmup = max(args.warmup, 1)
    run("dbos-direct-warmup", "--runs", str(warmup), "--prefix", "wu", timeout=120)
    per = [args.runs // args.workers + (i < args.runs % args.workers) for i in range(args.workers)]
    offsets = [sum(per[:i]) for i in range(args.workers)]
    procs = [
        spawn(
            f"dbos-direct-{i + 1}",
            dbos_helper(
                url, f"d{i + 1}", "direct", "--runs", str(per[i]), "--threads", str(args.threads),
                "--prefix", "tp", "--offset", str(offsets[i]),
            ),
            env, workdir, stack,
        )
        for i in range(args.workers)
    ]  # fmt: skip
    meter = CpuMeter([p.pid for p in procs])
    deadline = time.monotonic() + phase_timeout(args.runs) + 60
    for proc in procs:
        while proc.popen.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.popen.poll() != 0 or "BENCH_DONE" not in proc.log_text():
            raise BenchError(f"{proc.name} failed or timed out:\n{proc.log_tail()}")
    cpu = meter.read(args.runs)
    # They have exited: their CPU comes from what they printed, launch not included.
    used = sum(
        marker_cpu(p.log_text(), "BENCH_DONE") - marker_cpu(p.log_text(), "BENCH_READY")
        for p in procs
    )
    cpu["workers_cpu_s"] = round(used, 2)
    cpu["workers_cpu_ms_per_run"] = round(1000 * used / args.runs, 2)
    spans, counts = asyncio.run(_dbos_spans(dsn, "tp"))
    if counts.get("SUCCESS", 0) != args.runs:
        raise BenchError(f"dbos direct: workflows by status {counts}, expected {args.runs}")
    load = phase_figures(spans, args.runs)
    load["cpu"] = cpu
    run(
        "dbos-direct-latency", "--runs", str(args.latency_runs), "--rate", str(args.latency_rate),
        "--prefix", "lat", timeout=phase_timeout(args.latency_runs) + 60,
    )  # fmt: skip
    latency = phase_figures(asyncio.run(_dbos_spans(dsn, "lat"))[0], args.latency_runs)
    return {
        "how": (
            f"{args.workers} DBOS processes each call the workflow from {args.threads}"
            " threads back to back (closed loop; the latency phase: DBOS.start_workflow at the"
            " fixed rate from one process)"
        ),
        "throughput": load,
        "latency": latency,
    }


def bench_dbos(
    args: argparse.Namespace, tag: str, workdir: Path, stack: ExitStack
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    modes = ["queue", "direct"] if args.dbos_mode == "both" else [args.dbos_mode]
    for mode in modes:
        with ExitStack() as inner:
            name = inner.enter_context(database(f"storeops_bench_engine_{tag}_dbos"))
            url, dsn = pg_dsn(name), pg_dsn(name)
            run = dbos_queue if mode == "queue" else dbos_direct
            results[mode] = run(args, url, dsn, workdir, inner)
            tp, lat = results[mode]["throughput"], results[mode]["latency"]
            print(
                f"  dbos {mode}: {tp['runs_per_s']} runs/s, {tp['steps_per_s']} steps/s;"
                f" latency at {args.latency_rate:g} runs/s: p50 {lat['p50_ms']} ms,"
                f" p99 {lat['p99_ms']} ms"
            )
    return results


# --- report ---------------------------------------------------------------------------------


def check_targets(report: dict[str, Any]) -> dict[str, Any]:
    storeops = report["storeops"]
    checks: dict[str, Any] = {}
    dbos = report.get("dbos") or {}
    if dbos:
        best_mode = max(dbos, key=lambda m: dbos[m]["throughput"]["runs_per_s"])
        best = dbos[best_mode]["throughput"]["runs_per_s"]
        ratio = storeops["throughput"]["runs_per_s"] / best if best else 0.0
        checks["runs_vs_dbos"] = {
            "label": f"StoreOps runs/s >= {TARGET_RUNS_RATIO:g}x dbos runs/s",
            "measured": f"{ratio:.2f}x (against dbos {best_mode}, {best} runs/s)",
            "value": round(ratio, 3),
            "met": ratio >= TARGET_RUNS_RATIO,
        }
    dramatiq_rate = report["dramatiq"]["messages_per_s"] if report.get("dramatiq") else 0.0
    if dramatiq_rate:
        ratio = storeops["throughput"]["steps_per_s"] / dramatiq_rate
        checks["steps_vs_dramatiq"] = {
            "label": f"StoreOps steps/s >= {100 * TARGET_STEPS_RATIO:.0f} % of raw Dramatiq msgs/s",
            "measured": f"{100 * ratio:.1f} %",
            "value": round(ratio, 4),
            "met": ratio >= TARGET_STEPS_RATIO,
        }
    memory = storeops["memory_mb"]
    api = " + serve" if storeops["serve_included"] else ""
    idle = _one_worker(memory["idle"])
    checks["idle_memory"] = {
        "label": f"idle runtime (one worker{api}) < {TARGET_IDLE_MB:.0f} MB",
        "measured": f"{idle:.1f} MB ({_per_process(memory['idle'])})",
        "met": idle < TARGET_IDLE_MB,
    }
    busy = memory["at_load_total"]
    checks["at_load_memory"] = {
        "label": f"runtime at load ({len(memory['at_load']) - bool(api)} workers{api},"
        f" summed) < {TARGET_LOAD_MB:.0f} MB",
        "measured": f"{busy:.1f} MB ({_per_process(memory['at_load'])})",
        "met": busy < TARGET_LOAD_MB,
    }
    return checks


def _one_worker(values: dict[str, float]) -> float:
    """The smallest runtime: the largest worker (plus the API process, when there is one)."""
    workers = [mb for name, mb in values.items() if "worker" in name]
    return max(workers, default=0.0) + sum(mb for name, mb in values.items() if "serve" in name)


def _per_process(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {mb:.1f}" for name, mb in values.items())


def print_report(report: dict[str, Any]) -> None:
    cfg = report["config"]
    header = (
        f"{'system':<26} {'runs/s':>8} {'steps/s':>8} {'msgs/s':>9}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'load p50':>9} {'load p99':>9}"
    )
    print()
    print(header)
    print("-" * len(header))

    def row(name: str, result: dict[str, Any]) -> None:
        tp, lat = result["throughput"], result["latency"]
        print(
            f"{name:<26} {tp['runs_per_s']:>8.1f} {tp['steps_per_s']:>8.1f} {'':>9}"
            f" {lat['p50_ms']:>8.1f} {lat['p99_ms']:>8.1f} {tp['p50_ms']:>9.1f}"
            f" {tp['p99_ms']:>9.1f}"
        )

    row("StoreOps", report["storeops"])
    for mode, result in (report.get("dbos") or {}).items():
        row(f"dbos ({mode})", result)
    if report.get("dramatiq"):
        d = report["dramatiq"]
        print(f"{'raw Dramatiq (no-op actor)':<26} {'':>8} {'':>8} {d['messages_per_s']:>9.1f}")
    print("-" * len(header))
    print(
        f"runs/s, steps/s: {cfg['runs']} runs of {STEPS_PER_RUN} steps, first start to last"
        f" finish; p50/p99: run latency (created -> finished) at {cfg['latency_rate']:g} runs/s"
        f" ({cfg['latency_runs']} runs); load p50/p99: the same during the throughput phase"
        f" (queueing included); msgs/s: {cfg['messages']} messages, {cfg['workers']} processes"
        f" x {cfg['threads']} threads"
    )
    for mode, result in (report.get("dbos") or {}).items():
        print(f"dbos ({mode}): {result['how']}")
    s = report["storeops"]
    print(
        f"\nCPU ms per run in the throughput phase (machine: {os.cpu_count()} CPUs; PostgreSQL"
        " counts all its sessions)"
    )
    print(f"  {'system':<24} {'workers':>8} {'postgres':>9} {'starter':>8} {'busy %':>7}")
    cpu_rows = [("StoreOps", s["throughput"]["cpu"])]
    cpu_rows += [
        (f"dbos ({m})", r["throughput"]["cpu"]) for m, r in (report.get("dbos") or {}).items()
    ]
    for name, c in cpu_rows:
        print(
            f"  {name:<24} {c['workers_cpu_ms_per_run']:>8.2f} {c['postgres_cpu_ms_per_run']:>9.2f}"
            f" {c['bench_process_cpu_ms_per_run']:>8.2f} {c['machine_busy_pct']:>7.1f}"
        )
    print(
        f"  (starter: this process, starting runs; StoreOps' {cfg['runs']} starts took"
        f" {s['throughput']['starts_s']:.1f}s, {s['throughput']['starts_per_s']} starts/s)"
    )
    rerung = s["throughput"].get("steps_rung_again")
    if rerung is not None:
        print(
            f"  steps the sweeper rang again while they waited in the queue: {rerung} of"
            f" {cfg['runs'] * STEPS_PER_RUN}"
        )
    print(
        "StoreOps runtime memory: VmHWM (peak resident) of each process and its children,"
        f" read after {report['config']['idle_seconds']:g}s idle and again after the load"
    )
    if not s["serve_included"]:
        print("  `storeops runtime serve` does not exist in this build: not included")
    print()
    for check in report["targets"].values():
        mark = "met    " if check["met"] else "NOT MET"
        print(f"  [{mark}] {check['label']}: {check['measured']}")
    print(f"\nwritten to {RESULTS.relative_to(REPO)} ({report['elapsed_s']:.0f}s in all)")


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="throughput phase runs")
    parser.add_argument("--workers", type=int, default=2, help="worker processes per system")
    parser.add_argument("--threads", type=int, default=8, help="threads per worker process")
    parser.add_argument(
        "--start-concurrency",
        type=int,
        default=16,
        help="concurrent starts (Engine.start, DBOSClient.enqueue) from this process",
    )
    parser.add_argument("--warmup", type=int, default=50, help="runs before each measurement")
    parser.add_argument("--latency-runs", type=int, default=100)
    parser.add_argument(
        "--latency-rate", type=float, default=10.0, help="runs/s in the latency phase"
    )
    parser.add_argument("--messages", type=int, default=20_000, help="raw Dramatiq messages")
    parser.add_argument(
        "--sweep-seconds",
        type=float,
        default=None,
        help="STOREOPS_RUNTIME_SWEEP_SECONDS for the workers (default: the runtime's own)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=3.0,
        help="how long the started runtime stays idle before its idle memory is read",
    )
    parser.add_argument("--dbos-mode", choices=["both", "queue", "direct"], default="both")
    parser.add_argument(
        "--dbos-poll", type=float, default=0.05, help="dbos queue polling interval (s)"
    )
    parser.add_argument("--skip-dbos", action="store_true")
    parser.add_argument("--skip-dramatiq", action="store_true")
    args = parser.parse_args(argv)
    if min(args.runs, args.workers, args.threads, args.start_concurrency, args.latency_runs) < 1:
        parser.error("--runs, --workers, --threads, --start-concurrency, --latency-runs: >= 1")
    if args.latency_rate <= 0:
        parser.error("--latency-rate must be positive")
    return args


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def bench(args: argparse.Namespace, workdir: Path) -> int:
    started = time.monotonic()
    tag = secrets.token_hex(4)
    report: dict[str, Any] = {
        "benchmark": "three-step workflow runs: StoreOps vs dbos; steps vs raw Dramatiq",
        "finished_at": "",
        "config": {
            "runs": args.runs,
            "workers": args.workers,
            "threads": args.threads,
            "start_concurrency": args.start_concurrency,
            "warmup": args.warmup,
            "latency_runs": args.latency_runs,
            "latency_rate": args.latency_rate,
            "messages": args.messages,
            "dbos_mode": None if args.skip_dbos else args.dbos_mode,
            "dbos_poll_s": args.dbos_poll,
            "sweep_seconds": args.sweep_seconds,
            "idle_seconds": args.idle_seconds,
            "redis": REDIS_URL,
        },
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "before": background_load(),
        },
    }
    before = report["environment"]["before"]
    print(
        f"machine before the benchmark: {before['busy_pct']} % busy, load average"
        f" {before['loadavg_1m']} on {os.cpu_count()} CPUs"
    )
    with ExitStack() as stack:
        print("StoreOps")
        report["storeops"] = bench_storeops(args, tag, workdir, stack)
    if not args.skip_dramatiq:
        with ExitStack() as stack:
            print("raw Dramatiq")
            report["dramatiq"] = bench_dramatiq(args, tag, workdir, stack)
    if not args.skip_dbos:
        with ExitStack() as stack:
            print("dbos")
            report["dbos"] = bench_dbos(args, tag, workdir, stack)
    report["targets"] = check_targets(report)
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    try:
        return bench(args, workdir)
    except BenchError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
