"""Telemetry ingest benchmark: ``POST /runtime/v1/telemetry`` against a raw COPY.

    .venv/bin/python bench/ingest.py

1. Creates a throwaway PostgreSQL database ``storeops_bench_ingest_<hex>`` (127.0.0.1:5432,
   superuser ``postgres``), migrates it, makes a signing key, and through the services a
   partner, an active tenant and its runtime's API client (role ``tenant_runtime``). The
   database is dropped at the end, also on failure or Ctrl-C.
2. Builds the batches beforehand, in worker processes: ``--batches`` batches of ``--batch``
   fresh events each (UUIDv7 ids; runs started and finished, steps, tasks, usage, a
   heartbeat; six templates; times within the last four minutes), gzip'd msgpack exactly
   as a runtime sends them.
3. Serves the control plane (``control_plane.app:create_app``) with uvicorn, 1 worker,
   ``--loop uvloop --http httptools``; the runtime client gets its token from
   ``/oauth/token``. ``--connections`` keep-alive connections then post the batches back
   to back (raw asyncio HTTP/1.1, so the client costs little CPU): ``--warmup`` seconds,
   then ``--duration`` seconds measured. Every answer must be 200 with every event
   accepted. The database must then hold each posted event once, and the 5-minute and
   hourly rollups must count each once.
4. Resends a few batches: all duplicates, nothing counted again.
5. COPY: as the table owner, ``asyncpg.copy_records_to_table`` of as many rows as the
   measured phase stored, with fresh ids, into a fresh day partition of the same
   ``telemetry_events`` table (one COPY, records built beforehand).
6. Prints events/s for both, the ratio and the target (HTTP ingest >= 25 % of the COPY
   rate), the server's and PostgreSQL's CPU per event, and writes
   ``bench/results/ingest.json``.

Missing the target is reported, never an error: the exit status is 1 only on a real
failure (a server that does not start or dies, an error answer, a count that does not
match), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import msgspec
from benchdb import PG_SUPERUSER, bench_database, pg_dsn, sa_url

from control_plane.config import Settings
from control_plane.context import Ctx
from control_plane.contracts import telemetry, uuid7
from control_plane.contracts.telemetry import Batch, Event, Kind
from control_plane.db.migrate import upgrade
from control_plane.identity import schemas as identity_schemas
from control_plane.identity import service as identity
from control_plane.identity.admin import ensure_signing_key
from control_plane.identity.roles import Role
from control_plane.runner import run_as
from control_plane.tenancy import schemas as tenancy_schemas
from control_plane.tenancy import service as tenancy

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "ingest.json"

APP_ROLE = "storeops_app"
LOOPBACK = "127.0.0.1"
UVICORN_OPTIONS = (
    "--workers", "1", "--loop", "uvloop", "--http", "httptools",
    "--no-access-log", "--log-level", "warning",
)  # fmt: skip
TARGET_RATIO = 0.25
TEMPLATES = (
    "stock-transfer-approval",
    "price-promotion-sync",
    "store-opening-checklist",
    "returns-authorisation",
    "maintenance-incident",
    "customer-recovery",
)
COPY_COLUMNS = [
    "id",
    "at",
    "tenant_id",
    "partner_id",
    "kind",
    "template_id",
    "template_version",
    "run_id",
    "store",
    "status",
    "duration_ms",
    "data",
]


# --- events ----------------------------------------------------------------------------------


def make_events(rng: random.Random, n: int, now: datetime) -> list[Event]:
    """``n`` fresh events in the proportions a busy runtime sends them."""
    made: list[Event] = []
    for _ in range(n):
        at = now - timedelta(seconds=rng.random() * 240)
        template = rng.choice(TEMPLATES)
        store = f"S-{rng.randint(1, 400):03d}"
        roll = rng.random()
        if roll < 0.15:
            e = Event(
                id=uuid7(),
                at=at,
                kind=Kind.RUN_STARTED,
                template_id=template,
                template_version="1.4.0",
                run_id=uuid4(),
                store=store,
            )
        elif roll < 0.30:
            e = Event(
                id=uuid7(),
                at=at,
                kind=Kind.RUN_FINISHED,
                template_id=template,
                template_version="1.4.0",
                run_id=uuid4(),
                store=store,
                status=rng.choice(("succeeded", "succeeded", "succeeded", "failed", "cancelled")),
                duration_ms=int(rng.lognormvariate(8, 1.5)),
            )
        elif roll < 0.85:
            e = Event(
                id=uuid7(),
                at=at,
                kind=Kind.STEP_FINISHED,
                template_id=template,
                template_version="1.4.0",
                run_id=uuid4(),
                store=store,
                status=rng.choice(("succeeded", "succeeded", "failed")),
                duration_ms=rng.randint(1, 2000),
                data={"step_id": "reserve-stock", "step_kind": "call"},
            )
        elif roll < 0.95:
            kind = rng.choice((Kind.TASK_OPENED, Kind.TASK_DECIDED, Kind.TASK_BREACHED))
            e = Event(
                id=uuid7(),
                at=at,
                kind=kind,
                template_id=template,
                run_id=uuid4(),
                store=store,
                status="approved" if kind is Kind.TASK_DECIDED else None,
            )
        elif roll < 0.999:
            e = Event(id=uuid7(), at=at, kind=Kind.USAGE, data={"api_calls": rng.randint(1, 20)})
        else:
            e = Event(
                id=uuid7(),
                at=at,
                kind=Kind.HEARTBEAT,
                data={"version": "1.4.0", "queue_depth": rng.randint(0, 50), "workers": 8},
            )
        made.append(e)
    return made


def build_batches(tenant_id: str, count: int, size: int, seed: int) -> list[bytes]:
    """Encoded batches (run in a worker process)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [
        telemetry.encode(
            Batch(
                tenant_id=UUID(tenant_id),
                runtime="bench-runtime",
                sent_at=now,
                events=make_events(rng, size, now),
            )
        )
        for _ in range(count)
    ]


