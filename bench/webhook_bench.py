"""The ``webhook`` scenario of ``make bench``: webhook ingress requests/s, signatures checked.

A fresh SQLite file is seeded with a published member and a webhook trigger of it; the real
app is served by one uvicorn process with ``WORKER_THREADS=0`` (the queued runs are not
executed: this measures ingress alone) and the scheduler off; ``bench/webhook_load.py`` (its
own process) sends signed deliveries (see its docstring for the three phases).
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
    SUBJECT,
    Server,
    _die_with_parent,
    _fmt,
    bench_settings,
    seed,
)


def _webhook_trigger(url: str, workspace_id: str, member_id: str) -> tuple[str, str]:
    from domain.database import Database
    from domain.kernel import Actor, Role
    from scaicrew.app import build_use_cases

    database = Database(url)
    try:
        actor = Actor(workspace_id=workspace_id, subject=SUBJECT, role=Role.ADMIN)
        created = build_use_cases(bench_settings(url), database).triggers.create_trigger(
            actor,
            kind="webhook",
            member_id=member_id,
            name="Bench webhook",
        )
    finally:
        database.dispose()
    assert created.secret is not None
    return created.trigger.id, created.secret


def measure_webhooks(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from domain.kernel import new_id

    url = f"sqlite:///{workdir / 'webhooks.db'}"
    workspace_id = new_id("wsp")
    seeded = seed(url, workspace_id, RUN_DEFINITION, publish=True)
    trigger_id, secret = _webhook_trigger(url, workspace_id, seeded["member_id"])
    server = Server(
        "webhooks",
        SERVERS["ours"],
        url,
        workdir,
        {"WORKER_THREADS": "0", "SCHEDULER_ENABLED": "false"},
    )
    try:
        server.wait_healthy()
        print(
            f"bench: webhook ingress: {args.webhook_duration:g}s per phase at "
            f"{args.webhook_concurrency} connections, one server process (SQLite)",
            flush=True,
        )
        command = [
            PYTHON,
            str(BENCH_DIR / "webhook_load.py"),
            "--url",
            server.base_url,
            "--path",
            f"/v1/webhooks/{trigger_id}",
            "--secret",
            secret,
            "--concurrency",
            str(args.webhook_concurrency),
            "--duration",
            str(args.webhook_duration),
            "--server-pid",
            str(server.process.pid),
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
            raise RuntimeError(
                f"webhook_load.py failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
    expected = {"accepted": "202", "replayed": "202", "rejected": "401"}
    result["problems"] = [
        f"{phase}: statuses {result[phase]['statuses']}"
        for phase, status in expected.items()
        if set(result[phase]["statuses"]) != {status}
    ]
    log = server.log().strip()
    if log:
        result["log"] = log[-3000:]
    return result


def webhooks_invalid(result: dict[str, Any]) -> list[str]:
    if "failure" in result:
        return [result["failure"]]
    return list(result["problems"])


def print_webhook_table(result: dict[str, Any]) -> None:
    print()
    if "failure" in result:
        print(f"webhook ingress FAILED: {result['failure'][:300]}")
        return
    print("webhook ingress (HMAC-SHA256 verified on every request):")
    print(
        f"  {'phase':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'srv cpu':>8} "
        f"{'cli cpu':>8} {'us/req':>7}  statuses"
    )
    for phase in ("accepted", "replayed", "rejected"):
        row = result[phase]
        print(
            f"  {phase:<10} {_fmt(row['requests_per_s']):>8} {_fmt(row['p50_ms'], '.1f'):>8} "
            f"{_fmt(row['p99_ms'], '.1f'):>8} {_fmt(row.get('server_cores'), '.2f'):>8} "
            f"{_fmt(row.get('client_cores'), '.2f'):>8} "
            f"{_fmt(row.get('server_cpu_us_per_request'), '.0f'):>7}  {row['statuses']}"
        )
