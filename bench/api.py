"""API benchmark: the control plane's tenant read against a bare asyncpg endpoint.

    .venv/bin/python bench/api.py            # or: make bench

1. Creates a throwaway PostgreSQL database ``storeops_bench_<hex>`` (127.0.0.1:5432,
   superuser ``postgres``), migrates it, makes a signing key and bulk-loads 10,000 tenants
   under 20 partners with COPY. The database is dropped at the end, also on failure.
2. Serves the real control plane (``control_plane.app:create_app``) and the bare app
   (``bench/bare_app.py``) with uvicorn, one worker each, ``--loop uvloop --http
   httptools``, on free loopback ports.
3. Drives, from a separate process, ``GET /api/v1/tenants/{id}`` with a retailer_admin
   token per tenant (token and tenant change on every request, rotating over ``--tokens``
   of them) and the bare app's ``GET /tenants/{id}`` (one ``SELECT`` as the table owner)
   over the same ids; also, for information, ``GET /rls/tenants/{id}`` (the control
   plane's database protocol in raw asyncpg: ``BEGIN``, ``set_config``, ``SELECT``,
   ``COMMIT`` as the RLS-bound role). The load generator is wrk with ``bench/rotate.lua``
   when installed, else ``bench/loadgen.py``: fixed connections and duration, a warm-up
   before each run, targets alternated A-B-C, C-B-A so drift hits all alike.
4. Prints req/s, latency percentiles, errors, server CPU per request, the ratio
   control-plane req/s / bare req/s and the control plane's peak resident memory,
   checks them against the targets (ratio >= 50 %, p99 < 20 ms, RSS < 250 MB) and writes
   everything to ``bench/results/api.json``.

Missing a target is reported, never an error: the exit status is non-zero only when
something actually failed (a server did not start, a sanity check failed, a request got
a 4xx/5xx answer or a socket error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
from benchdb import PG_SUPERUSER, bench_database, pg_dsn, sa_url

from control_plane.config import Settings
from control_plane.contracts import uuid7
from control_plane.db import Database
from control_plane.db.migrate import upgrade
from control_plane.identity.admin import ensure_signing_key
from control_plane.identity.keys import KeyRing
from control_plane.identity.principal import Grant, Principal
from control_plane.identity.roles import Role
from control_plane.identity.tokens import TokenService
from control_plane.runner import run_as

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "api.json"
LUA_SCRIPT = BENCH_DIR / "rotate.lua"
LOADGEN = BENCH_DIR / "loadgen.py"

APP_ROLE = "storeops_app"
LOOPBACK = "127.0.0.1"
#: Identical for both servers.
UVICORN_OPTIONS = (
    "--workers", "1", "--loop", "uvloop", "--http", "httptools",
    "--no-access-log", "--log-level", "warning",
)  # fmt: skip

CP, BARE, BARE_RLS = "control_plane", "bare", "bare_rls"
TARGET_RATIO = 0.50
TARGET_P99_MS = 20.0
TARGET_RSS_MB = 250.0


# --- setup: database, data, tokens -------------------------------------------------------


async def load_tenants(dsn: str, partners: int, tenants: int) -> list[tuple[UUID, UUID]]:
    """COPY ``partners`` partners and ``tenants`` tenants in; return (partner, tenant) ids."""
    now = datetime.now(UTC)
    partner_ids = [uuid7() for _ in range(partners)]
    partner_rows = [
        (pid, f"bench-partner-{i:03d}", f"Bench Partner {i}", "msp", "active", "{}", now, now, 1)
        for i, pid in enumerate(partner_ids)
    ]
    tenant_settings = json.dumps(
        {"quotas": {"stores": 250}, "branding": {"primary_color": "#0a7cff"}}
    )
    pairs: list[tuple[UUID, UUID]] = []
    tenant_rows = []
    for i in range(tenants):
        partner_id = partner_ids[i % partners]
        tenant_id = uuid7()
        pairs.append((partner_id, tenant_id))
        tenant_rows.append(
            (
                tenant_id,
                partner_id,
                f"retailer-{i:05d}",
                f"Retailer {i}",
                "active",
                "Europe/Paris",
                "shared_cluster",
                tenant_settings,
                now,
                now,
                1,
            )
        )
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(
                "partners",
                records=partner_rows,
                columns=[
                    "id",
                    "slug",
                    "name",
                    "kind",
                    "status",
                    "settings",
                    "created_at",
                    "updated_at",
                    "version",
                ],
            )
            await conn.copy_records_to_table(
                "tenants",
                records=tenant_rows,
                columns=[
                    "id",
                    "partner_id",
                    "slug",
                    "name",
                    "status",
                    "timezone",
                    "isolation_tier",
                    "settings",
                    "created_at",
                    "updated_at",
                    "version",
                ],
            )
        await conn.execute("ANALYZE partners; ANALYZE tenants")
        count = await conn.fetchval("SELECT count(*) FROM tenants")
    finally:
        await conn.close()
    if count != tenants:
        raise RuntimeError(f"loaded {count} tenants, expected {tenants}")
    return pairs


async def mint_tokens(settings: Settings, pairs: Sequence[tuple[UUID, UUID]]) -> list[str]:
    """One retailer_admin access token per (partner, tenant), signed like the server's."""
    # joserfc flags EdDSA (the project's default algorithm) as deprecated on every use.
    warnings.filterwarnings("ignore", message="EdDSA is deprecated")
    db = Database(settings)
    try:
        tokens = TokenService(settings, KeyRing(db))
        minted = []
        for n, (partner_id, tenant_id) in enumerate(pairs):
            principal = Principal(
                subject=f"user:bench-{n}",
                kind="user",
                name=f"bench retailer admin {n}",
                grants=(Grant(Role.RETAILER_ADMIN, partner_id=partner_id, tenant_id=tenant_id),),
                home_partner_id=partner_id,
                home_tenant_id=tenant_id,
            )
            token, _ = await tokens.issue(principal)
            minted.append(token)
        return minted
    finally:
        await db.dispose()


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
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