def encoded_batches(tenant_id: UUID, count: int, size: int, workers: int) -> list[bytes]:
    shares = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(
            build_batches,
            [str(tenant_id)] * workers,
            shares,
            [size] * workers,
            [secrets.randbits(32) for _ in range(workers)],
        )
        return [body for part in parts for body in part]


def copy_records(tenant_id: UUID, partner_id: UUID, n: int, day: datetime) -> list[tuple[Any, ...]]:
    """``n`` rows like the posted events, for one day, in ``COPY_COLUMNS`` order."""
    rng = random.Random(5)
    encode = msgspec.json.encode
    records: list[tuple[Any, ...]] = []
    while len(records) < n:
        for e in make_events(rng, min(10_000, n - len(records)), day):
            records.append(
                (
                    e.id,
                    e.at,
                    tenant_id,
                    partner_id,
                    e.kind.value,
                    e.template_id,
                    e.template_version,
                    e.run_id,
                    e.store,
                    e.status,
                    e.duration_ms,
                    encode(e.data).decode() if e.data else "{}",
                )
            )
    return records


# --- database ----------------------------------------------------------------------------------


@dataclass
class Setup:
    partner_id: UUID
    tenant_id: UUID
    client_id: str
    client_secret: str


async def create_tenant(settings: Settings) -> Setup:
    """A partner, an active tenant and its runtime client, made through the services."""

    async def build(c: Ctx) -> Setup:
        partner = await tenancy.create_partner(
            c, tenancy_schemas.PartnerCreate(slug="bench-msp", name="Bench MSP", kind="msp")
        )
        tenant = await tenancy.onboard_tenant(
            c,
            partner.id,
            tenancy_schemas.TenantCreate(slug="bench-retail", name="Bench Retail", timezone="UTC"),
        )
        await tenancy.transition_tenant(c, tenant.id, "activate")
        client, _, secret = await identity.create_client(
            c,
            identity_schemas.ClientCreate(
                name="bench runtime",
                grants=[identity_schemas.GrantSpec(role=Role.TENANT_RUNTIME, tenant_id=tenant.id)],
            ),
        )
        return Setup(partner.id, tenant.id, client.client_id, secret)

    return await run_as(settings, build)


