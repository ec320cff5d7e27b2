"""``make bench``: load the real server from a second process and compare with bare Starlette.

1. Two temporary SQLite databases are migrated and seeded alike (a workspace, an admin
   membership, a crew, a member), and one session token is minted for the workspace.
2. Two servers start under uvicorn, each in its own process on a free loopback port, with
   the same uvicorn options: the real app as ``scaicrew serve`` builds it
   (``scaicrew.cli:served_app``, ENV=test) and the baseline ``bench/bare_app.py``, each on its
   own database; both tune the cycle collector alike (``scaicrew.gc_tuning``) and are
   pinned to the same CPU (``CPU_AFFINITY``: the machine's last CPU, or
   ``BENCH_SERVER_CPUS``; empty for unpinned servers). The same goes for the servers of the
   runs, stream and webhook scenarios; ``scaicrew worker`` processes and ``serve --workers``
   are not pinned.
3. A preflight sends one request of each scenario to both servers and checks that they answer
   2xx with the same JSON fields.
4. For each scenario, ``bench/load.py`` loads the servers from a separate process (closed loop,
   ``--concurrency`` connections). The ``--duration`` seconds measured per server are split
   into ``--rounds`` slices that alternate between the two servers, so that a background load
   on the machine that comes and goes weighs on both alike; every slice starts with a short
   discarded warm-up (the first one with ``--warmup`` seconds).
5. A table with requests/s, p50/p99 latency, errors, CPU use and the bare/ours ratios is
   printed, and the numbers are written to ``bench/results/latest.json``.

6. The ``runs`` scenario (``--scenario runs``, part of the default full run) measures the run
   dispatcher end to end with the offline model, on a member whose only tool is internal (so
   every run goes to ``succeeded`` without approvals), in two setups, one after the other:

   - ``sqlite``: a fresh SQLite file, the real app under uvicorn with ``WORKER_THREADS=2``;
   - ``postgres``: a fresh database ``bench_*`` on ``--postgres-url`` (created, migrated and
     dropped by the bench), the real app with ``WORKER_THREADS=0`` and two
     ``scaicrew worker --threads 2`` processes.

   ``bench/runs_load.py`` drives each from a separate process: an unmeasured burst of
   ``--runs-warmup`` runs (the processes are fresh: connections, prepared statements and
   caches are made on the first runs), then a burst of ``--runs`` runs started at
   ``--runs-concurrency`` and followed until all have finished (runs/s, latencies, the CPU of
   every process involved), then ``--sequential-runs`` runs one at a time (the
   latency of an idle dispatcher). Latencies are taken from the event timestamps the server
   records (``run.started`` / ``run.succeeded`` minus ``run.queued``), and also from the
   client's clock. Unless every run succeeded, with the expected timeline, the bench prints
   ``!!! BENCH INVALID`` and exits 1.

7. The ``stream`` scenario (part of the default full run) measures live-stream fan-out:
   ``--stream-subscribers`` SSE subscribers of one workspace on one server process (SQLite,
   ``WORKER_THREADS=1``), driven by ``bench/sse_load.py`` from a separate process, follow
   ``--stream-signals`` runs started one at a time; the p50/p90/p99 latency from each
   ``run.changed`` commit (the event's ``at``) to its receipt by every subscriber is reported
   (``bench/stream_bench.py``). Unless every subscriber saw every event once, in order, the
   bench prints ``!!! BENCH INVALID``.

8. The ``deliveries`` scenario (part of the default full run) measures signed subscription
   deliveries on PostgreSQL with one and with two delivery processes: deliveries/s of a
   backlog and commit-to-receipt p50/p99 of events committed one at a time, at a local
   receiver that verifies every signature (``bench/deliveries_bench.py``).

Any non-2xx answer makes the run fail loudly (exit status 1). Client and servers share the
machine's cores, so the CPU columns say who was the bottleneck, and the run warns when other
processes took CPU during a measurement (and names them).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from load import cpu_snapshot, machine_cpu_seconds, percentile
from sqlalchemy.exc import SQLAlchemyError

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "latest.json"
PYTHON = sys.executable

SESSION_SECRET = "bench-session-secret-" + "b" * 32  # >= 32 bytes for HS256
SUBJECT = "bench-user"
OTHER_CPU_WARNING = 0.25  # cores used by other processes during a measurement
SCENARIOS = {
    "get_member": "GET /v1/members/{id}",
    "create_crew": "POST /v1/crews",
}
SERVERS = {
    "ours": "scaicrew.cli:served_app",
    "bare": "bare_app:create_app",
}
DEFINITION = {
    "objective": "Summarise new support tickets every morning.",
    "instructions": "Read the queue, group by product, write a short summary.",
    "rules": ["Never email customers directly."],
    "rigidity": "guided",
    "tools": [
        {"name": "read_queue", "effect_class": "external_read"},
        {"name": "send_email", "effect_class": "external_write"},
    ],
}

# Scenarios measured by a module of their own: name -> (module, its measuring function).
MEASURED_APART = {
    "stream": ("stream_bench", "measure_stream"),
    "webhook": ("webhook_bench", "measure_webhooks"),
    "observability": ("observability_bench", "measure_observability"),
    "deliveries": ("deliveries_bench", "measure_deliveries"),
    "workers": ("workers_bench", "measure_workers"),
}


POSTGRES_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
RUN_DEFINITION = {  # an internal tool: runs to ``succeeded`` without approvals
    "objective": "bench",
    "tools": [{"name": "notes_write", "effect_class": "internal"}],
}
WRITE_DEFINITION = {  # a whitelisted external_write: each call's start is recorded first
    "objective": "bench",
    "tools": [{"name": "http_post", "effect_class": "external_write", "whitelisted": True}],
}
APPROVED_DEFINITION = {  # the approval path: each run waits for an approval the client gives
    "objective": "bench",
    "tools": [{"name": "http_post", "effect_class": "external_write"}],
}
RUN_SETUPS: dict[str, dict[str, Any]] = {
    "sqlite": {
        "label": "SQLite; API server with WORKER_THREADS=2 (in-process workers)",
        "server_threads": 2,
        "workers": 0,
        "worker_threads": 0,
    },
    "postgres": {
        "label": "PostgreSQL; API server with WORKER_THREADS=0 + 2 x `scaicrew worker --threads 2`",
        "server_threads": 0,
        "workers": 2,
        "worker_threads": 2,
    },
}


# -- setup -----------------------------------------------------------------------------------


def seed(
    url: str,
    workspace_id: str,
    definition: dict[str, Any] = DEFINITION,
    *,
    publish: bool = False,
) -> dict[str, str]:
    """Migrate the database at ``url`` and create the workspace, a crew and a member (with
    ``definition``, published when ``publish``)."""
    from domain.database import Database
    from domain.kernel import Actor, Role
    from domain.members import Definition
    from scaicrew.app import build_use_cases
    from scaicrew.migrate import upgrade

    upgrade(url)
    database = Database(url)
    try:
        use_cases = build_use_cases(bench_settings(url), database)
        members = use_cases.members
        use_cases.workspaces.ensure_member(
            workspace_id, SUBJECT, Role.ADMIN, name="Bench workspace"
        )
        actor = Actor(workspace_id=workspace_id, subject=SUBJECT, role=Role.ADMIN)
        crew = members.create_crew(actor, "Bench crew", "Seeded by bench/run.py")
        member = members.create_member(
            actor,
            crew_id=crew.id,
            name="Bench member",
            description="Seeded by bench/run.py",
            definition=Definition.from_json(definition),
        )
        if publish:
            members.publish_member(actor, member.id)
    finally:
        database.dispose()
    return {"workspace_id": workspace_id, "crew_id": crew.id, "member_id": member.id}


def bench_settings(url: str) -> Any:
    """The settings the bench's seeding and tokens use (the servers get the same secret)."""
    from pydantic import SecretStr

    from scaicrew.settings import SessionGroup, Settings

    return Settings(
        env="test", database_url=url, session=SessionGroup(secret=SecretStr(SESSION_SECRET))
    )


