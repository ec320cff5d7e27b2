"""Load webhook ingress from its own process: signed deliveries, closed loop, raw HTTP/1.1.

Three phases of ``--duration`` seconds each, at ``--concurrency`` connections:

- ``accepted``: every delivery a distinct body (``{"event": n}``), freshly signed: each one is
  verified, recorded and queues a run (202);
- ``replayed``: one signed delivery sent again and again: verified, found as a duplicate,
  answered with the original run (202, ``Idempotent-Replayed``), logged;
- ``rejected``: deliveries signed with a wrong key: verified and refused (401), logged.

The client is ``bench/load.py``'s ``RawConnection`` (asyncio streams, uvloop when installed),
as for the GET and POST scenarios: an ``httpx.AsyncClient`` kept its own core about 90% busy
at 700 deliveries/s while the server's was 70% busy, so it measured the client.

Prints one JSON line: per phase requests/s, p50/p99 latency (ms), status counts, and the
CPU seconds the server (``--server-pid``) and this client used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from load import RawConnection, TransportError, process_cpu_seconds

from domain.triggers import sign


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(fraction * (len(values) - 1))))
    return values[index]


async def _phase(args: argparse.Namespace, phase: str) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    counter = iter(range(10**9))
    replay_body = json.dumps({"event": "replayed"}).encode()
    replay_stamp = str(int(time.time()))
    replay_headers = _signature_headers(args.secret, replay_stamp, replay_body)

    def request() -> tuple[bytes, bytes]:
        if phase == "replayed":
            return replay_body, replay_headers
        raw = json.dumps({"event": next(counter), "phase": phase}).encode()
        key = args.secret if phase == "accepted" else "whsec_wrong_" + "x" * 32
        return raw, _signature_headers(key, str(int(time.time())), raw)

    connections = [RawConnection(args.url, None, 30.0) for _ in range(args.concurrency)]
    try:
        # Warm-up (and, for replays, the original delivery).
        for _ in range(5):
            raw, headers = request()
            await connections[0].request("POST", args.path, raw, headers)
        stop_at = time.perf_counter() + args.duration

        async def worker(connection: RawConnection) -> None:
            while time.perf_counter() < stop_at:
                raw, headers = request()
                started = time.perf_counter()
                try:
                    status, _ = await connection.request("POST", args.path, raw, headers)
                    key = str(status)
                except TransportError:
                    key = "transport-error"
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[key] = statuses.get(key, 0) + 1

        server_cpu = _cpu(args.server_pid)
        client_cpu = time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(worker(connection) for connection in connections))
        elapsed = time.perf_counter() - began
        client_cpu = time.process_time() - client_cpu
        server_after = _cpu(args.server_pid)
    finally:
        for connection in connections:
            await connection.close()
    latencies.sort()
    server_used = None if None in (server_cpu, server_after) else server_after - server_cpu
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "statuses": dict(sorted(statuses.items())),
        "server_cores": None if server_used is None else round(server_used / elapsed, 2),
        "client_cores": round(client_cpu / elapsed, 2),
        "server_cpu_us_per_request": (
            None
            if server_used is None or not latencies
            else round(server_used / len(latencies) * 1e6)
        ),
    }


def _signature_headers(secret: str, stamp: str, raw: bytes) -> bytes:
    return (
        f"X-ScaiCrew-Timestamp: {stamp}\r\nX-ScaiCrew-Signature: {sign(secret, stamp, raw)}\r\n"
    ).encode()


def _cpu(pid: int | None) -> float | None:
    return None if pid is None else process_cpu_seconds(pid)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    return {phase: await _phase(args, phase) for phase in ("accepted", "replayed", "rejected")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True, help="/v1/webhooks/{trigger_id}")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--server-pid", type=int, help="sample this process's CPU time")
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(main_async(args))
    except ImportError:
        result = asyncio.run(main_async(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
