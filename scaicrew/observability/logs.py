"""Logs: readable text by default, one JSON object a line with ``LOG_FORMAT=json``.

Request lines (logger ``scaicrew.request``) and run-transition lines (``scaicrew.runs``) carry
their facts as ``extra`` fields; the JSON formatter writes those fields, the text formatter only
the message (which names them too). Nothing here ever receives a header, a body, a query string
or a secret: request lines name the method, the path template's operationId and the path.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from domain.kernel import Signal
from handlers.tracing import current_trace_id

#: The ``extra`` fields a JSON line carries, when a record has them.
FIELDS = (
    "trace_id",
    "span_id",
    "operation_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "workspace_id",
    "run_id",
    "run_status",
)

request_log = logging.getLogger("scaicrew.request")
runs_log = logging.getLogger("scaicrew.runs")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the known fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None and value != "":
                line[name] = value
        if "trace_id" not in line:
            trace_id = current_trace_id()
            if trace_id != "unknown":
                line["trace_id"] = trace_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(log_format: str, level: str) -> None:
    """Send every log record (uvicorn's included) to stderr in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True


def log_request(
    *,
    method: str,
    path: str,
    operation_id: str,
    status: int,
    duration: float,
    trace_id: str,
    workspace_id: str,
) -> None:
    """One line per answered request."""
    duration_ms = round(duration * 1000, 2)
    request_log.info(
        "%s %s %d %.2fms %s",
        method,
        path,
        status,
        duration_ms,
        operation_id,
        extra={
            "method": method,
            "path": path,
            "operation_id": operation_id,
            "status": status,
            "duration_ms": duration_ms,
            "trace_id": trace_id,
            "workspace_id": workspace_id,
        },
    )


def log_run_transition(signal: Signal, trace_id: str = "") -> None:
    """One line per run transition (a ``run.changed`` signal)."""
    if signal.kind != "run.changed" or not runs_log.isEnabledFor(logging.INFO):
        return
    run_id = str(signal.data.get("run_id", ""))
    status = str(signal.data.get("status", ""))
    runs_log.info(
        "run %s %s",
        run_id,
        status,
        extra={
            "run_id": run_id,
            "run_status": status,
            "workspace_id": signal.workspace_id,
            "trace_id": trace_id or None,
        },
    )