def mint_token(url: str, workspace_id: str) -> str:
    from domain.kernel import Role
    from scaicrew.cli import mint_session_token

    return mint_session_token(
        bench_settings(url),
        workspace_id=workspace_id,
        subject=SUBJECT,
        role=Role.ADMIN,
        ttl_seconds=3600,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(url: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    from scaicrew.settings import documented_settings

    env = dict(os.environ)
    for variable, _, _ in documented_settings():  # nothing from the caller's shell leaks in
        env.pop(variable, None)
    env.update(
        ENV="test",
        DATABASE_URL=url,
        SESSION_SECRET=SESSION_SECRET,
        LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides or {})
    return env


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the bench process dies, so no server is left behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through ``finally``, which stops the servers


class Child:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: no {text!r} after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


class ServerProcess(Child):
    """A child process serving HTTP on ``port`` of the loopback, with ``GET /health``."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], workdir: Path, port: int
    ) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        super().__init__(name, command, env, workdir)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not healthy after {timeout}s:\n{self.log()}")


def reference_workload_ms(cpus: str, repeats: int = 3) -> float:
    """Milliseconds a fixed job of JSON and SQLite work takes in this process, pinned to
    ``cpus`` as the servers are (the fastest of ``repeats``): the absolute targets (runs/s,
    webhooks/s, SSE latency) move with the machine, and sessions run on different ones.
    Compare this first before comparing absolute numbers of two ``make bench`` runs."""
    import sqlite3

    from scaicrew.affinity import usable_cpus

    before = os.sched_getaffinity(0)
    if cpus:
        os.sched_setaffinity(0, usable_cpus(tuple(cpus.split(","))))
    try:
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            connection = sqlite3.connect(":memory:")
            connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k TEXT, body TEXT)")
            connection.execute("CREATE INDEX t_k ON t (k)")
            for n in range(20_000):
                body = json.dumps({"n": n, "tags": ["a", "b"], "nested": {"x": n * 2}})
                connection.execute("INSERT INTO t (k, body) VALUES (?, ?)", (f"k{n % 97}", body))
            for n in range(2_000):
                row = connection.execute("SELECT body FROM t WHERE k = ? LIMIT 1", (f"k{n % 97}",))
                json.loads(row.fetchone()[0])
            connection.close()
            best = min(best, (time.perf_counter() - began) * 1000)
        return best
    finally:
        os.sched_setaffinity(0, before)


def server_cpus() -> str:
    """The ``CPU_AFFINITY`` of the benchmarked server processes (ours and the baseline alike):
    ``BENCH_SERVER_CPUS`` when set (empty: not pinned), else the machine's last CPU when it has
    two or more, so that the load client and PostgreSQL keep the others."""
    if "BENCH_SERVER_CPUS" in os.environ:
        return os.environ["BENCH_SERVER_CPUS"]
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return str(cpus[-1]) if len(cpus) >= 2 else ""


class Server(ServerProcess):
    """One uvicorn process serving ``factory`` on a free loopback port, pinned to
    ``server_cpus()``."""

    def __init__(
        self,
        name: str,
        factory: str,
        url: str,
        workdir: Path,
        overrides: dict[str, str] | None = None,
    ) -> None:
        port = free_port()
        command = [
            PYTHON,
            "-m",
            "uvicorn",
            "--factory",
            factory,
            "--app-dir",
            str(BENCH_DIR),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            "1",
        ]
        env = server_environment(url, {"CPU_AFFINITY": server_cpus(), **(overrides or {})})
        super().__init__(f"{name}-server", command, env, workdir, port)


# -- running ---------------------------------------------------------------------------------


def preflight(servers: dict[str, Server], seeds: dict[str, dict[str, str]], token: str) -> None:
    """One request per scenario and server: 2xx, and the same JSON fields on both servers."""
    headers = {"Authorization": f"Bearer {token}"}
    shapes: dict[str, dict[str, Any]] = {}
    for name, server in servers.items():
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=10) as client:
            member = client.get(f"/v1/members/{seeds[name]['member_id']}")
            crew = client.post("/v1/crews", json={"name": f"bench-preflight-{name}"})
        for label, response in (("get_member", member), ("create_crew", crew)):
            if not 200 <= response.status_code < 300:
                raise RuntimeError(
                    f"preflight {label} on {name}: {response.status_code} {response.text[:500]}"
                )
            shapes.setdefault(label, {})[name] = (
                response.status_code,
                sorted(response.json()),
                response.headers.get("content-type"),
            )
    for label, by_server in shapes.items():
        if len({json.dumps(v) for v in by_server.values()}) != 1:
            raise RuntimeError(f"preflight {label}: the servers answer differently: {by_server}")


# -- measuring -------------------------------------------------------------------------------


def load_slice(
    server: ServerProcess,
    scenario: str,
    token: str,
    member_id: str,
    args: argparse.Namespace,
    *,
    warmup: float,
    duration: float,
    tag: str,
) -> dict[str, Any]:
    """One run of load.py against ``server``; adds who else used the CPU meanwhile."""
    command = [
        PYTHON,
        str(BENCH_DIR / "load.py"),
        "--url",
        server.base_url,
        "--scenario",
        scenario,
        "--token",
        token,
        "--member-id",
        member_id,
        "--tag",
        tag,
        "--client",
        args.client,
        "--concurrency",
        str(args.concurrency),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
        "--server-pid",
        str(server.pid),
        "--latencies",
    ]
    before, started = cpu_snapshot(), time.monotonic()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=warmup + duration + 60,
        check=False,
        preexec_fn=_die_with_parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # The load process has exited by now, so it is not in the second snapshot.
    result["other_processes"] = busiest_others(
        before, cpu_snapshot(), time.monotonic() - started, {server.pid}
    )
    return result


def aggregate(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge the slices measured against one server into one result."""
    latencies = sorted(v / 1000 for s in slices for v in s["latencies_ms"])
    duration = sum(s["duration_s"] for s in slices)
    requests = len(latencies)

    def cpu(kind: str) -> float | None:
        values = [s["cpu_seconds"][kind] for s in slices]
        return None if None in values else sum(values)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 2)

    server, client, machine = cpu("server"), cpu("client"), cpu("machine")
    other = None
    if None not in (server, client, machine):
        other = max(0.0, machine - server - client)  # type: ignore[operator]
    status_counts: dict[str, int] = {}
    for s in slices:
        for status, count in s["status_counts"].items():
            status_counts[status] = status_counts.get(status, 0) + count
    others: dict[int, dict[str, Any]] = {}
    for s in slices:
        for process in s["other_processes"]:
            entry = others.setdefault(process["pid"], {**process, "cores": 0.0})
            entry["cores"] += process["cores"] * s["duration_s"] / duration
    return {
        "requests": requests,
        "duration_s": duration,
        "rps": round(requests / duration, 1),
        "latency_ms": {
            "p50": ms(percentile(latencies, 0.50)),
            "p90": ms(percentile(latencies, 0.90)),
            "p99": ms(percentile(latencies, 0.99)),
            "max": ms(latencies[-1] if latencies else None),
            "mean": ms(sum(latencies) / requests if requests else None),
        },
        "errors": sum(s["errors"] for s in slices),
        "errors_total": sum(s["errors_total"] for s in slices),
        "requests_total": sum(s["requests_total"] for s in slices),
        "status_counts": status_counts,
        "error_samples": [e for s in slices for e in s["error_samples"]][:5],
        # Cores busy over the measured time (1.0 = one core): the server, the load process,
        # and everything else on the machine.
        "server_cpu": None if server is None else round(server / duration, 2),
        "client_cpu": None if client is None else round(client / duration, 2),
        "other_cpu": None if other is None else round(other / duration, 2),
        "server_cpu_us_per_request": (
            round(server / requests * 1e6) if server is not None and requests else None
        ),
        "other_processes": sorted(
            ({**p, "cores": round(p["cores"], 2)} for p in others.values()),
            key=lambda p: -p["cores"],
        )[:5],
        "rounds_rps": [s["rps"] for s in slices],
    }


def alternating_slices(
    servers: Mapping[Any, ServerProcess],
    scenario: str,
    token: str,
    member_ids: Mapping[Any, str],
    args: argparse.Namespace,
    *,
    before_slice: Callable[[Any], None] | None = None,
) -> dict[Any, list[dict[str, Any]]]:
    """Load each of ``servers`` (by name) for ``args.rounds`` slices of ``args.duration /
    args.rounds`` seconds, the order alternating each round, so neither always follows the
    other and a load that comes and goes weighs on both; ``before_slice(name)`` runs before
    each of ``name``'s slices. The slices, per name."""
    slices: dict[Any, list[dict[str, Any]]] = {name: [] for name in servers}
    for round_number in range(args.rounds):
        order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
        for name in order:
            if before_slice is not None:
                before_slice(name)
            slices[name].append(
                load_slice(
                    servers[name],
                    scenario,
                    token,
                    member_ids[name],
                    args,
                    warmup=args.warmup if round_number == 0 else args.rewarm,
                    duration=args.duration / args.rounds,
                    tag=f"{name}{os.getpid()}r{round_number}",
                )
            )
    return slices


def measure(
    servers: dict[str, Server],
    scenario: str,
    token: str,
    seeds: dict[str, dict[str, str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Alternate slices between the servers, then merge them per server."""
    member_ids = {name: seeds[name]["member_id"] for name in servers}
    slices = alternating_slices(servers, scenario, token, member_ids, args)
    entry: dict[str, Any] = {"label": SCENARIOS[scenario]}
    for name in servers:
        entry[name] = aggregate(slices[name])
    ours, bare = entry["ours"], entry["bare"]
    entry["ratio_bare_over_ours"] = {
        "rps": ratio(bare["rps"], ours["rps"]),
        "p50": ratio(bare["latency_ms"]["p50"], ours["latency_ms"]["p50"]),
        "p99": ratio(bare["latency_ms"]["p99"], ours["latency_ms"]["p99"]),
        "cpu_per_request": ratio(
            bare["server_cpu_us_per_request"], ours["server_cpu_us_per_request"]
        ),
        "rps_by_round": [
            ratio(b, o) for b, o in zip(bare["rounds_rps"], ours["rounds_rps"], strict=True)
        ],
    }
    return entry


def machine_busy_cores(seconds: float = 1.0) -> float | None:
    """How many cores the machine keeps busy over ``seconds`` (from /proc/stat)."""
    before = machine_cpu_seconds()
    time.sleep(seconds)
    after = machine_cpu_seconds()
    return None if before is None or after is None else (after - before) / seconds


def busiest_others(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    seconds: float,
    exclude: set[int],
) -> list[dict[str, Any]]:
    """Processes other than ours that used more than 5% of a core between two snapshots."""
    busy = []
    for pid, (command, used) in after.items():
        if pid in exclude or pid == os.getpid():
            continue
        cores = (used - before.get(pid, (command, 0.0))[1]) / seconds
        if cores > 0.05:
            busy.append({"pid": pid, "cores": round(cores, 2), "command": command})
    return sorted(busy, key=lambda item: -item["cores"])[:5]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


# -- runs ------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database on the server of ``admin_url``: (url, name); dropped after."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from domain.kernel import new_id

    name = f"bench_{new_id('x')[2:].lower()}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(admin_url).set(database=name)
            yield url.render_as_string(hide_password=False), name
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


class Sink:
    """A local HTTP target for the runs' ``http_post``: answers every POST ``200 {}``."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/sink"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def worker_command(threads: int) -> list[str]:
    script = Path(PYTHON).parent / "scaicrew"  # the console script, as an operator runs it
    command = [str(script)] if script.exists() else [PYTHON, "-m", "scaicrew.cli"]
    return [*command, "worker", "--threads", str(threads)]


def measure_runs(
    setup: str, url: str, workdir: Path, args: argparse.Namespace, pg_database: str | None
) -> dict[str, Any]:
    """Seed a published member, start the server (and workers), drive runs_load.py at it."""
    from domain.kernel import new_id

    config = RUN_SETUPS[setup]
    workspace_id = new_id("wsp")
    writes = args.runs_tool != "internal"
    definition = {
        "internal": RUN_DEFINITION,
        "external_write": WRITE_DEFINITION,
        "approved_write": APPROVED_DEFINITION,
    }[args.runs_tool]
    seeded = seed(url, workspace_id, definition, publish=True)
    token = mint_token(url, workspace_id)
    children: list[Child] = []
    tool_env = {"TOOL_HTTP_ALLOWLIST": "127.0.0.1"} if writes else {}
    sink = Sink() if writes else None
    try:
        server = Server(
            f"runs-{setup}",
            SERVERS["ours"],
            url,
            workdir,
            {"WORKER_THREADS": str(config["server_threads"]), **tool_env},
        )
        children.append(server)
        workers = []
        for index in range(config["workers"]):
            worker = Child(
                f"runs-{setup}-worker{index}",
                worker_command(config["worker_threads"]),
                server_environment(url, tool_env),
                workdir,
            )
            children.append(worker)
            workers.append(worker)
        server.wait_healthy()
        for worker in workers:
            worker.wait_for_output("worker started")
        threads = config["server_threads"] + config["workers"] * config["worker_threads"]
        print(
            f"bench: runs on {setup}: {config['label']}; server pid {server.pid}"
            + (f", workers {', '.join(str(w.pid) for w in workers)}" if workers else "")
            + f"; {args.runs_warmup} runs to warm up, {args.runs} runs at concurrency "
            f"{args.runs_concurrency}, then "
            f"{args.sequential_runs} one at a time",
            flush=True,
        )
        command = [
            PYTHON,
            str(BENCH_DIR / "runs_load.py"),
            "--url",
            server.base_url,
            "--token",
            token,
            "--member-id",
            seeded["member_id"],
            "--runs",
            str(args.runs),
            "--warmup-runs",
            str(args.runs_warmup),
            "--concurrency",
            str(args.runs_concurrency),
            "--sequential",
            str(args.sequential_runs),
            "--deadline",
            str(args.runs_deadline),
            "--server-pid",
            str(server.pid),
        ]
        for worker in workers:
            command += ["--worker-pid", str(worker.pid)]
        if pg_database:
            command += ["--pg-database", pg_database]
        if sink is not None:
            command += ["--input-url", sink.url]
        if args.runs_tool == "approved_write":
            command += ["--approve"]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=2 * args.runs_deadline + 60,
            check=False,
            preexec_fn=_die_with_parent,
        )
        if done.returncode != 0:
            raise RuntimeError(f"runs_load.py failed ({done.returncode}):\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        result["setup"] = config["label"]
        result["worker_threads"] = threads
        gone = [c.name for c in children if c.process.poll() is not None]
        if gone and "failure" not in result:
            result["failure"] = f"exited during the measurement: {', '.join(gone)}"
    finally:
        for child in children:
            child.stop()
        if sink is not None:
            sink.close()
    result["tool"] = args.runs_tool
    quiet = ("worker started",)
    logs = {}
    for child in children:
        lines = [ln for ln in child.log().splitlines() if not ln.startswith(quiet) and ln.strip()]
        if lines:
            logs[child.name] = "\n".join(lines)[-3000:]
    result["logs"] = logs
    return result


def runs_invalid(runs: dict[str, Any]) -> list[str]:
    """Why the runs measurements are invalid (empty when every run succeeded)."""
    reasons = []
    for setup, result in runs.items():
        if "failure" in result:
            reasons.append(f"{setup}: {result['failure']}")
            continue
        for phase, expected in (("burst", result["runs"]), ("sequential", None)):
            summary = result[phase]
            wanted = summary["runs"] if expected is None else expected
            if summary["succeeded"] != wanted or summary["runs"] != wanted:
                reasons.append(
                    f"{setup}/{phase}: {summary['succeeded']} of {wanted} runs succeeded "
                    f"{summary['statuses']} {summary['problems']}"
                )
    return reasons


# -- reporting -------------------------------------------------------------------------------


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def print_table(results: dict[str, Any]) -> None:
    header = (
        f"{'scenario':<22} {'server':<6} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'srv cpu':>7} {'cli cpu':>7} {'oth cpu':>7} {'cpu us/req':>10}"
    )
    print()
    print(header)
    print("-" * len(header))
    for scenario, entry in results.items():
        for name in SERVERS:
            r = entry[name]
            print(
                f"{SCENARIOS[scenario]:<22} {name:<6} {r['rps']:>8.1f} "
                f"{_fmt(r['latency_ms']['p50'], '.2f'):>8} "
                f"{_fmt(r['latency_ms']['p99'], '.2f'):>8} "
                f"{r['errors_total']:>6} {_fmt(r['server_cpu'], '.2f'):>7} "
                f"{_fmt(r['client_cpu'], '.2f'):>7} {_fmt(r['other_cpu'], '.2f'):>7} "
                f"{_fmt(r['server_cpu_us_per_request']):>10}"
            )
        ratios = entry["ratio_bare_over_ours"]
        rounds = [r for r in ratios["rps_by_round"] if r is not None]
        spread = f" (rounds {min(rounds)}-{max(rounds)})" if len(rounds) > 1 else ""
        print(
            f"{'':<22} {'bare/ours':<9} req/s x{_fmt(ratios['rps'])}{spread}, "
            f"p50 x{_fmt(ratios['p50'])}, p99 x{_fmt(ratios['p99'])}, "
            f"cpu/req x{_fmt(ratios['cpu_per_request'])}"
        )
    print()
    print(
        "srv/cli/oth cpu: cores kept busy by the server, the load process and everything else\n"
        "on the machine (1.00 = one core). cpu us/req: server CPU time per request.\n"
        "bare/ours: above 1 for req/s means bare is faster; below 1 for latency and cpu/req\n"
        "means bare is cheaper."
    )


def print_runs_table(runs: dict[str, Any]) -> None:
    header = (
        f"{'runs (offline model)':<22} {'phase':<10} {'runs':>5} {'ok':>5} {'runs/s':>7} "
        f"{'1st-evt p50':>11} {'p99':>7} {'succ p50':>9} {'p99':>7} {'exec p50':>8} "
        f"{'cli succ p50':>12} {'p99':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    for setup, result in runs.items():
        if "failure" in result:
            print(f"{setup:<22} FAILED: {result['failure'][:200]}")
            continue
        for phase in ("burst", "sequential"):
            r = result[phase]
            server, client = r["server"], r["client"]
            rate = r.get("runs_per_s")
            print(
                f"{setup:<22} {phase[:10]:<10} {r['runs']:>5} {r['succeeded']:>5} "
                f"{_fmt(rate, '.1f'):>7} "
                f"{_fmt(server['first_event']['p50_ms'], '.0f'):>11} "
                f"{_fmt(server['first_event']['p99_ms'], '.0f'):>7} "
                f"{_fmt(server['succeeded']['p50_ms'], '.0f'):>9} "
                f"{_fmt(server['succeeded']['p99_ms'], '.0f'):>7} "
                f"{_fmt(server['execution']['p50_ms'], '.0f'):>8} "
                f"{_fmt(client['succeeded']['p50_ms'], '.0f'):>12} "
                f"{_fmt(client['succeeded']['p99_ms'], '.0f'):>7}"
            )
        burst = result["burst"]
        cores = ", ".join(f"{k} {v:.2f}" for k, v in burst["cores"].items() if v is not None)
        print(
            f"{'':<22} burst: {burst['finished']} finished in {burst['wall_s']:.2f}s "
            f"(POSTs done after {burst['submit_s']:.2f}s, server span {burst['server']['span_s']}s"
            f" = {burst['server']['runs_per_s']} runs/s)\n{'':<22} "
            f"cpu per run {_fmt(burst['cpu_ms_per_run'])} ms; cores: {cores}"
        )
    print()
    print(
        "runs/s: finished runs / client wall time from the first POST to the last finish seen.\n"
        "1st-evt and succ (ms): server clock, event `at` of run.started (resp. run.succeeded)\n"
        "minus run.queued; exec: run.succeeded minus run.started. cli succ: the client's clock,\n"
        "POST answered -> first poll that saw `succeeded` (coarsened by the polling interval).\n"
        "burst: all runs started at once (first-event latency is mostly queueing behind the\n"
        "workers); sequential: one run at a time (the latency of an idle dispatcher)."
    )


# The targets of issue 18: (key, what, target as text, the test on the measured value).
TARGETS: list[tuple[str, str, str]] = [
    ("get_member", "GET /v1/members/{id}: ours/bare req/s", ">= 0.85"),
    ("create_crew", "POST /v1/crews: ours/bare req/s", ">= 0.85"),
    ("runs.postgres", "runs/s, PostgreSQL, 2 worker processes", ">= 150"),
    ("runs.sqlite", "runs/s, SQLite in-process", ">= 150"),
    ("stream", "SSE 1,000 subscribers, commit-to-receipt p99 ms", "< 150"),
    ("webhook", "webhook ingress accepted req/s", ">= 800"),
]


def _measured(key: str, results: dict[str, Any]) -> float | None:
    """The value a target is checked against, or None when it was not measured."""
    if key in SCENARIOS:
        entry = results.get(key)
        if not entry:
            return None
        ours, bare = entry["ours"]["rps"], entry["bare"]["rps"]
        return round(ours / bare, 2) if bare else None
    if key.startswith("runs."):
        run = results.get("runs", {}).get(key.split(".", 1)[1], {})
        return None if "burst" not in run else run["burst"].get("runs_per_s")
    if key == "stream":
        stream = results.get("stream", {})
        return None if "latency_ms" not in stream else stream["latency_ms"].get("p99")
    if key == "webhook":
        accepted = results.get("webhook", {}).get("accepted")
        return None if not accepted else accepted.get("requests_per_s")
    return None


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value and PASS, FAIL or not measured."""
    checked = []
    for key, label, target in TARGETS:
        value = _measured(key, results)
        operator, bound = target.split()
        if value is None:
            verdict = "not measured"
        elif operator == ">=":
            verdict = "PASS" if value >= float(bound) else "FAIL"
        else:
            verdict = "PASS" if value < float(bound) else "FAIL"
        checked.append(
            {"key": key, "label": label, "target": target, "measured": value, "verdict": verdict}
        )
    return checked


def print_targets(checked: list[dict[str, Any]]) -> None:
    print()
    print(f"{'target (issue 18)':<52} {'target':>8} {'measured':>9}  verdict")
    print("-" * 82)
    for row in checked:
        value = "-" if row["measured"] is None else f"{row['measured']:g}"
        print(f"{row['label']:<52} {row['target']:>8} {value:>9}  {row['verdict']}")
    print(
        "ratios: ours/bare req/s from slices alternating between the two servers in one run;\n"
        "the others are absolute, so a busy machine lowers them (see the CPU warnings)."
    )


def git_revision() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def report_problems(results: dict[str, Any], server_logs: dict[str, str]) -> bool:
    """Print errors (loudly) and disturbances; return whether any request failed."""
    errors = [
        (f"{scenario}/{name}", entry[name])
        for scenario, entry in results.items()
        for name in SERVERS
        if entry[name]["errors_total"]
    ]
    if errors:
        print("\n" + "!" * 78, file=sys.stderr)
        print("!!! BENCH INVALID: non-2xx answers or transport errors", file=sys.stderr)
        for key, r in errors:
            print(f"!!!   {key}: {r['errors_total']} errors {r['status_counts']}", file=sys.stderr)
            for sample in r["error_samples"]:
                print(f"!!!     {sample}", file=sys.stderr)
        print("!" * 78 + "\n", file=sys.stderr)
    busy = [
        (f"{scenario}/{name}", entry[name])
        for scenario, entry in results.items()
        for name in SERVERS
        if (entry[name]["other_cpu"] or 0) > OTHER_CPU_WARNING
    ]
    if busy:
        print(
            "bench: WARNING: other processes used CPU during these measurements; their numbers"
            " are disturbed (run again on a quiet machine):",
            file=sys.stderr,
        )
        for key, r in busy:
            print(f"bench:   {key}: {r['other_cpu']:.2f} cores", file=sys.stderr)
            for other in r["other_processes"][:3]:
                print(
                    f"bench:     {other['cores']:.2f} pid {other['pid']} {other['command']}",
                    file=sys.stderr,
                )
    for name, log in server_logs.items():
        if log:
            print(f"bench: the {name} server logged:\n{log[-3000:]}", file=sys.stderr)
    return bool(errors)


def report_runs_problems(runs: dict[str, Any]) -> bool:
    """Print loudly why the runs measurements are invalid; print what the processes logged."""
    reasons = runs_invalid(runs)
    if reasons:
        print("\n" + "!" * 78, file=sys.stderr)
        print("!!! BENCH INVALID: not every run succeeded (or a run setup failed)", file=sys.stderr)
        for reason in reasons:
            print(f"!!!   {reason[:1000]}", file=sys.stderr)
        print("!" * 78 + "\n", file=sys.stderr)
    for setup, result in runs.items():
        burst = result.get("burst") or {}
        other = burst.get("cores", {}).get("other")
        if other is not None and other > OTHER_CPU_WARNING:
            print(
                f"bench: WARNING: other processes used {other:.2f} cores during the {setup} "
                "runs burst; its numbers are disturbed (run again on a quiet machine):",
                file=sys.stderr,
            )
            for process in burst.get("other_processes", [])[:3]:
                print(
                    f"bench:     {process['cores']:.2f} pid {process['pid']} {process['command']}",
                    file=sys.stderr,
                )
        for name, log in result.get("logs", {}).items():
            print(f"bench: {name} logged:\n{log}", file=sys.stderr)
    return bool(reasons)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=16, help="connections (default 16)")
    parser.add_argument(
        "--duration", type=float, default=8.0, help="seconds measured per server (8)"
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternating slices (4)")
    parser.add_argument("--warmup", type=float, default=2.0, help="first warm-up, seconds (2)")
    parser.add_argument(
        "--rewarm", type=float, default=0.5, help="warm-up of later slices, seconds (0.5)"
    )
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load client (default raw: lean asyncio HTTP/1.1; httpx saturates a core first)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[*SCENARIOS, "runs", *MEASURED_APART],
        help="repeatable; default: all (runs: the run dispatcher, see --runs-setup; "
        "stream: SSE fan-out, see bench/stream_bench.py; webhook: signed ingress, see "
        "bench/webhook_bench.py; observability: metrics and traces off vs on, see "
        "bench/observability_bench.py; deliveries: signed subscription deliveries on "
        "PostgreSQL with one and two delivery processes, see bench/deliveries_bench.py; "
        "workers: serve --workers 1 vs 2 on PostgreSQL, see bench/workers_bench.py)",
    )
    parser.add_argument(
        "--trace-sample",
        type=float,
        default=0.01,
        help="observability: OTEL_TRACES_SAMPLER_ARG of the traced server (0.01: the default "
        "without OTEL_TRACES_SAMPLER, ADR 0052)",
    )
    parser.add_argument(
        "--webhook-concurrency", type=int, default=8, help="webhook connections (8)"
    )
    parser.add_argument(
        "--webhook-duration", type=float, default=5.0, help="seconds per webhook phase (5)"
    )
    parser.add_argument(
        "--stream-subscribers", type=int, default=1000, help="SSE subscribers (1000)"
    )
    parser.add_argument(
        "--stream-signals", type=int, default=20, help="runs whose run.changed they follow (20)"
    )
    parser.add_argument(
        "--deliveries-events", type=int, default=500, help="deliveries: backlog events (500)"
    )
    parser.add_argument(
        "--deliveries-subscriptions", type=int, default=4, help="deliveries: subscriptions (4)"
    )
    parser.add_argument(
        "--deliveries-latency-events",
        type=int,
        default=50,
        help="deliveries: events committed one at a time for the latency (50)",
    )
    parser.add_argument(
        "--deliveries-deadline", type=float, default=180.0, help="deliveries: seconds (180)"
    )
    parser.add_argument("--runs", type=int, default=600, help="runs in each burst (600)")
    parser.add_argument(
        "--runs-warmup", type=int, default=100, help="unmeasured runs before each burst (100)"
    )
    parser.add_argument(
        "--runs-concurrency", type=int, default=8, help="connections starting runs (8)"
    )
    parser.add_argument(
        "--sequential-runs", type=int, default=20, help="runs started one at a time (20)"
    )
    parser.add_argument(
        "--runs-setup",
        action="append",
        choices=list(RUN_SETUPS),
        help="repeatable; default: all",
    )
    parser.add_argument(
        "--runs-deadline", type=float, default=120.0, help="seconds a burst may take (120)"
    )
    parser.add_argument(
        "--runs-tool",
        choices=["internal", "external_write", "approved_write"],
        default="internal",
        help="the member's one tool: notes_write (internal, the default), a whitelisted "
        "http_post (external_write) to a local sink, whose start each run records first, or "
        "that http_post gated by an approval the client gives (approved_write)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", POSTGRES_URL),
        help="server on which a temporary database is created (BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results path")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DBs, logs)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be >= 1 and --duration > 0")
    if args.runs < 1 or args.runs_concurrency < 1 or args.sequential_runs < 1:
        parser.error("--runs, --runs-concurrency and --sequential-runs must be >= 1")
    if args.runs_warmup < 0:
        parser.error("--runs-warmup must be >= 0")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    scenarios = args.scenario or [*SCENARIOS, "runs", *MEASURED_APART]
    http_scenarios = [s for s in scenarios if s in SCENARIOS]
    run_setups = (args.runs_setup or list(RUN_SETUPS)) if "runs" in scenarios else []

    from domain.kernel import new_id

    idle_check = machine_busy_cores()
    if idle_check is not None and idle_check > OTHER_CPU_WARNING:
        print(
            f"bench: WARNING: the machine is already busy ({idle_check:.2f} cores in use "
            "before the bench starts); the numbers may be disturbed.",
            file=sys.stderr,
        )

    pinned = server_cpus()
    print(
        f"bench: server processes pinned to CPU {pinned} (CPU_AFFINITY; BENCH_SERVER_CPUS= "
        "for unpinned)"
        if pinned
        else "bench: server processes not pinned"
    )
    reference_ms = reference_workload_ms(pinned)
    print(
        f"bench: reference workload {reference_ms:.0f} ms (a fixed JSON + SQLite job; machines "
        "differ: compare it before comparing absolute numbers of two runs)"
    )
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="scaicrew-bench-"))
    workspace_id = new_id("wsp")  # wsp_ + 26 characters of [0-9a-z]
    servers: dict[str, Server] = {}
    failed = True
    try:
        results: dict[str, Any] = {}
        server_logs: dict[str, str] = {}
        if http_scenarios:
            seeds = {}
            urls = {}
            for name in SERVERS:
                urls[name] = f"sqlite:///{workdir / f'{name}.db'}"
                seeds[name] = seed(urls[name], workspace_id)
            token = mint_token(urls["ours"], workspace_id)
            print(f"bench: seeded {workspace_id} in {workdir}")

            for name, factory in SERVERS.items():
                servers[name] = Server(name, factory, urls[name], workdir)
            for server in servers.values():
                server.wait_healthy()
                print(f"bench: {server.name} pid {server.pid} on {server.base_url}")
            preflight(servers, seeds, token)

            for scenario in http_scenarios:
                print(
                    f"bench: {SCENARIOS[scenario]}: {args.duration:g}s per server in "
                    f"{args.rounds} alternating slices, {args.concurrency} connections, "
                    f"{args.client} client",
                    flush=True,
                )
                results[scenario] = measure(servers, scenario, token, seeds, args)
            server_logs = {name: server.log().strip() for name, server in servers.items()}
            for server in servers.values():  # the runs below get the machine to themselves
                server.stop()
            servers.clear()

        runs: dict[str, Any] = {}
        for setup in run_setups:
            try:
                if setup == "sqlite":
                    url = f"sqlite:///{workdir / 'runs.db'}"
                    runs[setup] = measure_runs(setup, url, workdir, args, None)
                else:
                    with postgres_database(args.postgres_url) as (url, name):
                        runs[setup] = measure_runs(setup, url, workdir, args, name)
            except (RuntimeError, OSError, subprocess.SubprocessError, SQLAlchemyError) as exc:
                # Recorded (and reported as BENCH INVALID below); the other setups still run.
                runs[setup] = {"failure": f"{type(exc).__name__}: {exc}"[-3000:]}
        if runs:
            results["runs"] = runs
        for scenario, (module_name, function_name) in MEASURED_APART.items():
            if scenario not in scenarios:
                continue
            try:
                measure_apart = getattr(importlib.import_module(module_name), function_name)
                results[scenario] = measure_apart(workdir, args)
            except (RuntimeError, OSError, subprocess.SubprocessError, SQLAlchemyError) as exc:
                # Recorded (and reported as BENCH INVALID below); the other scenarios still run.
                results[scenario] = {"failure": f"{type(exc).__name__}: {exc}"[-3000:]}

        if http_scenarios:
            print_table({k: v for k, v in results.items() if k in SCENARIOS})
        if runs:
            print_runs_table(runs)
        if "stream" in results:
            from stream_bench import print_stream_table

            print_stream_table(results["stream"])
        if "webhook" in results:
            from webhook_bench import print_webhook_table

            print_webhook_table(results["webhook"])
        if "observability" in results:
            from observability_bench import print_observability_table

            print_observability_table(results["observability"])
        if "deliveries" in results:
            from deliveries_bench import print_deliveries_table

            print_deliveries_table(results["deliveries"])
        if "workers" in results:
            from workers_bench import print_workers_table

            print_workers_table(results["workers"])
        results["targets"] = check_targets(results)
        print_targets(results["targets"])

        meta: dict[str, Any] = {
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
            "git": git_revision(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "server_cpu_affinity": server_cpus() or "not pinned",
            "reference_workload_ms": round(reference_ms, 1),
            "uvloop": _has("uvloop"),
            "httptools": _has("httptools"),
        }
        if http_scenarios:
            meta.update(
                {
                    "concurrency": args.concurrency,
                    "duration_s_per_server": args.duration,
                    "rounds": args.rounds,
                    "warmup_s": args.warmup,
                    "rewarm_s": args.rewarm,
                    "client": f"bench/load.py --client {args.client} (asyncio, separate process)",
                    "servers": {
                        "ours": "uvicorn --factory scaicrew.cli:served_app (ENV=test)",
                        "bare": "uvicorn --factory bare_app:create_app (bench/bare_app.py)",
                    },
                    "database": "SQLite file per server, WAL, migrated with scaicrew.migrate",
                }
            )
        if runs:
            meta["runs"] = {
                "driver": "bench/runs_load.py (asyncio, separate process)",
                "model": "offline (deterministic, no network)",
                "definition": RUN_DEFINITION,
                "runs_per_burst": args.runs,
                "warmup_runs_per_burst": args.runs_warmup,
                "concurrency": args.runs_concurrency,
                "sequential_runs": args.sequential_runs,
                "setups": {setup: RUN_SETUPS[setup]["label"] for setup in runs},
                "latency_source": (
                    "server: event `at` timestamps (run.started / run.succeeded minus "
                    "run.queued); client: POST answer to the first poll that saw the status"
                ),
            }
        if "stream" in results:
            meta["stream"] = {
                "driver": "bench/sse_load.py (asyncio raw HTTP/1.1, separate process)",
                "subscribers": args.stream_subscribers,
                "runs": args.stream_signals,
                "latency_source": "client wall clock at receipt minus the event's `at`",
            }
        if "webhook" in results:
            meta["webhook"] = {
                "driver": "bench/webhook_load.py (asyncio httpx, separate process)",
                "concurrency": args.webhook_concurrency,
                "duration_s_per_phase": args.webhook_duration,
                "server": "one uvicorn process, SQLite, WORKER_THREADS=0, scheduler off",
            }
        if "deliveries" in results:
            meta["deliveries"] = {
                "receiver": "threaded http.server in the bench process, verifying each "
                "signature with domain.triggers.webhook_signature.refusal",
                "workers": "scaicrew worker --threads 1, SUBSCRIPTION_DELIVERY_THREADS=4, "
                "SUBSCRIPTION_POLL_SECONDS=0.05, PostgreSQL",
                "events": args.deliveries_events,
                "subscriptions": args.deliveries_subscriptions,
                "latency_events": args.deliveries_latency_events,
                "latency_source": "receiver wall clock at receipt minus the event's `time`",
            }
        meta["elapsed_s"] = round(time.monotonic() - started, 1)
        report = {"meta": meta, "results": results}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
        print(f"bench: results written to {shown}")
        http_failed = report_problems(
            {k: v for k, v in results.items() if k in SCENARIOS}, server_logs
        )
        runs_failed = report_runs_problems(runs)
        from stream_bench import stream_invalid

        stream_reasons = stream_invalid(results["stream"]) if "stream" in results else []
        for reason in stream_reasons:
            print(f"!!! BENCH INVALID: stream: {reason}", file=sys.stderr)
        from webhook_bench import webhooks_invalid

        webhook_reasons = webhooks_invalid(results["webhook"]) if "webhook" in results else []
        for reason in webhook_reasons:
            print(f"!!! BENCH INVALID: webhook: {reason}", file=sys.stderr)
        observability_failed = "failure" in results.get("observability", {})
        from deliveries_bench import deliveries_invalid

        delivery_reasons = (
            deliveries_invalid(results["deliveries"]) if "deliveries" in results else []
        )
        for reason in delivery_reasons:
            print(f"!!! BENCH INVALID: deliveries: {reason}", file=sys.stderr)
        workers_failed = "failure" in results.get("workers", {})
        if workers_failed:
            print(f"!!! BENCH INVALID: workers: {results['workers']['failure']}", file=sys.stderr)
        failed = (
            http_failed
            or runs_failed
            or bool(stream_reasons)
            or bool(webhook_reasons)
            or observability_failed
            or bool(delivery_reasons)
            or workers_failed
        )
        print(f"bench: done in {time.monotonic() - started:.0f}s")
    finally:
        for server in servers.values():
            server.stop()
        if args.keep or failed:
            print(f"bench: kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
