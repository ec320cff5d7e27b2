"""``bench/run.py --scenario workers``: ``scaicrew serve --workers N`` for N = 1 and 2.

A fresh PostgreSQL database (``--postgres-url``, created, migrated and dropped here) is seeded
like the HTTP scenarios; two servers start, ``scaicrew serve --workers 1`` and ``--workers 2``,
each on its own port (``WORKER_THREADS=0``, scheduler off: only API processes). ``load.py``
loads ``GET /v1/members/{id}`` on each in alternating slices (as the bare/ours comparison does),
so a background load weighs on both alike. The scaling factor (2 processes over 1) is what a
deployment on more cores can expect per added process while the machine has cores to spare:
on this 2-core machine the load client and PostgreSQL share the same two cores.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from run import (
    BENCH_DIR,
    ServerProcess,
    aggregate,
    alternating_slices,
    free_port,
    mint_token,
    postgres_database,
    ratio,
    seed,
    server_environment,
    worker_command,
)

PROCESSES = (1, 2)


class ServeProcess(ServerProcess):
    """``scaicrew serve --workers N`` on a free loopback port."""

    def __init__(self, processes: int, url: str, workdir: Path) -> None:
        port = free_port()
        command = worker_command(1)[:-3] + [
            "serve",
            "--no-migrate",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(processes),
        ]
        env = server_environment(url, {"WORKER_THREADS": "0", "SCHEDULER_ENABLED": "false"})
        super().__init__(f"serve-{processes}", command, env, workdir, port)

    def wait_healthy(self, timeout: float = 60.0) -> None:
        super().wait_healthy(timeout)  # N processes to start


def measure_workers(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from domain.kernel import new_id

    with postgres_database(args.postgres_url) as (url, _name):
        workspace_id = new_id("wsp")
        seeded = seed(url, workspace_id)
        token = mint_token(url, workspace_id)
        servers = {n: ServeProcess(n, url, workdir) for n in PROCESSES}
        try:
            for server in servers.values():
                server.wait_healthy()
            print(
                f"bench: serve --workers 1 vs 2 (PostgreSQL): GET /v1/members/{{id}}, "
                f"{args.duration:g}s per server in {args.rounds} alternating slices, "
                f"{args.concurrency} connections",
                flush=True,
            )
            slices = alternating_slices(
                servers,
                "get_member",
                token,
                dict.fromkeys(servers, seeded["member_id"]),
                args,
            )
            result: dict[str, Any] = {str(n): aggregate(slices[n]) for n in servers}
            result["scaling_2_over_1"] = ratio(result["2"]["rps"], result["1"]["rps"])
            return result
        finally:
            for server in servers.values():
                server.stop()


def print_workers_table(result: dict[str, Any]) -> None:
    print()
    if "failure" in result:
        print(f"serve --workers: FAILED: {result['failure'][:300]}")
        return
    print("serve --workers N (PostgreSQL), GET /v1/members/{id}:")
    print(f"  {'processes':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for n in PROCESSES:
        r = result[str(n)]
        print(
            f"  {n:>9} {r['rps']:>8.1f} {r['latency_ms']['p50']:>8.2f} "
            f"{r['latency_ms']['p99']:>8.2f} {r['errors']:>6}"
        )
    print(f"  2 processes / 1: x{result['scaling_2_over_1']}")


__all__ = ["BENCH_DIR", "measure_workers", "print_workers_table"]
