"""Operability (issue 19): structured logs that never carry a secret, Prometheus metrics that
move with a scripted scenario, and the span tree of one run with ``traceparent`` reaching a
real local HTTP tool target."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from prometheus_client.parser import text_string_to_metric_families

from domain.database import Database
from domain.kernel import Role
from scaicrew.app import build_use_cases, create_app
from scaicrew.observability import Observability, Tracing
from scaicrew.observability.logs import JsonFormatter
from scaicrew.observability.metrics import Metrics
from scaicrew.observability.tracing import otlp_provider
from scaicrew.scheduler import SchedulerLoop
from scaicrew.worker import WorkerPool
from tests.api.helpers import missing_id, validate_hook
from tests.support.domain import firing_at
from tests.support.mcp_server import McpServerProcess
from tests.support.peers import Peer, web_route
from tests.support.processes import free_port
from tests.support.runs import GETTER, app_client, published_member, run_to_end, wait_for
from tests.support.triggers import create_trigger, deliver

TOOL_HEADER_SECRET = "sk-observe-" + "h3ad3r" * 6
WEBHOOK_BODY_MARKER = "webhook-body-" + "b0dy" * 6


@pytest.fixture(scope="module")
def web() -> Iterator[Peer]:
    peer = Peer(web_route).start()
    yield peer
    peer.close()


def _client(app: Any) -> Any:
    client = app.test_client()
    client.event_hooks["response"] = [validate_hook]
    return client


# -- logs ------------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every record of the process, at DEBUG, through the real JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


class TestStructuredLogs:
    def test_requests_and_run_transitions_are_json_lines_and_no_secret_is_logged(
        self, settings, tenant, web, json_log
    ):
        mcp = McpServerProcess(key=TOOL_HEADER_SECRET)
        try:
            with app_client(
                settings,
                tool_server_allowed_hosts=mcp.host,
                tool_http_allowlist=(f"127.0.0.1:{web.port}",),
            ) as api:
                secrets = self._scenario(api, tenant, mcp, web)
        finally:
            mcp.stop()
        text = json_log.getvalue()
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} was logged"
        lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        requests = [line for line in lines if line["logger"] == "scaicrew.request"]
        created = [r for r in requests if r.get("operation_id") == "createToolServer"]
        assert created, requests
        assert created[0]["status"] == 201
        assert created[0]["workspace_id"] == tenant.workspace_id
        assert created[0]["duration_ms"] >= 0
        assert re.fullmatch(r"[A-Za-z0-9._-]{8,128}", created[0]["trace_id"])
        assert created[0]["path"] == "/v1/tool-servers"
        statuses = [
            line["run_status"]
            for line in lines
            if line["logger"] == "scaicrew.runs" and line["workspace_id"] == tenant.workspace_id
        ]
        assert {"queued", "running", "succeeded"} <= set(statuses)

    @staticmethod
    def _scenario(api: httpx.Client, tenant: Any, mcp: McpServerProcess, web: Peer) -> dict:
        """Create every kind of secret the API hands out or takes, and use each once."""
        headers = tenant.headers()
        secrets = {"session token": headers["Authorization"].split()[1]}
        key = api.post("/v1/api-keys", json={"name": "CI", "role": "viewer"}, headers=headers)
        assert key.status_code == 201, key.text
        secrets["API key"] = key.json()["secret"]
        used = api.get("/v1/crews", headers={"Authorization": f"Bearer {secrets['API key']}"})
        assert used.status_code == 200, used.text
        tool_server = api.post(
            "/v1/tool-servers",
            json={"name": "observed", "url": mcp.url, "headers": {"X-Api-Key": mcp.key}},
            headers=headers,
        )
        assert tool_server.status_code == 201, tool_server.text
        secrets["tool server header value"] = TOOL_HEADER_SECRET
        author = tenant.headers(Role.AUTHOR)
        member = published_member(api, author)
        trigger = create_trigger(api, author, member["id"], "webhook")
        secrets["webhook secret"] = trigger["secret"]
        delivered = deliver(api, trigger, {"note": WEBHOOK_BODY_MARKER})
        assert delivered.status_code == 202, delivered.text
        secrets["webhook body"] = WEBHOOK_BODY_MARKER
        secrets["webhook signature"] = delivered.request.headers["X-ScaiCrew-Signature"]
        rotated = api.post(f"/v1/triggers/{trigger['id']}/rotate-secret", headers=headers)
        assert rotated.status_code == 200, rotated.text
        secrets["rotated webhook secret"] = rotated.json()["secret"]
        wait_for(api, headers, delivered.json()["run_id"])
        ticket = api.post("/v1/stream/tickets", headers=headers)
        assert ticket.status_code == 201, ticket.text
        secrets["stream ticket"] = ticket.json()["ticket"]
        getter = published_member(api, headers, GETTER)
        assert run_to_end(api, headers, getter["id"], {"url": web.url("/ok/log")})["status"] == (
            "succeeded"
        )
        return secrets


# -- metrics ---------------------------------------------------------------------------------


def unvalidated_get(client: httpx.Client, path: str) -> httpx.Response:
    """``/metrics`` is not an operation of the contract (ADR 0039): no response validation."""
    hooks = client.event_hooks["response"]
    client.event_hooks["response"] = []
    try:
        return client.get(path)
    finally:
        client.event_hooks["response"] = hooks


def scrape(client: httpx.Client, path: str = "/metrics") -> dict[tuple[str, tuple], float]:
    response = unvalidated_get(client, path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


class TestMetrics:
    def test_metrics_are_off_by_default(self, client):
        assert unvalidated_get(client, "/metrics").status_code == 404

    def test_the_series_move_with_a_scripted_scenario(self, settings, tenant, web):
        with app_client(
            settings, METRICS_ENABLED=True, tool_http_allowlist=(f"127.0.0.1:{web.port}",)
        ) as api:
            before = scrape(api)
            headers = tenant.headers()
            member = published_member(api, headers, GETTER)
            run = run_to_end(api, headers, member["id"], {"url": web.url("/ok/metrics")})
            assert run["status"] == "succeeded"
            failed = run_to_end(api, headers, member["id"], {"url": web.url("/error/metrics")})
            assert failed["status"] == "failed"
            assert api.get(f"/v1/crews/{missing_id('crw')}", headers=headers).status_code == 404
            after = scrape(api)
            text = unvalidated_get(api, "/metrics").text

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert (
            moved("scaicrew_http_requests_total", operation="createCrew", status_class="2xx") == 1
        )
        assert moved("scaicrew_http_requests_total", operation="getCrew", status_class="4xx") == 1
        assert moved("scaicrew_http_request_duration_seconds_count", operation="startRun") == 2
        manual = {"origin": "manual"}
        assert moved("scaicrew_run_transitions_total", status="queued", **manual) == 2
        assert moved("scaicrew_run_transitions_total", status="running", **manual) == 2
        assert moved("scaicrew_run_transitions_total", status="succeeded", **manual) == 1
        assert moved("scaicrew_run_transitions_total", status="failed", **manual) == 1
        assert moved("scaicrew_runs_started_total", **manual) == 2
        assert moved("scaicrew_runs_finished_total", outcome="succeeded", **manual) == 1
        assert moved("scaicrew_runs_finished_total", outcome="failed", **manual) == 1
        assert moved("scaicrew_run_duration_seconds_count", outcome="succeeded", **manual) == 1
        assert moved("scaicrew_model_calls_total", outcome="ok") >= 2
        assert moved("scaicrew_tool_calls_total", kind="http", outcome="ok") == 1
        assert moved("scaicrew_tool_calls_total", kind="http", outcome="error") == 1
        assert moved("scaicrew_tool_call_duration_seconds_count", kind="http") == 2
        assert ("scaicrew_runs_queued", ()) in after
        assert ("scaicrew_approvals_oldest_pending_age_seconds", ()) in after
        assert ("scaicrew_subscription_deliveries_pending", ()) in after
        assert ("scaicrew_subscription_deliveries_oldest_pending_age_seconds", ()) in after
        assert ("scaicrew_stream_subscribers", ()) in after
        assert value(after, "scaicrew_db_pool_checked_out") >= 0
        # Bounded labels: no id, no path, no workspace id.
        for forbidden in (tenant.workspace_id, member["id"], run["id"], "/v1/"):
            assert forbidden not in text

    def test_webhook_deliveries_are_counted_by_result(self, settings, tenant):
        with app_client(settings, METRICS_ENABLED=True) as api:
            author = tenant.headers(Role.AUTHOR)
            member = published_member(api, author)
            trigger = create_trigger(api, author, member["id"], "webhook")
            before = scrape(api)
            assert deliver(api, trigger, {"n": 1}, key="once").status_code == 202
            replay = deliver(api, trigger, {"n": 1}, key="once")
            assert replay.headers.get("Idempotent-Replayed") == "true"
            assert deliver(api, trigger, {"n": 2}, secret="whsec_forged").status_code == 401
            after = scrape(api)
        for result in ("accepted", "replayed", "refused"):
            name = "scaicrew_webhook_deliveries_total"
            assert value(after, name, result=result) - value(before, name, result=result) == 1
        started = "scaicrew_runs_started_total"
        assert (
            value(after, started, origin="webhook") - value(before, started, origin="webhook") == 1
        )

    def test_budgets_are_counted_by_state(self, settings, tenant):
        with app_client(settings, METRICS_ENABLED=True) as api:
            before = scrape(api)
            body = {"name": "M", "scope": {"type": "workspace"}, "period": "day"}
            r = api.post("/v1/budgets", json={**body, "limit_units": 5}, headers=tenant.headers())
            assert r.status_code == 201, r.text
            after = scrape(api)
        moved = value(after, "scaicrew_budgets", state="ok") - value(
            before, "scaicrew_budgets", state="ok"
        )
        assert moved >= 1  # other tests' budgets may come and go meanwhile
        assert {labels for name, labels in after if name == "scaicrew_budgets"} == {
            (("state", "ok"),),
            (("state", "warning"),),
            (("state", "exceeded"),),
        }

    def test_on_its_own_port_metrics_are_not_on_the_api_port(self, settings):
        port = free_port()
        with app_client(settings, METRICS_ENABLED=True, METRICS_PORT=port) as api:
            assert unvalidated_get(api, "/metrics").status_code == 404
            assert api.get("/health").status_code == 200
            with httpx.Client() as outside:
                samples = scrape(outside, f"http://127.0.0.1:{port}/metrics")
        assert (
            value(
                samples, "scaicrew_http_requests_total", operation="getHealth", status_class="2xx"
            )
            == 1
        )


# -- traces ----------------------------------------------------------------------------------


class TestTraces:
    def test_one_runs_span_tree_and_traceparent_reaching_the_tool_target(
        self, settings, tenant, web
    ):
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        observability = Observability(tracing=Tracing(provider))
        app = create_app(
            settings.with_changes(tool_http_allowlist=(f"127.0.0.1:{web.port}",)),
            observability=observability,
        )
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        incoming = f"00-{trace_id}-00f067aa0ba902b7-01"
        path = f"/ok/{tenant.workspace_id}/traced"
        headers = tenant.headers()
        with _client(app) as api:
            member = published_member(api, headers, GETTER)
            created = api.post(
                f"/v1/members/{member['id']}/runs",
                json={"input": {"url": web.url(path)}},
                headers={**headers, "traceparent": incoming},
            )
            assert created.status_code == 202, created.text
            run = wait_for(api, headers, created.json()["id"])
            assert run["status"] == "succeeded"
        provider.force_flush()
        spans = exporter.get_finished_spans()
        by_id = {span.context.span_id: span for span in spans}

        def parent_of(span: Any) -> Any:
            return by_id.get(span.parent.span_id) if span.parent else None

        [request] = [s for s in spans if s.name == "startRun"]
        assert format(request.context.trace_id, "032x") == trace_id
        assert format(request.parent.span_id, "016x") == "00f067aa0ba902b7"
        [queue] = [s for s in spans if s.name == "run.queue"]
        assert parent_of(queue) is request
        [execute] = [
            s
            for s in spans
            if s.name == "run.execute" and s.attributes["scaicrew.run_id"] == run["id"]
        ]
        assert parent_of(execute) is queue
        assert [link.context.span_id for link in execute.links] == [queue.context.span_id]
        [tool] = [s for s in spans if s.name == "tool.http GET"]
        assert parent_of(tool) is execute
        models = [s for s in spans if s.name == "model.complete" and parent_of(s) is execute]
        assert models
        db = [s for s in spans if s.name.startswith("db ") and parent_of(s) in (request, execute)]
        # Writes too: on SQLite they go through the writers' own engine (ADR 0066); on
        # PostgreSQL a step's update and its events are one statement (db WITH UPDATE INSERT).
        assert {"INSERT", "UPDATE"} <= {verb for s in db for verb in s.name.split()[1:]}
        assert {s.context.trace_id for s in (request, queue, execute, tool, *models, *db)} == {
            request.context.trace_id
        }
        # The X-Request-ID of a traced request is its trace id.
        assert created.headers["X-Request-ID"] == trace_id
        # The tool target got the traceparent of the tool call's span.
        [received] = web.received("GET", path)
        sent = received.headers["traceparent"]
        assert sent == f"00-{trace_id}-{format(tool.context.span_id, '016x')}-01"

    def test_a_run_claimed_by_another_process_joins_the_trace_that_queued_it(
        self, settings, tenant, web
    ):
        """The API process only queues; a dispatcher with its own tracer provider (as in a
        ``scaicrew worker`` process) claims the run. Nothing but the ``traceparent`` stored with
        the run connects the two (ADR 0047)."""
        api_spans, worker_spans = InMemorySpanExporter(), InMemorySpanExporter()
        api_provider, worker_provider = TracerProvider(), TracerProvider()
        api_provider.add_span_processor(SimpleSpanProcessor(api_spans))
        worker_provider.add_span_processor(SimpleSpanProcessor(worker_spans))
        own = settings.with_changes(
            tool_http_allowlist=(f"127.0.0.1:{web.port}",), WORKER_THREADS=0
        )
        api_app = create_app(own, observability=Observability(tracing=Tracing(api_provider)))
        database = Database(own.database_url)
        worker_observability = Observability(metrics=Metrics(), tracing=Tracing(worker_provider))
        pool = WorkerPool(
            build_use_cases(own, database, observability=worker_observability), 1, 0.05
        )
        path = f"/ok/{tenant.workspace_id}/elsewhere"
        headers = tenant.headers()
        try:
            with _client(api_app) as api:
                member = published_member(api, headers, GETTER)
                created = api.post(
                    f"/v1/members/{member['id']}/runs",
                    json={"input": {"url": web.url(path)}},
                    headers=headers,
                )
                assert created.status_code == 202, created.text
                with database() as tx:
                    stored = tx.runs.get(None, created.json()["id"])
                assert stored is not None and stored.trace_context is not None
                pool.start()
                run = wait_for(api, headers, created.json()["id"])
                assert run["status"] == "succeeded"
        finally:
            pool.stop()
            database.dispose()
        [queue] = [s for s in api_spans.get_finished_spans() if s.name == "run.queue"]
        [request] = [s for s in api_spans.get_finished_spans() if s.name == "startRun"]
        assert queue.parent.span_id == request.context.span_id
        trace_id = format(queue.context.trace_id, "032x")
        flags = format(int(queue.context.trace_flags), "02x")
        assert stored.trace_context == f"00-{trace_id}-{queue.context.span_id:016x}-{flags}"
        spans = worker_spans.get_finished_spans()
        [execute] = [s for s in spans if s.name == "run.execute"]
        assert execute.context.trace_id == queue.context.trace_id
        assert execute.parent.span_id == queue.context.span_id
        assert execute.parent.is_remote
        assert [link.context.span_id for link in execute.links] == [queue.context.span_id]
        assert execute.attributes["scaicrew.run_origin"] == "manual"
        [tool] = [s for s in spans if s.name == "tool.http GET"]
        assert tool.parent.span_id == execute.context.span_id
        assert [
            s
            for s in spans
            if s.name.startswith("db ") and s.parent.span_id == execute.context.span_id
        ]
        [received] = web.received("GET", path)
        assert (
            received.headers["traceparent"] == f"00-{trace_id}-{tool.context.span_id:016x}-{flags}"
        )

    def test_an_unsampled_request_queues_a_run_whose_steps_are_not_sampled(
        self, settings, tenant, web
    ):
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=ParentBased(ALWAYS_OFF))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        app = create_app(
            settings.with_changes(tool_http_allowlist=(f"127.0.0.1:{web.port}",)),
            observability=Observability(tracing=Tracing(provider)),
        )
        path = f"/ok/{tenant.workspace_id}/unsampled"
        headers = tenant.headers()
        with _client(app) as api:
            member = published_member(api, headers, GETTER)
            run = run_to_end(api, headers, member["id"], {"url": web.url(path)})
            assert run["status"] == "succeeded"
        assert exporter.get_finished_spans() == ()
        [received] = web.received("GET", path)
        # Propagated unsampled (the sampled flag clear), so the target's tracer drops it too.
        assert int(received.headers["traceparent"].rsplit("-", 1)[1], 16) & 1 == 0

    def test_a_scheduler_tick_is_the_trace_of_the_runs_it_fires(self, isolated):
        """No request starts a scheduled run: the tick's own root span does, so the run's
        steps still have a trace to join (``scheduler.tick`` -> ``run.queue`` ->
        ``run.execute``)."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracing = Tracing(provider)
        app = create_app(isolated.settings, observability=Observability(tracing=tracing))
        headers = isolated.tenant.headers(Role.AUTHOR)
        with _client(app) as api:
            member = published_member(api, headers)
            create_trigger(
                api, headers, member["id"], "schedule", cron="* * * * *", input={"report": "x"}
            )
            # Ten seconds into a minute two minutes ahead: a slot after the trigger's creation.
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            at = now + timedelta(minutes=2, seconds=10)
            loop = SchedulerLoop(firing_at(app.context.use_cases, at), 60, tracing)
            assert loop.tick_once() == 1
            [queued] = api.get("/v1/runs", headers=headers).json()["items"]
            wait_for(api, headers, queued["id"])
        provider.force_flush()
        spans = exporter.get_finished_spans()
        by_id = {span.context.span_id: span for span in spans}
        [tick] = [s for s in spans if s.name == "scheduler.tick"]
        assert tick.parent is None and tick.attributes["scaicrew.slots_fired"] == 1
        [queue] = [s for s in spans if s.name == "run.queue"]
        assert by_id[queue.parent.span_id] is tick
        assert queue.attributes["scaicrew.run_id"] == queued["id"]
        [execute] = [s for s in spans if s.name == "run.execute"]
        assert by_id[execute.parent.span_id] is queue
        assert any(
            s.name.startswith("db ") and s.parent.span_id == tick.context.span_id
            for s in spans
            if s.parent
        )

    def test_without_a_tracer_no_traceparent_is_sent(self, settings, tenant, web):
        path = f"/ok/{tenant.workspace_id}/untraced"
        headers = tenant.headers()
        with app_client(settings, tool_http_allowlist=(f"127.0.0.1:{web.port}",)) as api:
            member = published_member(api, headers, GETTER)
            run = run_to_end(api, headers, member["id"], {"url": web.url(path)})
            assert run["status"] == "succeeded"
        [received] = web.received("GET", path)
        assert "traceparent" not in received.headers


def test_without_a_sampler_variable_one_trace_in_a_hundred_is_sampled():
    """The SDK's own default samples every request (about a sixth of GET req/s here); ours
    is 1 % unless ``OTEL_TRACES_SAMPLER`` says otherwise (ADR 0052)."""
    ours = otlp_provider("http://127.0.0.1:9", environ={})
    told = otlp_provider("http://127.0.0.1:9", environ={"OTEL_TRACES_SAMPLER": "always_on"})
    try:
        assert ours.sampler.get_description() == (
            "ParentBased{root:TraceIdRatioBased{0.01},remoteParentSampled:AlwaysOnSampler,"
            "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
            "localParentNotSampled:AlwaysOffSampler}"
        )
        assert "TraceIdRatioBased" not in told.sampler.get_description()  # the SDK's choice
    finally:
        ours.shutdown()
        told.shutdown()


def test_metrics_register_on_a_private_registry_so_apps_can_coexist():
    first, second = Metrics(), Metrics()
    first.observe_request("getHealth", 200, 0.001)
    assert first.registry is not second.registry
    assert (
        second.registry.get_sample_value(
            "scaicrew_http_requests_total", {"operation": "getHealth", "status_class": "2xx"}
        )
        == 0
    )
