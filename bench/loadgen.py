"""Fallback load generator for ``bench/api.py`` when ``wrk`` is not installed.

Closed loop like wrk: ``--connections`` keep-alive HTTP/1.1 connections, each sending its
next request as soon as the previous response is read, for ``--duration`` seconds. It
speaks raw asyncio streams (uvloop when available) rather than an HTTP client library, so
the generator costs as little CPU as possible next to the server it measures. Prints one
``BENCH_JSON {...}`` line with the same fields as ``bench/rotate.lua``.

    python bench/loadgen.py --url http://127.0.0.1:8000 --requests FILE -c 32 -d 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    bytes: int = 0
    connect: int = 0
    read: int = 0
    write: int = 0
    status: int = 0
    timeout: int = 0


def load_requests(path: str, host: str) -> list[bytes]:
    """One raw request per ``<path>\\t<token>`` line of ``path``."""
    prepared: list[bytes] = []
    with open(path, encoding="ascii") as fh:
        for line in fh:
            target, _, token = line.rstrip("\n").partition("\t")
            if not target:
                continue
            auth = f"Authorization: Bearer {token}\r\n" if token else ""
            prepared.append(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode())
    if not prepared:
        raise SystemExit(f"no requests in {path}")
    return prepared


async def read_response(reader: asyncio.StreamReader) -> tuple[int, int, bool]:
    """Read one response; return (status, bytes read, whether the server closes)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, chunked, close = 0, False, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
        elif name == "connection" and value.strip().lower() == "close":
            close = True
    size = len(head)
    if chunked:
        while True:
            size_line = await reader.readuntil(b"\r\n")
            chunk = int(size_line.split(b";", 1)[0], 16)
            size += len(size_line) + chunk + 2
            await reader.readexactly(chunk + 2)
            if chunk == 0:
                break
    elif length:
        await reader.readexactly(length)
        size += length
    return status, size, close


async def connection(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    deadline: float,
    limit_s: float,
    tally: Tally,
) -> None:
    index = offset
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.perf_counter() < deadline:
        if streams is None:
            try:
                streams = await asyncio.wait_for(asyncio.open_connection(host, port), limit_s)
            except (OSError, TimeoutError):
                tally.connect += 1
                await asyncio.sleep(0.05)
                continue
        reader, writer = streams
        request = requests[index % len(requests)]
        index += 1
        started = time.perf_counter()
        try:
            writer.write(request)
        except OSError:
            tally.write += 1
            streams = None
            continue
        try:
            status, size, close = await asyncio.wait_for(read_response(reader), limit_s)
        except TimeoutError:
            tally.timeout += 1
            writer.close()
            streams = None
            continue
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            tally.read += 1
            writer.close()
            streams = None
            continue
        tally.latencies.append(time.perf_counter() - started)
        tally.bytes += size
        if status > 399:  # the same rule as wrk's "Non-2xx or 3xx responses"
            tally.status += 1
        if close:
            writer.close()
            streams = None
    if streams is not None:
        streams[1].close()


def percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    rank = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    requests = load_requests(args.requests, f"{host}:{port}")
    tally = Tally()
    started = time.perf_counter()
    deadline = started + args.duration
    step = max(1, len(requests) // args.connections)
    await asyncio.gather(
        *(
            connection(host, port, requests, i * step, deadline, args.timeout, tally)
            for i in range(args.connections)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(x * 1000 for x in tally.latencies)
    return {
        "requests": len(ordered),
        "duration_s": elapsed,
        "bytes": tally.bytes,
        "errors": {
            "connect": tally.connect,
            "read": tally.read,
            "write": tally.write,
            "status": tally.status,
            "timeout": tally.timeout,
        },
        "latency_ms": {
            "mean": statistics.fmean(ordered) if ordered else 0.0,
            "p50": percentile(ordered, 50),
            "p90": percentile(ordered, 90),
            "p99": percentile(ordered, 99),
            "max": ordered[-1] if ordered else 0.0,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--requests", required=True, help="file of '<path>\\t<token>' lines")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(run(args))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
