"""The cost of metrics and tracing (issue 19): ``GET /v1/members/{id}`` "off" (defaults) and
"on" (``METRICS_ENABLED=true``, OTLP export to a local sink, the sampler of
``--trace-sample``), in alternating slices like the main comparison. "On" must keep at least
95% of the "off" requests/s (the ratio is printed; a lower one prints
``!!! OBSERVABILITY COST``).

Both variants are served by **one** process (``observability_app.py``: two copies of the app
over one database, switched between slices): two identical servers in two processes differed by
up to 11 %, more than the effect measured. The ratio is the one of the summed requests over the
summed time of all slices; the per-pair ratios show the spread.

The server logs at ``warning`` (as the main bench): request lines are written at ``info``, so
their cost, equal on and off, is left out of the comparison.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import httpx
from run import (
    BENCH_DIR,
    PYTHON,
    Child,
    Server,
    _fmt,
    aggregate,
    alternating_slices,
    free_port,
    mint_token,
    seed,
)

SCENARIO = "get_member"
MAX_COST = 0.05
VARIANTS = ("off", "on")


def measure_observability(workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from domain.kernel import new_id

    sink_port = free_port()
    sink = Child(
        "otlp-sink",
        [PYTHON, str(BENCH_DIR / "otlp_sink.py"), str(sink_port)],
        dict(os.environ),
        workdir,
    )
    server: Server | None = None
    try:
        sink.wait_for_output("otlp sink listening")
        workspace_id = new_id("wsp")
        url = f"sqlite:///{workdir / 'observability.db'}"
        seeded = seed(url, workspace_id)
        token = mint_token(url, workspace_id)
        server = Server(
            "observability",
            "observability_app:create_both",
            url,
            workdir,
            {
                "BENCH_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(args.trace_sample),
            },
        )
        server.wait_healthy()
        print(
            f"bench: observability cost: {SCENARIO} off vs on (metrics + traces sampled at "
            f"{args.trace_sample:g}) in one process, {args.duration:g}s each in "
            f"{args.rounds} slices",
            flush=True,
        )
        slices = alternating_slices(
            dict.fromkeys(VARIANTS, server),
            SCENARIO,
            token,
            dict.fromkeys(VARIANTS, seeded["member_id"]),
            args,
            before_slice=lambda variant: choose(server, variant),
        )
        result: dict[str, Any] = {name: aggregate(slices[name]) for name in VARIANTS}
        result["sample_ratio"] = args.trace_sample
        off_rps, on_rps = result["off"]["rps"], result["on"]["rps"]
        result["ratio_on_over_off"] = round(on_rps / off_rps, 3) if off_rps else None
        result["pair_ratios"] = [
            round(on / off, 3)
            for off, on in zip(result["off"]["rounds_rps"], result["on"]["rounds_rps"], strict=True)
            if off
        ]
        return result
    finally:
        if server is not None:
            server.stop()
        sink.stop()


def choose(server: Server, variant: str) -> None:
    """Make the server's next requests go to ``variant``'s copy of the app."""
    answer = httpx.put(f"{server.base_url}/__bench/variant", content=variant, timeout=10)
    answer.raise_for_status()


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
    pairs = result.get("pair_ratios") or []
    if pairs:
        print(f"observability on/off per pair of slices: {min(pairs):.3f} to {max(pairs):.3f}")
    if share is not None and share < 1 - MAX_COST:
        print(f"!!! OBSERVABILITY COST over {MAX_COST:.0%} of GET req/s")
