"""Live-stream fan-out load: many SSE subscribers of one workspace, run.changed delivery latency.

Run by ``bench/run.py --scenario stream`` (its own process, so the client does not share the
server's event loop):

1. ``--subscribers`` raw asyncio HTTP/1.1 connections open ``GET /v1/stream`` with the
   workspace's session token (in batches, so the accept queue is not flooded) and wait for the
   stream's first line (the server subscribes them before it answers).
2. ``--signals`` runs are started one after another (``POST /v1/members/{id}/runs``); each
   produces three ``run.changed`` events (queued, running, succeeded). The next run starts once
   every subscriber has seen the previous one's ``succeeded`` (or ``--deadline`` passed).
3. Delivery latency of every event at every subscriber = the client's wall clock when the event's
   last line arrived minus the event's ``at`` (the server's wall clock just before the commit
   that produced it; same machine, same clock). Every subscriber must see the events of the
   run in order, once each, with consecutive ids: anything else is counted as a problem.

The last line of stdout is the JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from load import percentile, process_cpu_seconds


class Subscriber:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.seen: dict[str, list[str]] = {}  # run id -> statuses
        self.ids: list[int] = []
        self.problems: list[str] = []
        self.ready = asyncio.Event()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self, host: str, port: int, token: str) -> None:
        self.reader, self.writer = await asyncio.open_connection(host, port, limit=1 << 20)
        self.writer.write(
            (
                f"GET /v1/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await self.writer.drain()
        status = await self.reader.readline()
        if b" 200 " not in status:
            raise RuntimeError(f"stream answered {status!r}")
        while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # headers

    async def follow(self) -> None:
        assert self.reader is not None
        chunked = True  # uvicorn streams with Transfer-Encoding: chunked
        event: dict[str, str] = {}
        buffer = b""
        while True:
            if chunked:
                size_line = await self.reader.readline()
                if not size_line:
                    return
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    return
                chunk = await self.reader.readexactly(size + 2)
                buffer += chunk[:-2]
            lines = buffer.split(b"\n")
            buffer = lines.pop()
            for raw in lines:
                line = raw.decode().rstrip("\r")
                if line == "":
                    if "data" in event:
                        self._event(event, time.time())
                    event = {}
                elif line.startswith("retry:"):
                    self.ready.set()
                elif not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    event[name] = value

    def _event(self, event: dict[str, str], received: float) -> None:
        if event.get("event") != "run.changed":
            return
        data = json.loads(event["data"])
        at = datetime.fromisoformat(data["at"].replace("Z", "+00:00")).timestamp()
        self.latencies.append(received - at)
        seq = int(event["id"])
        if self.ids and seq != self.ids[-1] + 1:
            self.problems.append(f"id {seq} after {self.ids[-1]}")
        self.ids.append(seq)
        self.seen.setdefault(data["run_id"], []).append(data["status"])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def start_run(host: str, port: int, token: str, member_id: str) -> str:
    reader, writer = await asyncio.open_connection(host, port)
    body = b'{"input": {}}'
    writer.write(
        (
            f"POST /v1/members/{member_id}/runs HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    if b" 202 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"start run: {head[:200]!r}")
    return str(json.loads(payload)["id"])


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    subscribers = [Subscriber() for _ in range(args.subscribers)]
    opened = time.monotonic()
    tasks = []
    for start in range(0, len(subscribers), args.batch):
        batch = subscribers[start : start + args.batch]
        await asyncio.gather(*(s.open(host, port, args.token) for s in batch))
        tasks += [asyncio.create_task(s.follow()) for s in batch]
    await asyncio.wait_for(
        asyncio.gather(*(s.ready.wait() for s in subscribers)), timeout=args.deadline
    )
    open_seconds = time.monotonic() - opened
    cpu_before = process_cpu_seconds(args.server_pid) if args.server_pid else None
    measured = time.monotonic()
    client_cpu_before = time.process_time()
    run_ids = []
    incomplete = 0
    for _ in range(args.signals):
        run_id = await start_run(host, port, args.token, args.member_id)
        run_ids.append(run_id)
        deadline = time.monotonic() + args.deadline
        while not all("succeeded" in s.seen.get(run_id, []) for s in subscribers):
            if time.monotonic() > deadline:
                incomplete += 1
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(args.pause)
    elapsed = time.monotonic() - measured
    client_cpu = round((time.process_time() - client_cpu_before) / elapsed, 2)
    cpu_after = process_cpu_seconds(args.server_pid) if args.server_pid else None
    for s in subscribers:
        s.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    latencies = sorted(x for s in subscribers for x in s.latencies)
    problems = [p for s in subscribers for p in s.problems]
    wrong = sum(
        1
        for s in subscribers
        for run_id in run_ids
        if s.seen.get(run_id) != ["queued", "running", "succeeded"]
    )

    def ms(fraction: float) -> float | None:
        value = percentile(latencies, fraction)
        return None if value is None else round(value * 1000, 2)

    server_cpu = None
    if cpu_before is not None and cpu_after is not None:
        server_cpu = round((cpu_after - cpu_before) / elapsed, 2)
    return {
        "subscribers": len(subscribers),
        "runs": len(run_ids),
        "events_expected": len(subscribers) * len(run_ids) * 3,
        "events_received": len(latencies),
        "subscribers_with_wrong_timeline": wrong,
        "runs_not_seen_by_all": incomplete,
        "problems": problems[:20],
        "open_seconds": round(open_seconds, 2),
        "latency_ms": {
            "p50": ms(0.5),
            "p90": ms(0.9),
            "p99": ms(0.99),
            "max": round(latencies[-1] * 1000, 2) if latencies else None,
        },
        "server_cpu": server_cpu,
        "client_cpu": client_cpu,
        "measured_seconds": round(elapsed, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--member-id", required=True)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--signals", type=int, default=20, help="runs started (3 events each)")
    parser.add_argument("--batch", type=int, default=50, help="connections opened at once")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between runs")
    parser.add_argument("--deadline", type=float, default=60.0)
    parser.add_argument("--server-pid", type=int)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
