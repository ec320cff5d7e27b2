"""Closed-loop HTTP load generator, run by bench/run.py as a separate process.

``concurrency`` workers each keep one HTTP/1.1 keep-alive connection and send their next
request as soon as the previous one answers. The first ``warmup`` seconds are discarded;
throughput and latencies count the requests that complete inside the following ``duration``
seconds. Any non-2xx answer or transport error, in either phase, is an error. The result is
one JSON object on stdout.

Clients (``--client``):

- ``raw`` (default): a minimal HTTP/1.1 client on asyncio streams (uvloop when installed). The
  requests are prebuilt bytes and only the status line, headers and body are parsed, so one
  core drives well over a thousand requests/s and the client stays out of the way of the server.
- ``httpx``: one shared ``httpx.AsyncClient``. Convenient, but on a 2-core machine it saturates
  its core at about 600 requests/s, before the server does (see ``client_cpu``).

Scenarios:

- ``get_member``: ``GET /v1/members/{member_id}``
- ``create_crew``: ``POST /v1/crews`` with a name unique to the run, worker and request
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` (all its threads), from /proc; None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    # After "pid (comm) " the fields start at "state" (field 3): utime is 14, stime is 15.
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_cpu_seconds() -> float | None:
    """Busy CPU seconds of the whole machine (all cores, all processes), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    busy = sum(values[:8]) - values[3] - values[4]
    return busy / _CLK_TCK


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by every process, with a short command line."""
    snapshot = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        seconds = process_cpu_seconds(pid)
        if seconds is None:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            command = ""
        snapshot[pid] = (command[:100] or f"pid {pid}", seconds)
    return snapshot


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, -(-int(fraction * 1_000_000) * len(sorted_values) // 1_000_000))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Recorder:
    def __init__(self, warm_end: float, end: float) -> None:
        self.warm_end = warm_end
        self.end = end
        self.latencies: list[float] = []
        self.completed_total = 0
        self.errors_total = 0
        self.errors_in_window = 0
        self.status_counts: dict[str, int] = {}
        self.error_samples: list[str] = []

    def record(self, started: float, finished: float, status: int | None, detail: str) -> None:
        self.completed_total += 1
        key = str(status) if status is not None else "transport-error"
        self.status_counts[key] = self.status_counts.get(key, 0) + 1
        in_window = self.warm_end <= finished <= self.end
        ok = status is not None and 200 <= status < 300
        if not ok:
            self.errors_total += 1
            if in_window:
                self.errors_in_window += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{key}: {detail[:300]}")
        if in_window and ok:  # throughput and latencies count successful requests only
            self.latencies.append(finished - started)


class TransportError(Exception):
    pass


class RawConnection:
    """One HTTP/1.1 keep-alive connection; reconnects when the server closes it."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        parsed = urlsplit(url)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 80
        self.timeout = timeout
        authorization = "" if token is None else f"Authorization: Bearer {token}\r\n"
        self.head = (
            f"Host: {self.host}:{self.port}\r\n"
            f"{authorization}"
            "Accept: application/json\r\n"
            "User-Agent: scaicrew-bench\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, body: bytes | None, headers: bytes = b""
    ) -> tuple[int, bytes]:
        """Send one request (``headers``: more header lines, each ending in CRLF) and read
        its answer: (status, body).

        :raises TransportError: the connection failed, timed out or answered garbage.
        """
        try:
            async with asyncio.timeout(self.timeout):
                return await self._request(method, path, body, headers)
        except (
            TimeoutError,
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            IndexError,
        ) as exc:
            await self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def _request(
        self, method: str, path: str, body: bytes | None, headers: bytes
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        extra = b""
        if body is not None:
            extra = b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.writer.write(
            b"%s %s HTTP/1.1\r\n" % (method.encode(), path.encode())
            + self.head
            + headers
            + extra
            + b"\r\n"
            + (body or b"")
        )
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length = None
        chunked = close = False
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size + 2))
            payload = b"".join(p[:-2] for p in parts)
        elif length is not None:
            payload = await self.reader.readexactly(length)
        else:
            payload = await self.reader.read()
            close = True
        if close:
            await self.close()
        return status, payload


def request_for(args: argparse.Namespace, index: int, sequence: int) -> tuple[str, str, Any]:
    if args.scenario == "get_member":
        return "GET", f"/v1/members/{args.member_id}", None
    return "POST", "/v1/crews", {"name": f"bench-{args.tag}-{index}-{sequence}"}