def start_server(name: str, app: Sequence[str], env: dict[str, str], workdir: Path) -> Server:
    port = free_port()
    log = workdir / f"{name}.log"
    cmd = [sys.executable, "-m", "uvicorn", *app, "--host", LOOPBACK, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*cmd, *UVICORN_OPTIONS],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(name, process, port, log)


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout:.0f}s:\n{server.log_tail()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


def ensure_alive(*servers: Server) -> None:
    for server in servers:
        code = server.process.poll()
        if code is not None:
            how = f"killed by signal {-code}" if code < 0 else f"exited with {code}"
            raise RuntimeError(f"{server.name} server {how}:\n{server.log_tail()}")


def server_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOREOPS_")}
    env.update(extra)
    return env


# --- measuring the server process ---------------------------------------------------------


def proc_status_kb(pid: int) -> dict[str, int]:
    """VmRSS/VmHWM (kB) from /proc/<pid>/status; empty if the process is gone."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
    except OSError:
        pass
    return found


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rpartition(")")[2].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


class MemoryWatch:
    """Polls a process's resident memory in a thread; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss_kb = 0
        self.hwm_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)

    def sample(self) -> None:
        status = proc_status_kb(self.pid)
        if status:
            self.samples += 1
            self.peak_rss_kb = max(self.peak_rss_kb, status.get("VmRSS", 0))
            self.hwm_kb = max(self.hwm_kb, status.get("VmHWM", 0))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.sample()

    @property
    def peak_mb(self) -> float:
        return max(self.peak_rss_kb, self.hwm_kb) / 1024


# --- load -----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    requests: int
    duration_s: float
    bytes: int
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class Run:
    target: str
    round: int
    result: LoadResult
    server_cpu_s: float

    def as_dict(self) -> dict[str, Any]:
        r = self.result
        return {
            "target": self.target,
            "round": self.round,
            "requests": r.requests,
            "duration_s": round(r.duration_s, 3),
            "rps": round(r.rps, 1),
            "latency_ms": {k: round(v, 3) for k, v in r.latency_ms.items()},
            "errors": r.errors,
            "server_cpu_pct": round(100 * self.server_cpu_s / r.duration_s, 1),
            "server_cpu_ms_per_request": round(1000 * self.server_cpu_s / max(r.requests, 1), 3),
        }