async def stored_counts(dsn: str, tenant_id: UUID) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            """
            SELECT
                (SELECT count(*) FROM telemetry_events WHERE tenant_id = $1) AS events,
                (SELECT coalesce(sum(events), 0) FROM telemetry_rollups
                    WHERE tenant_id = $1 AND granularity = '5m') AS rollup_5m,
                (SELECT coalesce(sum(events), 0) FROM telemetry_rollups
                    WHERE tenant_id = $1 AND granularity = '1h') AS rollup_1h
            """,
            tenant_id,
        )
    finally:
        await conn.close()
    return {k: int(v) for k, v in dict(row).items()}


async def copy_phase(dsn: str, records: list[tuple[Any, ...]], day: datetime) -> float:
    """Seconds one COPY of ``records`` takes into a fresh day partition."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.fetchval("SELECT storeops_telemetry_partition($1)", day.date())
        await conn.execute("CHECKPOINT")
        started = time.perf_counter()
        await conn.copy_records_to_table("telemetry_events", records=records, columns=COPY_COLUMNS)
        elapsed = time.perf_counter() - started
        midnight = day.replace(hour=0, minute=0, second=0, microsecond=0)
        copied = await conn.fetchval(
            "SELECT count(*) FROM telemetry_events WHERE at >= $1 AND at < $2",
            midnight,
            midnight + timedelta(days=1),
        )
    finally:
        await conn.close()
    if copied != len(records):
        raise RuntimeError(f"COPY stored {copied} rows, expected {len(records)}")
    return elapsed


# --- server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def ensure_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
            raise RuntimeError(f"control plane {how}:\n{self.log_tail()}")


def start_server(settings: Settings, workdir: Path) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREOPS_")}
    env.update(
        {
            "STOREOPS_HOME": str(settings.home),
            "STOREOPS_DATABASE_URL": settings.database_url,
            "STOREOPS_ADMIN_DATABASE_URL": settings.admin_database_url,
            "STOREOPS_PUBLIC_URL": settings.public_url,
            "STOREOPS_LOG_LEVEL": "WARNING",
            "STOREOPS_REDIS_URL": "",
        }
    )
    port = free_port()
    log = workdir / "control_plane.log"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "control_plane.app:create_app"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cmd, "--host", LOOPBACK, "--port", str(port), *UVICORN_OPTIONS],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(process, port, log)


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.ensure_alive()
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"control plane not ready after {timeout:.0f}s:\n{server.log_tail()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


def runtime_token(server: Server, setup: Setup) -> str:
    answer = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": setup.client_id,
            "client_secret": setup.client_secret,
        },
        timeout=10,
    )
    if answer.status_code != 200:
        raise RuntimeError(f"/oauth/token refused the runtime client: {answer.text[:300]}")
    token: str = answer.json()["access_token"]
    return token


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """CPU seconds used so far by every ``postgres`` process on the machine."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                raw = fh.read()
        except OSError:
            continue
        name = raw[raw.find("(") + 1 : raw.rfind(")")]
        if name == "postgres" or name.startswith("postgres:"):
            fields = raw.rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine_cpu_seconds() -> float:
    with open("/proc/stat", encoding="ascii") as fh:
        fields = fh.readline().split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


