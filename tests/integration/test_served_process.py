"""A serving process once its app is built: its cycle collector tuned (ADR 0055), and pinned
to ``CPU_AFFINITY``'s CPUs when set."""

from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from scaicrew.affinity import claims_directory, pin_to_cpus
from scaicrew.settings import Settings, SettingsError
from tests.support.processes import ROOT, environment

_PROBE = """
import gc, json, os, threading
from scaicrew.cli import served_app
before = gc.get_freeze_count()
served_app()
later = []
thread = threading.Thread(target=lambda: later.append(sorted(os.sched_getaffinity(0))))
thread.start(); thread.join()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                  "threshold": gc.get_threshold(), "cpus": sorted(os.sched_getaffinity(0)),
                  "thread_cpus": later[0]}))
"""


def served(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """What ``_PROBE`` saw in a child process serving with ``settings`` and ``overrides``."""
    # In a child process: a frozen heap is never collected, so this test process must not.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=environment(settings, **overrides),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return probe


def test_a_served_app_freezes_its_start_up_heap_and_collects_young_objects_less_often(
    settings: Settings,
) -> None:
    probe = served(settings)
    assert probe["before"] == 0
    assert probe["frozen"] > 50_000  # the app, its spec and its modules
    assert probe["threshold"] == [10_000, 10, 10]


def test_building_an_app_leaves_the_collector_alone(settings: Settings) -> None:
    from scaicrew.app import create_app

    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    create_app(settings)
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)


def test_a_served_app_with_cpu_affinity_runs_its_threads_on_those_cpus(settings: Settings) -> None:
    cpu = max(os.sched_getaffinity(0))
    probe = served(settings, cpu_affinity=str(cpu))
    assert probe["cpus"] == [cpu]
    assert probe["thread_cpus"] == [cpu]  # a thread started later inherits it


def test_without_cpu_affinity_a_served_app_is_not_pinned(settings: Settings) -> None:
    assert served(settings)["cpus"] == sorted(os.sched_getaffinity(0))


def test_cpu_affinity_takes_cpu_numbers() -> None:
    with pytest.raises(SettingsError, match="CPU_AFFINITY takes CPU numbers"):
        Settings.from_env({"ENV": "test", "CPU_AFFINITY": "1,fast"})


def test_pinning_to_a_cpu_the_process_may_not_use_is_refused_with_the_cpus_it_may() -> None:
    beyond = max(os.sched_getaffinity(0)) + 1000
    with pytest.raises(SettingsError, match=f"CPUs \\[{beyond}\\] this process may not run on"):
        pin_to_cpus((str(beyond),))


@pytest.mark.parametrize("processes", ["1", "2"])
def test_serve_with_an_unusable_cpu_affinity_exits_with_the_reason(
    settings: Settings, processes: str
) -> None:
    if processes != "1" and settings.database_url.startswith("sqlite"):
        settings = settings.with_changes(database_url="postgresql+psycopg://u@127.0.0.1/none")
    beyond = max(os.sched_getaffinity(0)) + 1000
    done = subprocess.run(
        [sys.executable, "-m", "scaicrew.cli", "serve", "--no-migrate", "--workers", processes],
        cwd=ROOT,
        env=environment(settings, cpu_affinity=str(beyond)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert f"CPU_AFFINITY names CPUs [{beyond}]" in done.stderr


_CLAIM = """
import sys
from scaicrew.affinity import pin_to_one_of
print(pin_to_one_of(("{a}", "{b}"), sys.argv[1]), flush=True)
sys.stdin.read()  # holds its claim until the test closes stdin
"""


def test_processes_of_one_group_each_take_a_cpu_of_their_own(tmp_path: Any) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("needs two CPUs")
    code = _CLAIM.format(a=allowed[0], b=allowed[1])
    group = f"test-{os.getpid()}-{tmp_path.name}"
    first = subprocess.Popen(
        [sys.executable, "-c", code, group],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        taken = int(first.stdout.readline())
        second = subprocess.run(
            [sys.executable, "-c", code, group],
            cwd=ROOT,
            input="",
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert {taken, int(second.stdout.strip())} == {allowed[0], allowed[1]}
    finally:
        first.communicate(input="", timeout=60)
        shutil.rmtree(claims_directory(group), ignore_errors=True)
