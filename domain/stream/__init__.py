"""The live stream: the durable per-workspace event log, this process's hub of subscribers,
and the use cases that open a stream where a client left off."""

from domain.stream.hub import StreamHub, StreamSettings
from domain.stream.repository import (
    NOTIFY_CHANNEL,
    WORK_CHANNEL,
    EventLog,
    StreamTx,
    announces_work,
    decode_notification,
    notify_payload,
    notify_template,
)
from domain.stream.use_cases import Stream, StreamOpening

__all__ = [
    "NOTIFY_CHANNEL",
    "EventLog",
    "Stream",
    "StreamHub",
    "StreamOpening",
    "StreamSettings",
    "StreamTx",
    "WORK_CHANNEL",
    "announces_work",
    "decode_notification",
    "notify_payload",
    "notify_template",
]
