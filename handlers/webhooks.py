"""Webhook ingress: public (no credential), authenticated by the delivery's HMAC signature.

``async`` because the signature covers the exact bytes received, which only the async request
API exposes: ``await request.body()``. Connexion's body validator replays the original body
messages, so these are the client's bytes, not a re-serialisation. The handler takes no
``body`` argument on purpose: Connexion would read the body for it through another request
object (``connexion.request`` builds a new one on every access), and the stream could not be
read a second time here. The validator already checked that the bytes are a JSON object, so
parsing them again cannot fail. The use case runs in the thread pool like every sync handler.
"""

from __future__ import annotations

import json
from typing import Any

from connexion import request
from starlette.concurrency import run_in_threadpool

from domain.triggers import WebhookDelivery
from handlers._http import ok, request_header, use_cases

TIMESTAMP_HEADER = "X-ScaiCrew-Timestamp"
SIGNATURE_HEADER = "X-ScaiCrew-Signature"


async def receive_webhook(trigger_id: str) -> Any:
    raw = await request.body()
    timestamp, signature = request_header(TIMESTAMP_HEADER), request_header(SIGNATURE_HEADER)
    assert timestamp is not None and signature is not None  # required: the validator checked
    delivery = WebhookDelivery(
        trigger_id=trigger_id,
        raw_body=raw,
        body=json.loads(raw),
        timestamp=timestamp,
        signature=signature,
        idempotency_key=request_header("Idempotency-Key"),
    )
    # A refusal (WebhookRejected) is one answer for every reason, unknown trigger included.
    result = await run_in_threadpool(use_cases().firing.receive_webhook, delivery)
    headers = {"Location": f"/v1/runs/{result.run_id}"}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    body_out = {
        "run_id": result.run_id,
        "trigger_id": result.trigger_id,
        "replayed": result.replayed,
    }
    return ok(body_out, 202, headers)
