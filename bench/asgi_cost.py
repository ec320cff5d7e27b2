"""CPU per request of the real app and the bare baseline, called in-process (no sockets).

Drives each ASGI app directly with ``GET /v1/members/{id}``, ``POST /v1/crews`` or (real app
only) a signed ``POST /v1/webhooks/{trigger_id}``, ``C``
requests in flight at a time, and reports the process CPU per request. No server, client or
network is involved, so what differs between the two numbers is the framework layers; the
result barely moves when other jobs load the machine (it counts CPU, not wall time), which
makes it the tool for iterating on the request path. ``--profile FILE`` writes a cProfile of
the real app's requests (``python -m pstats FILE``, or ``--top N`` prints the heaviest).

    .venv/bin/python bench/asgi_cost.py --requests 3000 [--scenario create_crew] [--top 30]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

from run import SESSION_SECRET, mint_token, seed  # noqa: E402


async def _lifespan(app: Any) -> tuple[asyncio.Task[None], asyncio.Queue[dict[str, Any]]]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()
    await inbox.put({"type": "lifespan.startup"})

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.startup.failed":
            raise RuntimeError(message.get("message"))

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await asyncio.wait_for(started.wait(), 30)
    return task, inbox


async def _request(
    app: Any,
    method: str,
    path: str,
    token: str,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> int:
    headers = [
        (b"host", b"bench"),
        (b"authorization", f"Bearer {token}".encode()),
        (b"accept", b"application/json"),
    ]
    headers += extra or []
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


#: Numbers the crews and webhook deliveries of the whole process (every round's, warm-up
#: included): a crew name used before answers 409, a delivery sent before is a replay.
_UNIQUE = itertools.count()


async def _drive(
    app: Any, scenario: str, seeded: dict[str, str], token: str, n: int, c: int
) -> float:
    counter = iter(range(n))

    def target(i: int) -> tuple[str, str, bytes, list[tuple[bytes, bytes]]]:
        if scenario == "create_crew":
            body = b'{"name": "crew %d %d", "description": "bench"}' % (os.getpid(), next(_UNIQUE))
            return "POST", "/v1/crews", body, []
        if scenario == "webhook":
            from domain.triggers import sign

            # Unique across rounds: a body sent again within a second (same signature) is a
            # replayed delivery, which costs a third less than an accepted one.
            body = b'{"event": %d, "pid": %d}' % (next(_UNIQUE), os.getpid())
            stamp = str(int(time.time()))
            signature = sign(seeded["webhook_secret"], stamp, body)
            return (
                "POST",
                f"/v1/webhooks/{seeded['trigger_id']}",
                body,
                [
                    (b"x-scaicrew-timestamp", stamp.encode()),
                    (b"x-scaicrew-signature", signature.encode()),
                ],
            )
        return "GET", f"/v1/members/{seeded['member_id']}", b"", []

    async def lane() -> None:
        for i in counter:
            method, path, body, extra = target(i)
            status = await _request(app, method, path, token, body, extra)
            if status >= 300:
                raise RuntimeError(f"{method} {path}: {status}")

    start = time.process_time()
    await asyncio.gather(*(lane() for _ in range(c)))
    return (time.process_time() - start) / n


def _callgrind(state: str) -> None:
    """Switch callgrind's counting on or off for this process (``bench/instructions.py``
    starts this script under callgrind with counting off: only the measured rounds count)."""
    subprocess.run(
        ["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True
    )


def _app(kind: str) -> Any:
    if kind == "bare":
        import bare_app

        return bare_app.create_app()
    from scaicrew.app import create_app

    return create_app()


async def _measure(
    kinds: list[str],
    args: argparse.Namespace,
    seeded: dict[str, str],
    token: str,
    profile: cProfile.Profile | None,
) -> dict[str, list[float]]:
    """CPU per request of each app, in ``--rounds`` alternating rounds (a drift of the
    machine weighs on both)."""
    apps = {kind: _app(kind) for kind in kinds}
    lifespans = [await _lifespan(app) for app in apps.values()]
    for app in apps.values():
        await _drive(app, args.scenario, seeded, token, 300, args.concurrency)
    results: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind, app in apps.items():
            profiling = profile is not None and kind == "real"
            if profiling:
                profile.enable()
            if args.callgrind:
                _callgrind("on")
            n = args.requests // args.rounds
            results[kind].append(
                await _drive(app, args.scenario, seeded, token, n, args.concurrency)
            )
            if args.callgrind:
                _callgrind("off")
            if profiling:
                profile.disable()
    for task, inbox in lifespans:
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 30)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", choices=("get_member", "create_crew", "webhook"), default="get_member"
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--only", choices=("real", "bare"))
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="count only the measured rounds (see instructions.py)",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="asgi-cost-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    if args.scenario == "webhook":
        # Signed deliveries to a webhook trigger of a published member (real app only: the
        # baseline has no ingress); the queued runs are not executed, as in make bench.
        from webhook_bench import RUN_DEFINITION, _webhook_trigger

        seeded = seed(url, "wsp_asgicost", RUN_DEFINITION, publish=True)
        seeded["trigger_id"], seeded["webhook_secret"] = _webhook_trigger(
            url, seeded["workspace_id"], seeded["member_id"]
        )
        args.only = "real"
        os.environ.update(WORKER_THREADS="0", SCHEDULER_ENABLED="false")
    else:
        seeded = seed(url, "wsp_asgicost")
    token = mint_token(url, seeded["workspace_id"])
    os.environ.update(
        ENV="test", DATABASE_URL=url, SESSION_SECRET=SESSION_SECRET, LOG_LEVEL="warning"
    )
    import logging

    logging.disable(logging.INFO)
    kinds = [args.only] if args.only else ["bare", "real"]
    profile = cProfile.Profile() if args.profile or args.top else None
    rounds = asyncio.run(_measure(kinds, args, seeded, token, profile))
    results = {kind: statistics.median(values) for kind, values in rounds.items()}
    for kind, value in results.items():
        spread = ", ".join(f"{v * 1e6:.0f}" for v in rounds[kind])
        print(f"{kind:5s} {args.scenario}: {value * 1e6:7.0f} us CPU per request ({spread})")
    if profile is not None:
        if args.profile:
            profile.dump_stats(args.profile)
        if args.top:
            pstats.Stats(profile).sort_stats("cumulative").print_stats(args.top)
    if len(results) == 2:
        print(
            "bare/real CPU (the req/s ratio a CPU-bound server would reach): "
            f"{results['bare'] / results['real']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
