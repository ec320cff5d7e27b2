"""A ``scaicrew worker`` process serves its own metrics on ``METRICS_PORT`` and logs its run
transitions as JSON lines (ADRs 0039, 0041)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_dispatcher_processes import queue_runs, wait_all_finished
from tests.support.processes import Process, environment, free_port


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        process.stop()


def test_a_worker_process_serves_its_metrics_on_its_port_and_logs_json(
    settings, database, use_cases, make_tenant, tmp_path, processes
):
    actor, run_ids = queue_runs(use_cases, make_tenant, 2)
    port = free_port()
    worker = Process(
        ["worker", "--threads", "1"],
        environment(
            settings,
            worker_poll_seconds=0.1,
            metrics_enabled="true",
            metrics_port=port,
            log_format="json",
            log_level="info",
        ),
        tmp_path / "worker.log",
    )
    processes.append(worker)
    worker.wait_for_output("worker started (1 threads)")
    runs = wait_all_finished(database, actor, run_ids)
    assert [run.status.value for run in runs] == ["succeeded"] * 2

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    manual_succeeded = (("origin", "manual"), ("outcome", "succeeded"))
    assert (
        samples[("scaicrew_run_transitions_total", (("origin", "manual"), ("status", "succeeded")))]
        >= 2
    )
    assert samples[("scaicrew_runs_finished_total", manual_succeeded)] >= 2
    assert samples[("scaicrew_run_duration_seconds_count", manual_succeeded)] >= 2
    assert ("scaicrew_runs_queued", ()) in samples
    assert actor.workspace_id not in text

    worker.proc.terminate()
    assert worker.proc.wait(15) == 0, worker.output()
    lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    transitions = [
        (line["run_id"], line["run_status"])
        for line in lines
        if line["logger"] == "scaicrew.runs" and line.get("workspace_id") == actor.workspace_id
    ]
    for run_id in run_ids:
        assert (run_id, "running") in transitions
        assert (run_id, "succeeded") in transitions