async def raw_worker(index: int, args: argparse.Namespace, recorder: Recorder) -> None:
    connection = RawConnection(args.url, args.token, args.timeout)
    sequence = 0
    try:
        while time.perf_counter() < recorder.end:
            sequence += 1
            method, path, payload = request_for(args, index, sequence)
            body = None if payload is None else json.dumps(payload).encode()
            started = time.perf_counter()
            try:
                status, content = await connection.request(method, path, body)
                finished = time.perf_counter()
                detail = "" if 200 <= status < 300 else content.decode(errors="replace")
                recorder.record(started, finished, status, detail)
            except TransportError as exc:
                recorder.record(started, time.perf_counter(), None, str(exc))
    finally:
        await connection.close()


async def httpx_worker(
    index: int, client: httpx.AsyncClient, args: argparse.Namespace, recorder: Recorder
) -> None:
    sequence = 0
    while time.perf_counter() < recorder.end:
        sequence += 1
        method, path, payload = request_for(args, index, sequence)
        started = time.perf_counter()
        try:
            response = await client.request(method, path, json=payload)
            finished = time.perf_counter()
            detail = "" if 200 <= response.status_code < 300 else response.text
            recorder.record(started, finished, response.status_code, detail)
        except httpx.HTTPError as exc:
            recorder.record(started, time.perf_counter(), None, f"{type(exc).__name__}: {exc}")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    headers = {"Authorization": f"Bearer {args.token}", "Accept": "application/json"}
    async with httpx.AsyncClient(
        base_url=args.url, headers=headers, limits=limits, timeout=args.timeout
    ) as client:
        start = time.perf_counter()
        recorder = Recorder(start + args.warmup, start + args.warmup + args.duration)
        marks: dict[str, float | None] = {}

        async def mark_window() -> None:
            await asyncio.sleep(max(0.0, recorder.warm_end - time.perf_counter()))
            marks["client_cpu_start"] = time.process_time()
            marks["machine_cpu_start"] = machine_cpu_seconds()
            marks["server_cpu_start"] = (
                process_cpu_seconds(args.server_pid) if args.server_pid else None
            )
            await asyncio.sleep(max(0.0, recorder.end - time.perf_counter()))
            marks["client_cpu_end"] = time.process_time()
            marks["machine_cpu_end"] = machine_cpu_seconds()
            marks["server_cpu_end"] = (
                process_cpu_seconds(args.server_pid) if args.server_pid else None
            )

        if args.client == "raw":
            workers = [raw_worker(i, args, recorder) for i in range(args.concurrency)]
        else:
            workers = [httpx_worker(i, client, args, recorder) for i in range(args.concurrency)]
        await asyncio.gather(mark_window(), *workers)

    latencies = sorted(recorder.latencies)
    window = args.duration

    def cpu_seconds(prefix: str) -> float | None:
        begin, end = marks.get(f"{prefix}_cpu_start"), marks.get(f"{prefix}_cpu_end")
        if begin is None or end is None:
            return None
        return round(end - begin, 3)

    def utilisation(prefix: str) -> float | None:
        used = cpu_seconds(prefix)
        return None if used is None else round(used / window, 3)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    result: dict[str, Any] = {
        "scenario": args.scenario,
        "client": args.client,
        "concurrency": args.concurrency,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "requests": len(latencies),
        "rps": round(len(latencies) / window, 1),
        "latency_ms": {
            "p50": ms(percentile(latencies, 0.50)),
            "p90": ms(percentile(latencies, 0.90)),
            "p99": ms(percentile(latencies, 0.99)),
            "max": ms(latencies[-1] if latencies else None),
            "mean": ms(sum(latencies) / len(latencies) if latencies else None),
        },
        "errors": recorder.errors_in_window,
        "errors_total": recorder.errors_total,
        "requests_total": recorder.completed_total,
        "status_counts": recorder.status_counts,
        "error_samples": recorder.error_samples,
        # CPU seconds per wall second over the measured window (1.0 = one core busy).
        "server_cpu": utilisation("server"),
        "client_cpu": utilisation("client"),
        "machine_cpu": utilisation("machine"),
        "cpu_seconds": {p: cpu_seconds(p) for p in ("server", "client", "machine")},
        "cpus": os.cpu_count(),
    }
    if args.latencies:
        result["latencies_ms"] = [round(value * 1000, 3) for value in latencies]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--scenario", required=True, choices=["get_member", "create_crew"])
    parser.add_argument("--token", required=True)
    parser.add_argument("--member-id")
    parser.add_argument("--tag", default=str(os.getpid()), help="makes crew names unique")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--server-pid", type=int, help="sample this process's CPU time")
    parser.add_argument("--latencies", action="store_true", help="include every latency")
    args = parser.parse_args()
    if args.scenario == "get_member" and not args.member_id:
        parser.error("--member-id is required for get_member")
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
