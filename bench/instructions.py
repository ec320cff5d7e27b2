"""Instructions per request of the real app or the baseline, counted by valgrind's callgrind.

CPU time on the machines this project is measured on moves by 20-50% from one minute to the
next (``make bench`` prints a reference workload for that reason); an instruction count does
not move: the same code and request give the same count to within about 1%. It is the tool
for deciding whether a change to the request path saves work, before ``make bench`` says
what the saving is worth in requests per second (instructions are not time: cache misses,
system calls and waits are not in them).

Runs ``bench/asgi_cost.py`` under ``valgrind --tool=callgrind`` with counting switched on
only around the measured requests (not the start-up, seeding or warm-up), once per app:

    .venv/bin/python bench/instructions.py --scenario webhook --requests 300
    .venv/bin/python bench/instructions.py --scenario get_member   # real and bare, and the ratio

valgrind slows Python down about 30 times: 300 requests take a minute or two per app.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def count(scenario: str, kind: str, requests: int) -> int:
    """Instructions callgrind counted over ``requests`` requests of ``kind``'s app."""
    with tempfile.TemporaryDirectory(prefix="instructions-") as workdir:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={workdir}/callgrind.out",
            sys.executable,
            str(BENCH_DIR / "asgi_cost.py"),
            "--scenario",
            scenario,
            "--only",
            kind,
            "--requests",
            str(requests),
            "--rounds",
            "1",
            "--callgrind",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    collected = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or collected is None:
        raise RuntimeError(f"callgrind run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return int(collected.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario", choices=("get_member", "create_crew", "webhook"), default="webhook"
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--only", choices=("real", "bare"))
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("instructions.py needs valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    kinds = ["real"] if args.scenario == "webhook" else ["bare", "real"]
    if args.only:
        kinds = [args.only]
    per_request = {}
    for kind in kinds:
        per_request[kind] = count(args.scenario, kind, args.requests) / args.requests
        print(f"{kind:5s} {args.scenario}: {per_request[kind]:,.0f} instructions per request")
    if len(per_request) == 2:
        ratio = per_request["bare"] / per_request["real"]
        print(f"bare/real instructions: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
