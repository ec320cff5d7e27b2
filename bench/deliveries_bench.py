"""The ``deliveries`` scenario of ``make bench``: signed subscription deliveries on PostgreSQL.

For one and then two delivery processes (``scaicrew worker`` with
``SUBSCRIPTION_DELIVERY_THREADS``), each on a fresh PostgreSQL database:

1. ``--deliveries-subscriptions`` subscriptions of one workspace ask for ``trigger.fired`` and
   point at a local receiver (a threaded HTTP server in this process) that verifies every
   signature with the webhook ingress's own check and records each receipt;
2. **throughput**: ``--deliveries-events`` events are committed to the workspace event log
   before the workers start; deliveries/s is every delivery received over the time from the
   workers' start to the last receipt;
3. **latency**: with the workers idle, ``--deliveries-latency-events`` events are committed one
   at a time; commit-to-receipt is the receiver's clock at receipt minus the event's ``time``
   (its commit), p50/p99.

Unless every delivery arrived exactly with a valid signature, the bench prints
``!!! BENCH INVALID``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from load import percentile
from run import (
    Child,
    _fmt,
    bench_settings,
    postgres_database,
    seed,
    server_environment,
    worker_command,
)

DELIVERY_THREADS = 4


class Receiver:
    """Verifies each delivery's signature and records (subscription, event id, latency)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}
        self.lock = threading.Lock()
        self.received: list[tuple[str, str, float, float]] = []  # sub, event, at, latency s
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                from domain.triggers.webhook_signature import refusal

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = datetime.now(UTC)
                sub = self.path.rsplit("/", 1)[-1]
                secret = receiver.secrets.get(sub, "")
                why = refusal(
                    secret,
                    self.headers.get("X-ScaiCrew-Timestamp", ""),
                    self.headers.get("X-ScaiCrew-Signature", ""),
                    body,
                    now,
                )
                event = json.loads(body)
                sent = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
                with receiver.lock:
                    if why is not None:
                        receiver.bad_signatures += 1
                    receiver.received.append(
                        (sub, event["id"], time.monotonic(), (now - sent).total_seconds())
                    )
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/deliveries/{name}"

    def count(self) -> int:
        with self.lock:
            return len(self.received)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _append_events(database: Any, workspace_id: str, first: int, count: int) -> None:
    from domain.kernel import Signal

    for start in range(first, first + count, 100):
        with database(write=True) as tx:
            for n in range(start, min(start + 100, first + count)):
                tx.record(Signal(workspace_id, "trigger.fired", {"n": n, "source": "bench"}))
            tx.commit()


def _wait(receiver: Receiver, expected: int, deadline_s: float) -> float:
    deadline = time.monotonic() + deadline_s
    while receiver.count() < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    return time.monotonic()


