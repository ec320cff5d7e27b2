"""The cost of metrics and tracing (issue 19): ``GET /v1/members/{id}`` against our app twice,
"off" (defaults) and "on" (``METRICS_ENABLED=true``, OTLP export to a local sink, the sampler of
``--trace-sample``), in alternating slices like the main comparison. "On" must keep at least 95%
of the "off" requests/s (the ratio is printed; a lower one prints ``!!! OBSERVABILITY COST``).

Both servers log at ``warning`` (as the main bench): request lines are written at ``info``, so
their cost, equal on and off, is left out of the comparison.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from run import (
    BENCH_DIR,
    PYTHON,
    SERVERS,
    Child,
    Server,
    _fmt,
    aggregate,
    free_port,
    load_slice,
    mint_token,
    seed,
)

SCENARIO = "get_member"
MAX_COST = 0.05


def measure_observability(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from domain.kernel import new_id

    sink_port = free_port()
    sink = Child(
        "otlp-sink",
        [PYTHON, str(BENCH_DIR / "otlp_sink.py"), str(sink_port)],
        dict(os.environ),
        workdir,
    )
    servers: dict[str, Server] = {}
    try:
        sink.wait_for_output("otlp sink listening")
        workspace_id = new_id("wsp")
        seeds, token = {}, ""
        on = {
            "METRICS_ENABLED": "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(args.trace_sample),
        }
        for name, overrides in (("off", {}), ("on", on)):
            url = f"sqlite:///{workdir / f'observability-{name}.db'}"
            seeds[name] = seed(url, workspace_id)
            token = mint_token(url, workspace_id)
            servers[name] = Server(
                f"observability-{name}", SERVERS["ours"], url, workdir, overrides
            )
        for server in servers.values():
            server.wait_healthy()
        print(
            f"bench: observability cost: {SCENARIO} off vs on (metrics + traces sampled at "
            f"{args.trace_sample:g}), {args.duration:g}s each in {args.rounds} slices",
            flush=True,
        )
        slices: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for round_number in range(args.rounds):
            order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
            for name in order:
                slices[name].append(
                    load_slice(
                        servers[name],
                        SCENARIO,
                        token,
                        seeds[name]["member_id"],
                        args,
                        warmup=args.warmup if round_number == 0 else args.rewarm,
                        duration=args.duration / args.rounds,
                        tag=f"obs{name}{os.getpid()}r{round_number}",
                    )
                )
        result: dict[str, Any] = {name: aggregate(slices[name]) for name in servers}
        result["sample_ratio"] = args.trace_sample
        off_rps, on_rps = result["off"]["rps"], result["on"]["rps"]
        result["ratio_on_over_off"] = round(on_rps / off_rps, 3) if off_rps else None
        return result
    finally:
        for server in servers.values():
            server.stop()
        sink.stop()


def print_observability_table(result: dict[str, Any]) -> None:
    print()
    if "failure" in result:
        print(f"observability cost FAILED: {result['failure'][:300]}")
        return
    for name in ("off", "on"):
        entry = result[name]
        print(
            f"observability {name:>3}: {_fmt(entry['rps'])} req/s, p50 "
            f"{_fmt(entry['latency_ms']['p50'])} ms, p99 {_fmt(entry['latency_ms']['p99'])} ms, "
            f"server cpu {_fmt(entry['server_cpu_us_per_request'])} us/request, errors "
            f"{entry['errors']}"
        )
    share = result["ratio_on_over_off"]
    sampled = result["sample_ratio"]
    print(f"observability on/off req/s: {_fmt(share, '.3f')} (traces sampled at {sampled:g})")
    if share is not None and share < 1 - MAX_COST:
        print(f"!!! OBSERVABILITY COST over {MAX_COST:.0%} of GET req/s")