@dataclass
class LoadGenerator:
    kind: str  # "wrk" | "python"
    connections: int
    timeout_s: int = 5
    extra: list[str] = field(default_factory=list)

    def command(self, url: str, requests_file: Path, seconds: int) -> list[str]:
        if self.kind == "wrk":
            return [
                "wrk", "-t1", f"-c{self.connections}", f"-d{seconds}s",
                f"--timeout={self.timeout_s}s", "-s", str(LUA_SCRIPT), url, "--",
                str(requests_file),
            ]  # fmt: skip
        return [
            sys.executable, str(LOADGEN), "--url", url, "--requests", str(requests_file),
            "-c", str(self.connections), "-d", str(seconds), "--timeout", str(self.timeout_s),
        ]  # fmt: skip

    def run(self, url: str, requests_file: Path, seconds: int) -> LoadResult:
        cmd = self.command(url, requests_file, seconds)
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        for line in done.stdout.splitlines():
            if line.startswith("BENCH_JSON "):
                return LoadResult(**json.loads(line.removeprefix("BENCH_JSON ")))
        raise RuntimeError(
            f"load generator failed ({done.returncode}): {' '.join(cmd)}\n"
            f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def pick_load_generator(requested: str, connections: int) -> LoadGenerator:
    if requested in ("auto", "wrk") and shutil.which("wrk"):
        return LoadGenerator("wrk", connections)
    if requested == "wrk":
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install -y wrk)")
    return LoadGenerator("python", connections)


def write_requests(path: Path, lines: Sequence[tuple[str, str]]) -> None:
    path.write_text("".join(f"{target}\t{token}\n" for target, token in lines), "ascii")


# --- checks, summary, report ----------------------------------------------------------------


@dataclass
class Target:
    name: str
    endpoint: str
    server: Server
    requests_file: Path


def sanity_check(
    cp: Server, bare: Server, pairs: Sequence[tuple[UUID, UUID]], tokens: list[str]
) -> None:
    """All endpoints answer the right row; the control plane refuses other tenants."""
    (_, tenant_a), (_, tenant_b) = pairs[0], pairs[1]
    auth = {"Authorization": f"Bearer {tokens[0]}"}
    with httpx.Client(timeout=10.0) as client:
        got = client.get(f"{cp.url}/api/v1/tenants/{tenant_a}", headers=auth)
        if got.status_code != 200 or got.json().get("id") != str(tenant_a):
            raise RuntimeError(f"control plane GET tenant: {got.status_code} {got.text[:300]}")
        other = client.get(f"{cp.url}/api/v1/tenants/{tenant_b}", headers=auth)
        if other.status_code != 404:
            raise RuntimeError(f"control plane served another tenant's row: {other.status_code}")
        anonymous = client.get(f"{cp.url}/api/v1/tenants/{tenant_a}")
        if anonymous.status_code != 401:
            raise RuntimeError(f"control plane without a token: {anonymous.status_code}")
        for path in (f"/tenants/{tenant_a}", f"/rls/tenants/{tenant_a}"):
            base = client.get(f"{bare.url}{path}")
            if base.status_code != 200 or base.json().get("id") != str(tenant_a):
                raise RuntimeError(f"bare app GET {path}: {base.status_code} {base.text[:300]}")
            if set(base.json()) != set(got.json()):
                raise RuntimeError(f"bare app {path} and the control plane differ in fields")


def summarize(runs: Sequence[Run], target: str) -> dict[str, Any]:
    """Aggregate one target's rounds: total req/s, mean p50, worst p99."""
    mine = [r for r in runs if r.target == target]
    requests = sum(r.result.requests for r in mine)
    duration = sum(r.result.duration_s for r in mine)
    cpu = sum(r.server_cpu_s for r in mine)
    errors: dict[str, int] = {}
    for r in mine:
        for key, value in r.result.errors.items():
            errors[key] = errors.get(key, 0) + value
    return {
        "rounds": len(mine),
        "requests": requests,
        "rps": round(requests / duration, 1) if duration else 0.0,
        "p50_ms": round(sum(r.result.latency_ms["p50"] for r in mine) / len(mine), 3),
        "p99_ms": round(max(r.result.latency_ms["p99"] for r in mine), 3),
        "max_ms": round(max(r.result.latency_ms["max"] for r in mine), 3),
        "errors": errors,
        "error_count": sum(errors.values()),
        "server_cpu_pct": round(100 * cpu / duration, 1) if duration else 0.0,
        "server_cpu_ms_per_request": round(1000 * cpu / max(requests, 1), 3),
    }