def _measure(url: str, workdir: Path, args: argparse.Namespace, processes: int) -> dict[str, Any]:
    from domain.database import Database
    from domain.kernel import Actor, Role, new_id
    from scaicrew.app import build_use_cases

    workspace_id = new_id("wsp")
    seed(url, workspace_id)
    receiver = Receiver()
    allowed = f"127.0.0.1:{receiver.port}"
    database = Database(url)
    children: list[Child] = []
    try:
        settings = bench_settings(url).with_changes(subscription_allowed_hosts=allowed)
        use_cases = build_use_cases(settings, database)
        actor = Actor(workspace_id=workspace_id, subject="bench-user", role=Role.ADMIN)
        for index in range(args.deliveries_subscriptions):
            name = f"s{index}"
            subscription, secret = use_cases.subscriptions.create_subscription(
                actor, url=receiver.url(name), event_types=["trigger.fired"]
            )
            receiver.secrets[name] = secret
        events = args.deliveries_events
        _append_events(database, workspace_id, 0, events)
        expected = events * args.deliveries_subscriptions
        env = server_environment(
            url,
            {
                "SUBSCRIPTION_ALLOWED_HOSTS": allowed,
                "SUBSCRIPTION_DELIVERY_THREADS": str(DELIVERY_THREADS),
                "SUBSCRIPTION_POLL_SECONDS": "0.05",
                "WORKER_POLL_SECONDS": "1",
            },
        )
        started = time.monotonic()
        for index in range(processes):
            children.append(
                Child(f"deliveries-{processes}-{index}", worker_command(1), env, workdir)
            )
        for child in children:
            child.wait_for_output("worker started")
        finished = _wait(receiver, expected, args.deliveries_deadline)
        backlog = receiver.count()
        with receiver.lock:
            last = max((r[2] for r in receiver.received), default=finished)
        elapsed = max(last - started, 1e-6)
        # Latency: the workers are idle now; one event at a time.
        latency_events = args.deliveries_latency_events
        with receiver.lock:
            receiver.received.clear()
        for n in range(latency_events):
            _append_events(database, workspace_id, events + n, 1)
            _wait(receiver, (n + 1) * args.deliveries_subscriptions, 10.0)
            time.sleep(0.02)
        with receiver.lock:
            latencies = [r[3] * 1000 for r in receiver.received]
            pairs = [(r[0], r[1]) for r in receiver.received]
        latency_expected = latency_events * args.deliveries_subscriptions
        gone = [c.name for c in children if c.process.poll() is not None]
    finally:
        for child in children:
            child.stop()
        receiver.close()
        database.dispose()
    return {
        "processes": processes,
        "delivery_threads_per_process": DELIVERY_THREADS,
        "subscriptions": args.deliveries_subscriptions,
        "deliveries_expected": expected,
        "deliveries_received": backlog,
        "deliveries_per_s": round(backlog / elapsed, 1),
        "latency_deliveries_expected": latency_expected,
        "latency_deliveries_received": len(latencies),
        "latency_duplicates": len(pairs) - len(set(pairs)),
        "latency_ms": {
            "p50": _round(percentile(sorted(latencies), 0.5)),
            "p99": _round(percentile(sorted(latencies), 0.99)),
            "max": _round(max(latencies) if latencies else None),
        },
        "bad_signatures": receiver.bad_signatures,
        "exited": gone,
        "logs": {c.name: c.log()[-2000:] for c in children if c.log().strip("\n") != ""},
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def measure_deliveries(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    setups: dict[str, Any] = {}
    for processes in (1, 2):
        print(
            f"bench: deliveries on PostgreSQL with {processes} delivery process(es), "
            f"{DELIVERY_THREADS} threads each: {args.deliveries_events} events x "
            f"{args.deliveries_subscriptions} subscriptions, then "
            f"{args.deliveries_latency_events} one at a time",
            flush=True,
        )
        with postgres_database(args.postgres_url) as (url, _name):
            setups[str(processes)] = _measure(url, workdir, args, processes)
    return {"setups": setups}


def deliveries_invalid(result: dict[str, Any]) -> list[str]:
    if "failure" in result:
        return [result["failure"]]
    reasons = []
    for name, r in result["setups"].items():
        if r["deliveries_received"] != r["deliveries_expected"]:
            reasons.append(f"{name}: {r['deliveries_received']}/{r['deliveries_expected']}")
        if r["latency_deliveries_received"] != r["latency_deliveries_expected"]:
            reasons.append(
                f"{name}: latency {r['latency_deliveries_received']}/"
                f"{r['latency_deliveries_expected']}"
            )
        if r["bad_signatures"] or r["exited"]:
            reasons.append(f"{name}: {r['bad_signatures']} bad signatures, exited {r['exited']}")
    return reasons


def print_deliveries_table(result: dict[str, Any]) -> None:
    print()
    if "failure" in result:
        print(f"deliveries FAILED: {result['failure'][:300]}")
        return
    print(
        f"{'deliveries':<22} {'procs':>5} {'deliv/s':>8} {'received':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'bad sig':>7}"
    )
    for name, r in result["setups"].items():
        lat = r["latency_ms"]
        print(
            f"{'PostgreSQL':<22} {name:>5} {_fmt(r['deliveries_per_s']):>8} "
            f"{r['deliveries_received']:>5}/{r['deliveries_expected']:<4} "
            f"{_fmt(lat['p50']):>8} {_fmt(lat['p99']):>8} {r['bad_signatures']:>7}"
        )
