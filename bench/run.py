"""``make bench``: load the real server from a second process and compare with bare Starlette.

1. Two temporary SQLite databases are migrated and seeded alike (a workspace, an admin
   membership, a crew, a member), and one session token is minted for the workspace.
2. Two servers start under uvicorn, each in its own process on a free loopback port, with
   the same uvicorn options: the real app (``scaicrew.app:create_app``, ENV=test) and the
   baseline ``bench/bare_app.py``, each on its own database.
3. A preflight sends one request of each scenario to both servers and checks that they answer
   2xx with the same JSON fields.
4. For each scenario, ``bench/load.py`` loads the servers from a separate process (closed loop,
   ``--concurrency`` connections). The ``--duration`` seconds measured per server are split
   into ``--rounds`` slices that alternate between the two servers, so that a background load
   on the machine that comes and goes weighs on both alike; every slice starts with a short
   discarded warm-up (the first one with ``--warmup`` seconds).
5. A table with requests/s, p50/p99 latency, errors, CPU use and the bare/ours ratios is
   printed, and the numbers are written to ``bench/results/latest.json``.

Any non-2xx answer makes the run fail loudly (exit status 1). Client and servers share the
machine's cores, so the CPU columns say who was the bottleneck, and the run warns when other
processes took CPU during a measurement (and names them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from load import machine_cpu_seconds, percentile, process_cpu_seconds

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
    "ours": "scaicrew.app:create_app",
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


# -- setup -----------------------------------------------------------------------------------


def seed(url: str, workspace_id: str) -> dict[str, str]:
    """Migrate the database at ``url`` and create the workspace, a crew and a member."""
    from domain import services
    from domain.model import Actor, Definition, Role
    from domain.unit_of_work import Database
    from scaicrew.migrate import upgrade

    upgrade(url)
    database = Database(url)
    try:
        services.ensure_workspace_member(
            database, workspace_id, SUBJECT, Role.ADMIN, name="Bench workspace"
        )
        actor = Actor(workspace_id=workspace_id, subject=SUBJECT, role=Role.ADMIN)
        crew = services.create_crew(database, actor, "Bench crew", "Seeded by bench/run.py")
        member = services.create_member(
            database,
            actor,
            crew_id=crew.id,
            name="Bench member",
            description="Seeded by bench/run.py",
            definition=Definition.from_json(DEFINITION),
        )
    finally:
        database.dispose()
    return {"workspace_id": workspace_id, "crew_id": crew.id, "member_id": member.id}


def mint_token(url: str, workspace_id: str) -> str:
    from domain.model import Role
    from scaicrew.cli import mint_session_token
    from scaicrew.settings import Secret, Settings

    settings = Settings(env="test", database_url=url, session_secret=Secret(SESSION_SECRET))
    return mint_session_token(
        settings, workspace_id=workspace_id, subject=SUBJECT, role=Role.ADMIN, ttl_seconds=3600
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(url: str) -> dict[str, str]:
    from scaicrew.settings import Settings

    env = dict(os.environ)
    for field in dataclasses.fields(Settings):  # nothing from the caller's shell leaks in
        env.pop(field.name.upper(), None)
    env.update(
        ENV="test",
        DATABASE_URL=url,
        SESSION_SECRET=SESSION_SECRET,
        LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
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


class Server:
    """One uvicorn process serving ``factory`` on a free loopback port."""

    def __init__(self, name: str, factory: str, url: str, workdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}-server.log"
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
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            "1",
        ]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=server_environment(url),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server not healthy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


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
    server: Server,
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


def measure(
    servers: dict[str, Server],
    scenario: str,
    token: str,
    seeds: dict[str, dict[str, str]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Alternate slices between the servers, then merge them per server."""
    slices: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    slice_duration = args.duration / args.rounds
    for round_number in range(args.rounds):
        # Alternate which server goes first, so neither always follows the other.
        order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
        for name in order:
            slices[name].append(
                load_slice(
                    servers[name],
                    scenario,
                    token,
                    seeds[name]["member_id"],
                    args,
                    warmup=args.warmup if round_number == 0 else args.rewarm,
                    duration=slice_duration,
                    tag=f"{name}{os.getpid()}r{round_number}",
                )
            )
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


def cpu_snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds used so far by every process, with a short command line."""
    snapshot = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        seconds = process_cpu_seconds(pid)
        if seconds is None:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            command = ""
        snapshot[pid] = (command[:100] or f"pid {pid}", seconds)
    return snapshot


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
        "--scenario", action="append", choices=list(SCENARIOS), help="repeatable; default: all"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results path")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (DBs, logs)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0:
        parser.error("--rounds must be >= 1 and --duration > 0")
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    scenarios = args.scenario or list(SCENARIOS)

    from domain.ids import new_id

    idle_check = machine_busy_cores()
    if idle_check is not None and idle_check > OTHER_CPU_WARNING:
        print(
            f"bench: WARNING: the machine is already busy ({idle_check:.2f} cores in use "
            "before the bench starts); the numbers may be disturbed.",
            file=sys.stderr,
        )

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="scaicrew-bench-"))
    workspace_id = new_id("wsp")  # wsp_ + 26 characters of [0-9a-z]
    servers: dict[str, Server] = {}
    failed = True
    try:
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
            print(f"bench: {server.name} server pid {server.pid} on {server.base_url}")
        preflight(servers, seeds, token)

        results: dict[str, Any] = {}
        for scenario in scenarios:
            print(
                f"bench: {SCENARIOS[scenario]}: {args.duration:g}s per server in {args.rounds} "
                f"alternating slices, {args.concurrency} connections, {args.client} client",
                flush=True,
            )
            results[scenario] = measure(servers, scenario, token, seeds, args)

        server_logs = {name: server.log().strip() for name, server in servers.items()}
        print_table(results)

        report = {
            "meta": {
                "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                "git": git_revision(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "uvloop": _has("uvloop"),
                "httptools": _has("httptools"),
                "concurrency": args.concurrency,
                "duration_s_per_server": args.duration,
                "rounds": args.rounds,
                "warmup_s": args.warmup,
                "rewarm_s": args.rewarm,
                "client": f"bench/load.py --client {args.client} (asyncio, separate process)",
                "servers": {
                    "ours": "uvicorn --factory scaicrew.app:create_app (ENV=test)",
                    "bare": "uvicorn --factory bare_app:create_app (bench/bare_app.py)",
                },
                "database": "SQLite file per server, WAL, migrated with scaicrew.migrate",
                "elapsed_s": round(time.monotonic() - started, 1),
            },
            "results": results,
        }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
        print(f"bench: results written to {shown}")
        failed = report_problems(results, server_logs)
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
