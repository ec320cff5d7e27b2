"""Load webhook ingress from its own process: signed deliveries, closed loop, asyncio + httpx.

Three phases of ``--duration`` seconds each, at ``--concurrency`` connections:

- ``accepted``: every delivery a distinct body (``{"event": n}``), freshly signed: each one is
  verified, recorded and queues a run (202);
- ``replayed``: one signed delivery sent again and again: verified, found as a duplicate,
  answered with the original run (202, ``Idempotent-Replayed``), logged;
- ``rejected``: deliveries signed with a wrong key: verified and refused (401), logged.

Prints one JSON line: requests/s, p50/p99 latency (ms) and status counts per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from domain.triggers import sign


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(fraction * (len(values) - 1))))
    return values[index]


async def _phase(args: argparse.Namespace, phase: str) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(10**9))
    replay_body = json.dumps({"event": "replayed"}).encode()
    replay_stamp = str(int(time.time()))
    replay_headers = {
        "Content-Type": "application/json",
        "X-ScaiCrew-Timestamp": replay_stamp,
        "X-ScaiCrew-Signature": sign(args.secret, replay_stamp, replay_body),
    }

    def request() -> tuple[bytes, dict[str, str]]:
        if phase == "replayed":
            return replay_body, replay_headers
        raw = json.dumps({"event": next(counter), "phase": phase}).encode()
        stamp = str(int(time.time()))
        key = args.secret if phase == "accepted" else "whsec_wrong_" + "x" * 32
        return raw, {
            "Content-Type": "application/json",
            "X-ScaiCrew-Timestamp": stamp,
            "X-ScaiCrew-Signature": sign(key, stamp, raw),
        }

    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=30) as client:
        # Warm-up (and, for replays, the original delivery).
        for _ in range(5):
            raw, headers = request()
            await client.post(args.path, content=raw, headers=headers)
        stop_at = time.perf_counter() + args.duration

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                raw, headers = request()
                started = time.perf_counter()
                response = await client.post(args.path, content=raw, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": _percentile(latencies, 0.50),
        "p99_ms": _percentile(latencies, 0.99),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    return {phase: await _phase(args, phase) for phase in ("accepted", "replayed", "rejected")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", required=True, help="/v1/webhooks/{trigger_id}")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