# --- load --------------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def request_bytes(host: str, token: str, body: bytes) -> bytes:
    head = (
        f"POST /runtime/v1/telemetry HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {token}\r\n"
        f"Content-Type: {telemetry.MEDIA_TYPE}\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def drive(
    port: int, requests: Iterator[bytes], connections: int, seconds: float, expect: int
) -> tuple[Tally, float]:
    """Post from ``connections`` connections until ``seconds`` pass or batches run out."""
    tally = Tally()
    deadline = time.monotonic() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            while time.monotonic() < deadline:
                request = next(requests, None)
                if request is None:
                    return
                sent = time.perf_counter()
                writer.write(request)
                status, body = await read_response(reader)
                tally.latencies.append(time.perf_counter() - sent)
                tally.requests += 1
                if status != 200:
                    tally.errors.append(f"{status}: {body[:300]!r}")
                    return
                answer = json.loads(body)
                tally.accepted += answer["accepted"]
                tally.duplicates += answer["duplicates"]
                if answer["accepted"] + answer["duplicates"] != expect:
                    tally.errors.append(f"unexpected answer {answer}")
                    return
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    return tally, time.perf_counter() - started


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# --- run ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--batch", type=int, default=1000, help="events per batch")
    parser.add_argument(
        "--batches",
        type=int,
        default=1600,
        help="batches built beforehand (the measured phase stops early if they run out)",
    )
    parser.add_argument("--connections", type=int, default=4, help="concurrent posters")
    parser.add_argument("--duration", type=int, default=10, help="seconds measured")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before the measurement")
    parser.add_argument("--resend", type=int, default=5, help="batches sent a second time")
    parser.add_argument(
        "--build-workers", type=int, default=os.cpu_count() or 2, help="processes building batches"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= telemetry.MAX_EVENTS:
        parser.error(f"--batch must be between 1 and {telemetry.MAX_EVENTS}")
    return args


def background_load(seconds: float = 1.0) -> float:
    """How busy the machine is before the benchmark starts (% of one core)."""
    before = machine_cpu_seconds()
    time.sleep(seconds)
    return 100 * (machine_cpu_seconds() - before) / seconds


def bench(args: argparse.Namespace, database: str, workdir: Path) -> int:
    started = time.monotonic()
    idle_load = background_load()
    print(f"machine busy before the run: {idle_load:.0f}% of one core ({os.cpu_count()} CPUs)")
    settings = Settings(
        home=workdir / "home",
        database_url=sa_url(APP_ROLE, database),
        admin_database_url=sa_url(PG_SUPERUSER, database),
        redis_url="",
        log_level="WARNING",
    )
    upgrade(settings)
    asyncio.run(run_as(settings, lambda c: ensure_signing_key(c, settings)))
    setup = asyncio.run(create_tenant(settings))
    owner_dsn = pg_dsn(PG_SUPERUSER, database)

    t0 = time.monotonic()
    bodies = encoded_batches(setup.tenant_id, args.batches, args.batch, args.build_workers)
    mean_kb = sum(len(b) for b in bodies) / len(bodies) / 1024
    print(
        f"built {len(bodies)} batches of {args.batch} events ({mean_kb:.0f} KiB gzip'd each)"
        f" in {time.monotonic() - t0:.1f}s"
    )

    server = start_server(settings, workdir)
    try:
        wait_ready(server)
        token = runtime_token(server, setup)
        host = f"{LOOPBACK}:{server.port}"
        requests = iter([request_bytes(host, token, body) for body in bodies])
        print(
            f"posting from {args.connections} connections:"
            f" {args.warmup}s warm-up, then {args.duration}s measured"
        )
        warm, _ = asyncio.run(
            drive(server.port, requests, args.connections, args.warmup, args.batch)
        )
        server.ensure_alive()
        pid = server.process.pid
        cpu0, pg0, all0 = proc_cpu_seconds(pid), postgres_cpu_seconds(), machine_cpu_seconds()
        tally, elapsed = asyncio.run(
            drive(server.port, requests, args.connections, args.duration, args.batch)
        )
        server_cpu = proc_cpu_seconds(pid) - cpu0
        pg_cpu = postgres_cpu_seconds() - pg0
        machine_cpu = machine_cpu_seconds() - all0
        server.ensure_alive()
        errors = warm.errors + tally.errors
        if errors:
            raise RuntimeError(f"error answers: {errors[:3]}\n{server.log_tail()}")
        if tally.duplicates or warm.duplicates:
            raise RuntimeError("fresh events were answered as duplicates")
        if elapsed < args.duration * 0.9:
            print(f"note: the {len(bodies)} batches ran out after {elapsed:.1f}s; use --batches")

        posted = warm.accepted + tally.accepted
        counts = asyncio.run(stored_counts(owner_dsn, setup.tenant_id))
        wanted = {"events": posted, "rollup_5m": posted, "rollup_1h": posted}
        if counts != wanted:
            raise RuntimeError(f"stored {counts}, expected {wanted}")

        resend = iter([request_bytes(host, token, b) for b in bodies[: args.resend]])
        again, _ = asyncio.run(drive(server.port, resend, 1, 60, args.batch))
        if again.errors or again.accepted or again.duplicates != args.resend * args.batch:
            raise RuntimeError(f"resending: {again.accepted} accepted, errors {again.errors}")
        if asyncio.run(stored_counts(owner_dsn, setup.tenant_id)) != wanted:
            raise RuntimeError("resent batches changed the stored counts")
    finally:
        stop_server(server)

    http_rate = tally.accepted / elapsed
    # A fresh day (tomorrow, noon) so the COPY fills a partition of its own.
    noon = datetime.combine(datetime.now(UTC).date(), datetime.min.time(), UTC)
    noon += timedelta(days=1, hours=12)
    records = copy_records(setup.tenant_id, setup.partner_id, tally.accepted, noon)
    copy_s = asyncio.run(copy_phase(owner_dsn, records, noon))
    copy_rate = len(records) / copy_s
    ratio = http_rate / copy_rate

    report: dict[str, Any] = {
        "benchmark": "telemetry ingest: POST /runtime/v1/telemetry vs asyncpg COPY",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "batch": args.batch,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "uvicorn": list(UVICORN_OPTIONS),
            "mean_batch_kib": round(mean_kb, 1),
        },
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "http": {
            "events": tally.accepted,
            "batches": tally.requests,
            "seconds": round(elapsed, 3),
            "events_per_s": round(http_rate),
            "batch_p50_ms": round(1000 * percentile(tally.latencies, 0.50), 2),
            "batch_p99_ms": round(1000 * percentile(tally.latencies, 0.99), 2),
            "server_cpu_pct": round(100 * server_cpu / elapsed, 1),
            "server_cpu_us_per_event": round(1e6 * server_cpu / tally.accepted, 2),
            "postgres_cpu_pct": round(100 * pg_cpu / elapsed, 1),
            "postgres_cpu_us_per_event": round(1e6 * pg_cpu / tally.accepted, 2),
            "machine_cpu_pct": round(100 * machine_cpu / elapsed, 1),
            "machine_busy_before_pct": round(idle_load, 1),
        },
        "copy": {
            "rows": len(records),
            "seconds": round(copy_s, 3),
            "rows_per_s": round(copy_rate),
        },
        "stored": counts,
        "ratio": round(ratio, 4),
        "target": {
            "label": f"HTTP ingest >= {100 * TARGET_RATIO:.0f} % of the COPY rate",
            "measured": f"{100 * ratio:.1f} %",
            "met": ratio >= TARGET_RATIO,
        },
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    h = report["http"]
    print()
    print(
        f"HTTP ingest  {h['events_per_s']:>9,} events/s  ({tally.accepted:,} events in"
        f" {tally.requests} batches, {elapsed:.1f}s; batch p50 {h['batch_p50_ms']} ms,"
        f" p99 {h['batch_p99_ms']} ms)"
    )
    print(
        f"             server {h['server_cpu_pct']}% CPU ({h['server_cpu_us_per_event']} µs/event),"
        f" PostgreSQL {h['postgres_cpu_pct']}% ({h['postgres_cpu_us_per_event']} µs/event),"
        f" machine {h['machine_cpu_pct']}% of one core"
    )
    print(f"COPY         {round(copy_rate):>9,} rows/s    ({len(records):,} rows in {copy_s:.2f}s)")
    target = report["target"]
    print(
        f"ratio        {target['measured']:>9}  target: {target['label']}:"
        f" {'met' if target['met'] else 'MISSED'}"
    )
    print(
        f"stored once: {counts['events']:,} events; rollups count {counts['rollup_5m']:,} (5m),"
        f" {counts['rollup_1h']:,} (1h); {args.resend} batches resent: all duplicates"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        with bench_database("storeops_bench_ingest") as database:
            print(f"created database {database}")
            return bench(args, database, workdir)
    except RuntimeError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
