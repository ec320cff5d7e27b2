"""Run-throughput driver, run by bench/run.py as a separate process.

Two phases against one server (whose runs are executed by its in-process worker threads or by
``scaicrew worker`` processes, the driver does not care):

1. **burst**: ``--runs`` runs are started with ``POST /v1/members/{id}/runs`` by
   ``--concurrency`` connections as fast as they answer, while a poller follows them until
   every one has finished (``succeeded``, ``failed``) or stopped at ``waiting_approval``. Every
   ``--poll-interval`` seconds the poller sends three requests, whatever the number of runs, so
   that it stays a small load next to the one measured: the member's ``running`` runs, its
   ``succeeded`` runs created since the oldest unfinished one (runs older than that are known
   to have finished), and ``GET /v1/runs/{id}`` of the oldest unfinished run (which catches a
   run that failed or waits for an approval).
2. **sequential** (``--sequential`` runs): after a random pause of up to ``--sequential-gap``
   seconds (so that runs arrive at random moments of the workers' polling cycle), start a run
   and poll it every ``--sequential-poll`` seconds until it has finished. This is the latency
   of an idle dispatcher.

Afterwards (outside the measured time) every run's final state and whole timeline are read and
checked: status ``succeeded``, first event ``run.queued``, then ``run.started``, last
``run.succeeded``. Latencies come from two clocks:

- server: the ``at`` timestamps the server records on the events (``run.started`` minus
  ``run.queued`` is start-to-first-event; ``run.succeeded`` minus ``run.queued`` is
  start-to-succeeded);
- client: from the POST's answer to the first poll that saw the run past ``queued`` (or
  finished), so it is coarsened by the polling interval.

Runs/s is the number of finished runs over the client's wall time from the first POST sent to
the last finish seen. The result is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import sys
import time
from datetime import datetime
from typing import Any
from urllib.parse import quote

from load import (
    RawConnection,
    TransportError,
    cpu_snapshot,
    machine_cpu_seconds,
    percentile,
)

#: Where a run stops for the client (with ``--approve``, a waiting run is approved and goes on).
TERMINAL = {"succeeded", "failed", "waiting_approval", "cancelled"}


@dataclasses.dataclass
class Tracked:
    index: int
    sent: float  # perf_counter when the POST was sent
    answered: float  # perf_counter when its 202 arrived
    run_id: str
    created_at: str
    seen_started: float | None = None  # first poll that saw it past "queued"
    seen_finished: float | None = None  # first poll that saw it in a terminal status
    seen_status: str = "queued"
    final: dict[str, Any] | None = None  # GET /v1/runs/{id} after the measurement
    events: list[dict[str, Any]] | None = None


class Failed(Exception):
    """The measurement cannot go on (a non-2xx answer, a transport error, a timeout)."""


async def call(
    connection: RawConnection, method: str, path: str, payload: Any = None, expect: int = 200
) -> dict[str, Any]:
    body = None if payload is None else json.dumps(payload).encode()
    try:
        status, content = await connection.request(method, path, body)
    except TransportError as exc:
        raise Failed(f"{method} {path}: {exc}") from exc
    if status != expect:
        text = content.decode(errors="replace")[:500]
        raise Failed(f"{method} {path}: {status} (expected {expect}) {text}")
    result: dict[str, Any] = json.loads(content)
    return result


def parse_instant(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def seconds_stats(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "count": len(ordered),
        "p50_ms": ms(percentile(ordered, 0.50)),
        "p90_ms": ms(percentile(ordered, 0.90)),
        "p99_ms": ms(percentile(ordered, 0.99)),
        "max_ms": ms(ordered[-1] if ordered else None),
        "mean_ms": ms(sum(ordered) / len(ordered) if ordered else None),
    }


# -- phases ----------------------------------------------------------------------------------


async def burst(args: argparse.Namespace, runs: list[Tracked], count: int) -> dict[str, Any]:
    """Start ``count`` runs and follow them until all have finished."""
    path = f"/v1/members/{args.member_id}/runs"
    outstanding: dict[str, Tracked] = {}
    next_index = 0
    submitted = asyncio.Event()
    first_sent: list[float] = []

    async def submitter() -> None:
        nonlocal next_index
        connection = RawConnection(args.url, args.token, args.timeout)
        try:
            while next_index < count:
                index = next_index
                next_index += 1
                sent = time.perf_counter()
                if not first_sent:
                    first_sent.append(sent)
                run = await call(connection, "POST", path, {"input": run_input(args, index)}, 202)
                tracked = Tracked(
                    index, sent, time.perf_counter(), str(run["id"]), str(run["created_at"])
                )
                runs.append(tracked)
                outstanding[tracked.run_id] = tracked
        finally:
            await connection.close()

    async def submit_all() -> None:
        try:
            await asyncio.gather(*(submitter() for _ in range(args.concurrency)))
        finally:
            submitted.set()

    async def listed(connection: RawConnection, query: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            path = f"/v1/runs?member_id={args.member_id}&limit=200&{query}"
            page = await call(
                connection, "GET", path + (f"&cursor={quote(cursor)}" if cursor else "")
            )
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return items

    terminal = TERMINAL - {"waiting_approval"} if args.approve else TERMINAL

    async def poller() -> float:
        connections = [RawConnection(args.url, args.token, args.timeout) for _ in range(3)]
        last_finish = 0.0
        try:
            while not (submitted.is_set() and not outstanding):
                if time.perf_counter() - (first_sent or [time.perf_counter()])[0] > args.deadline:
                    raise Failed(
                        f"{len(outstanding)} runs still unfinished after {args.deadline:g}s: "
                        + ", ".join(f"{t.run_id}={t.seen_status}" for t in oldest(3))
                    )
                if outstanding:
                    # Every run older than the oldest unfinished one is known to have finished.
                    head = oldest(1)[0]
                    running, succeeded, head_run = await asyncio.gather(
                        listed(connections[0], "status=running"),
                        listed(
                            connections[1],
                            f"status=succeeded&created_after={quote(head.created_at)}",
                        ),
                        # also catches a run that failed or waits for an approval
                        call(connections[2], "GET", f"/v1/runs/{head.run_id}"),
                    )
                    seen = time.perf_counter()
                    for run in [*running, *succeeded, head_run]:
                        tracked = outstanding.get(str(run["id"]))
                        if tracked is None:  # finished already, or its POST not answered yet
                            continue
                        tracked.seen_status = str(run["status"])
                        if tracked.seen_status != "queued" and tracked.seen_started is None:
                            tracked.seen_started = seen
                        if tracked.seen_status in terminal:
                            tracked.seen_finished = last_finish = seen
                            del outstanding[tracked.run_id]
                await asyncio.sleep(args.poll_interval)
        finally:
            for connection in connections:
                await connection.close()
        return last_finish

    async def approver() -> None:
        """With ``--approve``: approve every pending approval of the member, as it comes."""
        connection = RawConnection(args.url, args.token, args.timeout)
        try:
            while not (submitted.is_set() and not outstanding):
                await approve_pending(connection, args, f"member_id={args.member_id}")
                await asyncio.sleep(args.poll_interval)
        finally:
            await connection.close()

    def oldest(count: int) -> list[Tracked]:
        # Run ids sort by creation time, and the dispatcher claims the smallest id first.
        return [outstanding[k] for k in sorted(outstanding)[:count]]

    pids = {"server": args.server_pid, **{f"worker{i}": p for i, p in enumerate(args.worker_pid)}}
    before, machine_before = cpu_snapshot(), machine_cpu_seconds()
    client_before = time.process_time()
    submit_task = asyncio.create_task(submit_all())
    poll_task = asyncio.create_task(poller())
    tasks = [submit_task, poll_task]
    if args.approve:
        tasks.append(asyncio.create_task(approver()))
    try:
        await submit_task
        submit_end = time.perf_counter()
        last_finish = await poll_task
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    wall = last_finish - first_sent[0]
    after, machine_after = cpu_snapshot(), machine_cpu_seconds()
    client_cpu = time.process_time() - client_before

    def used(pid: int | None) -> float:
        if pid is None or pid not in after:
            return 0.0
        return after[pid][1] - before.get(pid, ("", after[pid][1]))[1]

    cpu: dict[str, float | None] = {name: round(used(pid) / wall, 2) for name, pid in pids.items()}
    cpu["client"] = round(client_cpu / wall, 2)
    postgres = 0.0
    others = []
    for pid, (command, seconds) in after.items():
        spent = seconds - before.get(pid, (command, 0.0))[1]
        if args.pg_database and command.startswith("postgres:"):
            # this database's backends only (other databases may share the cluster)
            if f" {args.pg_database} " in f"{command} ":
                postgres += spent
                continue
        if pid not in pids.values() and pid != os.getpid() and spent / wall > 0.05:
            others.append({"pid": pid, "cores": round(spent / wall, 2), "command": command})
    if args.pg_database:
        cpu["postgres"] = round(postgres / wall, 2)
    served = sum(used(pid) for pid in pids.values()) + postgres
    if machine_before is not None and machine_after is not None:
        other = machine_after - machine_before - served - client_cpu
        cpu["other"] = round(max(0.0, other) / wall, 2)
    return {
        "wall_s": round(wall, 3),
        "submit_s": round(submit_end - first_sent[0], 3),
        "cores": cpu,
        # CPU time of the server, the workers and the database per run (client excluded).
        "cpu_ms_per_run": round(served * 1000 / len(runs), 1) if runs else None,
        "other_processes": sorted(others, key=lambda p: -p["cores"])[:5],
    }


async def sequential(args: argparse.Namespace, runs: list[Tracked]) -> None:
    """Start runs one at a time, each after the previous one has finished."""
    path = f"/v1/members/{args.member_id}/runs"
    terminal = TERMINAL - {"waiting_approval"} if args.approve else TERMINAL
    connection = RawConnection(args.url, args.token, args.timeout)
    try:
        for index in range(args.sequential):
            # A random pause first, so that runs arrive at random moments of the workers'
            # polling cycle (as they would in use), not right after the previous run ended.
            await asyncio.sleep(random.uniform(0.0, args.sequential_gap))
            sent = time.perf_counter()
            run = await call(connection, "POST", path, {"input": run_input(args, index)}, 202)
            tracked = Tracked(
                index, sent, time.perf_counter(), str(run["id"]), str(run["created_at"])
            )
            runs.append(tracked)
            while tracked.seen_finished is None:
                if time.perf_counter() - sent > args.deadline:
                    raise Failed(f"run {tracked.run_id} unfinished after {args.deadline:g}s")
                await asyncio.sleep(args.sequential_poll)
                run = await call(connection, "GET", f"/v1/runs/{tracked.run_id}")
                status = str(run["status"])
                seen = time.perf_counter()
                tracked.seen_status = status
                if status != "queued" and tracked.seen_started is None:
                    tracked.seen_started = seen
                if status in terminal:
                    tracked.seen_finished = seen
                elif status == "waiting_approval" and args.approve:
                    await approve_pending(connection, args, f"run_id={tracked.run_id}")
    finally:
        await connection.close()


async def approve_pending(connection: RawConnection, args: argparse.Namespace, query: str) -> None:
    """Approve the pending approvals the query selects (one page of up to 200)."""
    page = await call(connection, "GET", f"/v1/approvals?limit=200&{query}")
    for approval in page["items"]:
        await call(connection, "POST", f"/v1/approvals/{approval['id']}/approve")


async def collect(args: argparse.Namespace, runs: list[Tracked]) -> None:
    """Read every run and its whole timeline (after the measurement)."""
    pending = list(runs)

    async def reader() -> None:
        connection = RawConnection(args.url, args.token, args.timeout)
        try:
            while pending:
                tracked = pending.pop()
                tracked.final = await call(connection, "GET", f"/v1/runs/{tracked.run_id}")
                events: list[dict[str, Any]] = []
                after_seq: int | None = 0
                while after_seq is not None:
                    page = await call(
                        connection,
                        "GET",
                        f"/v1/runs/{tracked.run_id}/events?limit=200&after_seq={after_seq}",
                    )
                    events.extend(page["items"])
                    after_seq = page["next_after_seq"]
                tracked.events = events
        finally:
            await connection.close()

    await asyncio.gather(*(reader() for _ in range(4)))


def run_input(args: argparse.Namespace, index: int) -> dict[str, Any]:
    """The input of run ``index`` (with ``--input-url``: the URL its tool posts to)."""
    return {"n": index} if args.input_url is None else {"n": index, "url": args.input_url}


# -- analysis --------------------------------------------------------------------------------


def problems_of(tracked: Tracked) -> list[str]:
    final, events = tracked.final or {}, tracked.events or []
    types = [e["type"] for e in events]
    problems = []
    if final.get("status") != "succeeded":
        problems.append(f"status {final.get('status')} error {final.get('error')}")
    if types[:2] != ["run.queued", "run.started"]:
        problems.append(f"timeline starts {types[:2]}")
    if not types or types[-1] != "run.succeeded":
        problems.append(f"timeline ends {types[-1:]}")
    if [e["seq"] for e in events] != list(range(1, len(events) + 1)):
        problems.append("event seq not 1..n")
    return problems


def event_at(tracked: Tracked, event_type: str) -> float | None:
    for event in tracked.events or []:
        if event["type"] == event_type:
            return parse_instant(event["at"])
    return None


def summarise(runs: list[Tracked]) -> dict[str, Any]:
    problems = {t.run_id: p for t in runs if (p := problems_of(t))}
    succeeded = [t for t in runs if t.run_id not in problems]
    statuses: dict[str, int] = {}
    for tracked in runs:
        status = str((tracked.final or {}).get("status"))
        statuses[status] = statuses.get(status, 0) + 1
    server_first, server_done, server_exec = [], [], []
    for tracked in succeeded:
        queued = event_at(tracked, "run.queued")
        started = event_at(tracked, "run.started")
        done = event_at(tracked, "run.succeeded")
        if queued is None or started is None or done is None:
            continue
        server_first.append(started - queued)
        server_done.append(done - queued)
        server_exec.append(done - started)
    queued_at = [q for t in succeeded if (q := event_at(t, "run.queued")) is not None]
    done_at = [d for t in succeeded if (d := event_at(t, "run.succeeded")) is not None]
    server_span = max(done_at) - min(queued_at) if queued_at and done_at else None
    events = [len(t.events or []) for t in succeeded]
    return {
        "runs": len(runs),
        "succeeded": len(succeeded),
        "statuses": statuses,
        "problems": [f"{k}: {'; '.join(v)}" for k, v in list(problems.items())[:5]],
        "events_per_run": round(sum(events) / len(events), 1) if events else None,
        "post_ms": seconds_stats([t.answered - t.sent for t in runs]),
        "server": {
            "first_event": seconds_stats(server_first),
            "succeeded": seconds_stats(server_done),
            "execution": seconds_stats(server_exec),
            "span_s": None if server_span is None else round(server_span, 3),
        },
        "client": {
            "first_event": seconds_stats(
                [t.seen_started - t.answered for t in runs if t.seen_started is not None]
            ),
            "succeeded": seconds_stats(
                [t.seen_finished - t.answered for t in succeeded if t.seen_finished is not None]
            ),
        },
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "runs": args.runs,
        "warmup_runs": args.warmup_runs,
        "concurrency": args.concurrency,
        "poll_interval_s": args.poll_interval,
    }
    bursts: list[Tracked] = []
    singles: list[Tracked] = []
    try:
        if args.warmup_runs:  # fresh processes: connections, prepared statements, caches
            await burst(args, [], args.warmup_runs)
        measured = await burst(args, bursts, args.runs)
        await sequential(args, singles)
        await collect(args, bursts + singles)
    except Failed as exc:
        result["failure"] = str(exc)
        return result
    burst_summary = summarise(bursts)
    burst_summary.update(measured)
    finished = sum(1 for t in bursts if t.seen_finished is not None)
    burst_summary["finished"] = finished
    burst_summary["runs_per_s"] = round(finished / measured["wall_s"], 1)
    span = burst_summary["server"]["span_s"]
    burst_summary["server"]["runs_per_s"] = (
        round(burst_summary["succeeded"] / span, 1) if span else None
    )
    result["burst"] = burst_summary
    result["sequential"] = summarise(singles)
    result["sequential"]["poll_interval_s"] = args.sequential_poll
    result["sequential"]["max_gap_s"] = args.sequential_gap
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--member-id", required=True)
    parser.add_argument("--runs", type=int, default=600, help="runs in the burst (600)")
    parser.add_argument(
        "--warmup-runs", type=int, default=100, help="runs of an unmeasured burst first (100)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="POST connections (8)")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="seconds (0.05)")
    parser.add_argument("--sequential", type=int, default=10, help="runs one at a time (10)")
    parser.add_argument("--sequential-poll", type=float, default=0.01, help="seconds (0.01)")
    parser.add_argument(
        "--sequential-gap", type=float, default=0.5, help="random pause before each, max (0.5s)"
    )
    parser.add_argument("--deadline", type=float, default=120.0, help="give up after (120s)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request (30s)")
    parser.add_argument("--input-url", help="the run input's url (the member's http_post)")
    parser.add_argument(
        "--approve", action="store_true", help="approve every approval the runs wait for"
    )
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--worker-pid", type=int, action="append", default=[])
    parser.add_argument("--pg-database", help="count the CPU of this database's backends")
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(run(args))
    except ImportError:
        result = asyncio.run(run(args))
    result["cpus"] = os.cpu_count()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