def check_targets(
    latency: dict[str, dict[str, float]], connections: int, ratio: float, peak_mb: float
) -> dict[str, Any]:
    return {
        "ratio": {
            "label": f"control-plane req/s >= {100 * TARGET_RATIO:.0f} % of bare",
            "measured": f"{100 * ratio:.1f} %",
            "met": ratio >= TARGET_RATIO,
        },
        "p99": {
            "label": f"control-plane p99 < {TARGET_P99_MS:.0f} ms",
            "measured": f"{latency[CP]['p99_ms']:.2f} ms at {connections} connections"
            f" (bare: {latency[BARE]['p99_ms']:.2f} ms)",
            "met": latency[CP]["p99_ms"] < TARGET_P99_MS,
        },
        "rss": {
            "label": f"control-plane RSS < {TARGET_RSS_MB:.0f} MB",
            "measured": f"{peak_mb:.1f} MB peak",
            "met": peak_mb < TARGET_RSS_MB,
        },
    }


def print_report(runs: Sequence[Run], report: dict[str, Any]) -> None:
    header = (
        f"{'target':<14} {'round':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'errors':>7} {'cpu %':>6} {'cpu ms/req':>10}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in runs:
        d = r.as_dict()
        print(
            f"{r.target:<14} {r.round:>5} {d['rps']:>9.1f} {d['latency_ms']['p50']:>8.2f}"
            f" {d['latency_ms']['p99']:>8.2f} {d['latency_ms']['max']:>8.2f}"
            f" {r.result.error_count:>7} {d['server_cpu_pct']:>6.1f}"
            f" {d['server_cpu_ms_per_request']:>10.3f}"
        )
    print("-" * len(header))
    for name, s in report["summary"].items():
        print(
            f"{name:<14} {'all':>5} {s['rps']:>9.1f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f}"
            f" {s['max_ms']:>8.2f} {s['error_count']:>7} {s['server_cpu_pct']:>6.1f}"
            f" {s['server_cpu_ms_per_request']:>10.3f}"
        )
    print("(p50: mean of rounds; p99, max: worst round; cpu: the uvicorn process, both bare")
    print(" targets are one process)")
    memory = report["memory_mb"]
    print(
        f"\ncontrol-plane RSS: idle {memory['idle']:.1f} MB, peak {memory['peak']:.1f} MB"
        f" (VmHWM, startup included), end {memory['end']:.1f} MB;"
        f" {report['config']['tenants']} tenants in the database"
    )
    print(f"ratio control-plane req/s / bare req/s: {100 * report['ratio']:.1f} %")
    if BARE_RLS in report["summary"]:
        rls = report["summary"][BARE_RLS]["rps"]
        print(
            f"   (bare_rls / bare: {100 * rls / max(report['summary'][BARE]['rps'], 1):.1f} %,"
            f" control plane / bare_rls: {100 * report['summary'][CP]['rps'] / max(rls, 1):.1f} %)"
        )
    print()
    for check in report["targets"].values():
        mark = "met    " if check["met"] else "NOT MET"
        print(f"  [{mark}] {check['label']}: {check['measured']}")
    print(f"\nwritten to {RESULTS.relative_to(REPO)}")


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument(
        "--tokens",
        type=int,
        default=1_000,
        help="distinct tenants (one token each) the load rotates over",
    )
    parser.add_argument("--connections", type=int, default=32, help="throughput phase")
    parser.add_argument(
        "--latency-connections",
        type=int,
        default=8,
        help="latency phase: the p99 target is judged at this concurrency, below saturation",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=2, help="seconds before each run")
    parser.add_argument("--rounds", type=int, default=2, help="measured runs per target")
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--no-rls-baseline",
        dest="rls_baseline",
        action="store_false",
        help="skip the informational bare_rls target (BEGIN, set_config, SELECT, COMMIT)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--hold",
        type=int,
        default=0,
        metavar="SECONDS",
        help="keep the servers up this long before the runs (to attach a profiler)",
    )
    args = parser.parse_args(argv)
    if not 2 <= args.tokens <= args.tenants:
        parser.error("--tokens must be between 2 and --tenants")
    return args


