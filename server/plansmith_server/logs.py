"""Logging set-up: readable text or one JSON object per line."""

from __future__ import annotations

import json
import logging
import sys
import time

from opentelemetry import trace

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _add_trace_ids(out: dict[str, object]) -> None:
    """The trace and span ids of the call a record was logged in (the current span's: the
    server continues each caller's `traceparent`), unless the record has its own."""
    if "trace_id" in out:
        return
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        out["trace_id"] = format(ctx.trace_id, "032x")
        out["span_id"] = format(ctx.span_id, "016x")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the `extra` fields as keys, and the trace and span
    ids of the call it was logged in."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        _add_trace_ids(out)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger message key=value ...` with the request and trace ids when the
    record has them."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        rid = getattr(record, "request_id", None)
        tid = getattr(record, "trace_id", None)
        return base + (f" request_id={rid}" if rid else "") + (f" trace_id={tid}" if tid else "")


class _StreamWriteAfterCancel(logging.Filter):
    """grpc.aio logs an ERROR with a traceback when a stream message cannot be sent because
    the caller has just gone (its write races the cancellation notice; seen when clients
    cancel streams after the first event). Nothing can reach that caller any more and the
    call is recorded CANCELLED: it is kept at DEBUG, not raised as a server fault."""

    PREFIX = "ExecuteBatchError raised in core by servicer method"

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith(self.PREFIX):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_GRPC_LOGGER = "grpc._cython.cygrpc"


def quiet_grpc_noise() -> None:
    """Installs the filters for grpc's own misleading log lines (once)."""
    grpc_log = logging.getLogger(_GRPC_LOGGER)
    if not any(isinstance(f, _StreamWriteAfterCancel) for f in grpc_log.filters):
        grpc_log.addFilter(_StreamWriteAfterCancel())


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
