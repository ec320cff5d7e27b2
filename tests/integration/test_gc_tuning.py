"""The cycle collector of a serving process is tuned once its app is built (ADR 0055)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from scaicrew.settings import Settings
from tests.support.processes import ROOT, environment

_PROBE = """
import gc, json
from scaicrew.cli import served_app
before = gc.get_freeze_count()
served_app()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                  "threshold": gc.get_threshold()}))
"""


def test_a_served_app_freezes_its_start_up_heap_and_collects_young_objects_less_often(
    settings: Settings,
) -> None:
    # In a child process: a frozen heap is never collected, so this test process must not.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        env=environment(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["before"] == 0
    assert probe["frozen"] > 50_000  # the app, its spec and its modules
    assert probe["threshold"] == [10_000, 10, 10]


def test_building_an_app_leaves_the_collector_alone(settings: Settings) -> None:
    from scaicrew.app import create_app

    threshold, frozen = gc.get_threshold(), gc.get_freeze_count()
    create_app(settings)
    assert (gc.get_threshold(), gc.get_freeze_count()) == (threshold, frozen)