def order(names: Sequence[str], rounds: int) -> list[tuple[str, int]]:
    """A-B-C, C-B-A, A-B-C, ...: drift over the run hits every target alike."""
    plan: list[tuple[str, int]] = []
    for n in range(1, rounds + 1):
        sequence = list(names) if n % 2 else list(reversed(names))
        plan.extend((name, n) for name in sequence)
    return plan


def prepare(
    args: argparse.Namespace, settings: Settings, database: str
) -> tuple[list[tuple[UUID, UUID]], list[str]]:
    """Migrate, make a signing key, load the tenants; mint tokens for a sample of them."""
    upgrade(settings)
    asyncio.run(run_as(settings, lambda ctx: ensure_signing_key(ctx, settings)))
    t0 = time.monotonic()
    pairs = asyncio.run(load_tenants(pg_dsn(PG_SUPERUSER, database), args.partners, args.tenants))
    print(f"loaded {args.partners} partners, {len(pairs)} tenants in {time.monotonic() - t0:.2f}s")
    chosen = random.Random(args.seed).sample(pairs, args.tokens)
    tokens = asyncio.run(mint_tokens(settings, chosen))
    print(f"minted {len(tokens)} retailer_admin tokens")
    return chosen, tokens


def start_servers(settings: Settings, database: str, workdir: Path) -> tuple[Server, Server]:
    cp_env = server_env(
        {
            "STOREOPS_HOME": str(settings.home),
            "STOREOPS_DATABASE_URL": settings.database_url,
            "STOREOPS_ADMIN_DATABASE_URL": settings.admin_database_url,
            "STOREOPS_PUBLIC_URL": settings.public_url,
            "STOREOPS_LOG_LEVEL": "WARNING",
            "STOREOPS_REDIS_URL": "",
        }
    )
    bare_env = server_env(
        {
            "BENCH_BARE_DSN": pg_dsn(PG_SUPERUSER, database),
            "BENCH_BARE_RLS_DSN": pg_dsn(APP_ROLE, database),
            "BENCH_BARE_POOL_SIZE": str(settings.db_pool_size),
        }
    )
    cp = start_server(CP, ["--factory", "control_plane.app:create_app"], cp_env, workdir)
    try:
        bare = start_server(
            BARE,
            ["--app-dir", str(BENCH_DIR), "--factory", "bare_app:create_app"],
            bare_env,
            workdir,
        )
    except BaseException:
        stop_server(cp)
        raise
    return cp, bare


