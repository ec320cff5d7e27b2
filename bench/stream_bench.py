"""The ``stream`` scenario of ``make bench``: SSE fan-out to many subscribers of one process.

A fresh SQLite file is seeded with a published member whose only tool is internal; the real
app is served by one uvicorn process with ``WORKER_THREADS=1``; ``bench/sse_load.py`` (its own
process) opens the subscribers, starts runs one after another and measures how long each
``run.changed`` event took from its commit to every subscriber.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

from run import (
    BENCH_DIR,
    PYTHON,
    RUN_DEFINITION,
    SERVERS,
    Server,
    _die_with_parent,
    _fmt,
    mint_token,
    seed,
)


def measure_stream(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from domain.kernel import new_id

    url = f"sqlite:///{workdir / 'stream.db'}"
    workspace_id = new_id("wsp")
    seeded = seed(url, workspace_id, RUN_DEFINITION, publish=True)
    token = mint_token(url, workspace_id)
    server = Server(
        "stream",
        SERVERS["ours"],
        url,
        workdir,
        {"WORKER_THREADS": "1", "STREAM_MAX_SECONDS": "3600", "STREAM_KEEPALIVE_SECONDS": "15"},
    )
    try:
        server.wait_healthy()
        print(
            f"bench: stream fan-out: {args.stream_subscribers} SSE subscribers on one server "
            f"process (pid {server.pid}, SQLite), {args.stream_signals} runs one at a time",
            flush=True,
        )
        command = [
            PYTHON,
            str(BENCH_DIR / "sse_load.py"),
            "--url",
            server.base_url,
            "--token",
            token,
            "--member-id",
            seeded["member_id"],
            "--subscribers",
            str(args.stream_subscribers),
            "--signals",
            str(args.stream_signals),
            "--server-pid",
            str(server.pid),
        ]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            preexec_fn=_die_with_parent,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sse_load.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
    log = server.log().strip()
    if log:
        result["log"] = log[-3000:]
    return result


def stream_invalid(result: dict[str, Any]) -> list[str]:
    """Why the stream measurement is invalid (empty when every event reached everyone)."""
    if "failure" in result:
        return [result["failure"]]
    reasons = []
    if result["events_received"] != result["events_expected"]:
        reasons.append(f"{result['events_received']} of {result['events_expected']} events")
    if result["subscribers_with_wrong_timeline"] or result["problems"]:
        reasons.append(
            f"{result['subscribers_with_wrong_timeline']} wrong timelines {result['problems']}"
        )
    return reasons


def print_stream_table(result: dict[str, Any]) -> None:
    print()
    if "failure" in result:
        print(f"stream fan-out FAILED: {result['failure'][:300]}")
        return
    lat = result["latency_ms"]
    print(
        f"stream fan-out: {result['subscribers']} subscribers, {result['runs']} runs, "
        f"{result['events_received']}/{result['events_expected']} run.changed deliveries; "
        f"commit-to-client latency ms p50 {_fmt(lat['p50'])} p90 {_fmt(lat['p90'])} "
        f"p99 {_fmt(lat['p99'])} max {_fmt(lat['max'])}; cpu: server {_fmt(result['server_cpu'])}, "
        f"client {_fmt(result['client_cpu'])}"
    )