def bench(args: argparse.Namespace, database: str, workdir: Path) -> int:
    started = time.monotonic()
    settings = Settings(
        home=workdir / "home",
        database_url=sa_url(APP_ROLE, database),
        admin_database_url=sa_url(PG_SUPERUSER, database),
        redis_url="",
        log_level="WARNING",
    )
    chosen, tokens = prepare(args, settings, database)
    files = {name: workdir / f"{name}.requests" for name in (CP, BARE, BARE_RLS)}
    write_requests(
        files[CP],
        [(f"/api/v1/tenants/{t}", tok) for (_, t), tok in zip(chosen, tokens, strict=True)],
    )
    write_requests(files[BARE], [(f"/tenants/{t}", "") for _, t in chosen])
    write_requests(files[BARE_RLS], [(f"/rls/tenants/{t}", "") for _, t in chosen])

    cp, bare = start_servers(settings, database, workdir)
    watch = MemoryWatch(cp.process.pid)
    try:
        for server in (cp, bare):
            wait_ready(server)
        sanity_check(cp, bare, chosen, tokens)
        watch.start()
        idle_mb = proc_status_kb(cp.process.pid).get("VmRSS", 0) / 1024
        targets = [
            Target(CP, "GET /api/v1/tenants/{id}", cp, files[CP]),
            Target(BARE, "GET /tenants/{id}", bare, files[BARE]),
        ]
        if args.rls_baseline:
            targets.append(Target(BARE_RLS, "GET /rls/tenants/{id}", bare, files[BARE_RLS]))
        if args.hold:
            print(f"holding {args.hold}s; the servers and their request files:")
            for t in targets:
                print(f"  {t.name} {t.server.url} (pid {t.server.process.pid}) {t.requests_file}")
            time.sleep(args.hold)

        loadgen = pick_load_generator(args.loadgen, args.connections)
        print(
            f"load: {loadgen.kind}, {args.connections} connections,"
            f" {args.warmup}s warm-up + {args.duration}s per run, {args.rounds} rounds per target"
        )
        by_name = {t.name: t for t in targets}

        def drive(target: Target, seconds: int) -> LoadResult:
            ensure_alive(cp, bare)
            try:
                return loadgen.run(target.server.url, target.requests_file, seconds)
            except RuntimeError:
                ensure_alive(cp, bare)  # a dead server explains a failed load best
                raise

        runs: list[Run] = []
        for name, n in order([t.name for t in targets], args.rounds):
            target = by_name[name]
            pid = target.server.process.pid
            if args.warmup:
                drive(target, args.warmup)
            cpu_before = proc_cpu_seconds(pid)
            result = drive(target, args.duration)
            runs.append(Run(name, n, result, proc_cpu_seconds(pid) - cpu_before))
            print(
                f"  {name:<14} round {n}: {result.rps:8.1f} req/s,"
                f" p99 {result.latency_ms['p99']:.2f} ms, errors {result.error_count}"
            )
            ensure_alive(cp, bare)

        # Closed-loop latency is ~connections / throughput, so p99 at saturation measures
        # the queue, not the service: judge the p99 target at a moderate concurrency.
        latency_gen = pick_load_generator(args.loadgen, args.latency_connections)
        print(f"latency: {latency_gen.kind}, {args.latency_connections} connections")
        latency: dict[str, dict[str, float]] = {}
        for name in (CP, BARE):
            target = by_name[name]
            if args.warmup:
                latency_gen.run(target.server.url, target.requests_file, args.warmup)
            result = latency_gen.run(target.server.url, target.requests_file, args.duration)
            latency[name] = {
                "rps": round(result.rps, 1),
                "p50_ms": round(result.latency_ms["p50"], 3),
                "p99_ms": round(result.latency_ms["p99"], 3),
                "errors": result.error_count,
            }
            print(
                f"  {name:<14} {result.rps:8.1f} req/s, p50 {result.latency_ms['p50']:.2f} ms,"
                f" p99 {result.latency_ms['p99']:.2f} ms, errors {result.error_count}"
            )
            ensure_alive(cp, bare)
        watch.stop()
        end_mb = proc_status_kb(cp.process.pid).get("VmRSS", 0) / 1024
    finally:
        watch.stop()
        logs = {server.name: server.log_tail() for server in (cp, bare)}
        for server in (cp, bare):
            stop_server(server)

    summary = {t.name: summarize(runs, t.name) for t in targets}
    ratio = round(summary[CP]["rps"] / summary[BARE]["rps"], 4) if summary[BARE]["rps"] else 0.0
    report: dict[str, Any] = {
        "benchmark": "GET one tenant by id: control plane vs bare asyncpg",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "partners": args.partners,
            "tenants": args.tenants,
            "tokens": args.tokens,
            "connections": args.connections,
            "latency_connections": args.latency_connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "loadgen": loadgen.kind,
            "uvicorn": list(UVICORN_OPTIONS),
            "db_pool_size": settings.db_pool_size,
            "endpoints": {t.name: t.endpoint for t in targets},
        },
        "environment": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "runs": [r.as_dict() for r in runs],
        "summary": summary,
        "latency": latency,
        "ratio": ratio,
        "memory_mb": {
            "idle": round(idle_mb, 1),
            "peak": round(watch.peak_mb, 1),
            "end": round(end_mb, 1),
            "samples": watch.samples,
        },
        "targets": check_targets(latency, args.latency_connections, ratio, watch.peak_mb),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_report(runs, report)

    failed = [name for name, s in summary.items() if s["error_count"]]
    failed += [name for name, s in latency.items() if s["errors"] and name not in failed]
    for name in failed:
        print(
            f"\nERROR: {name}: {summary[name]['errors']} (latency phase:"
            f" {latency.get(name, {}).get('errors', 0)})",
            file=sys.stderr,
        )
        server_name = CP if name == CP else BARE
        print(f"{server_name} log (tail):\n{logs[server_name]}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    try:
        with bench_database() as database:
            print(f"created database {database}")
            return bench(args, database, workdir)
    except RuntimeError as exc:  # a failure the bench diagnosed: no traceback needed
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
