"""Structured logs: one JSON object per line. Messages the service writes are already JSON objects
(events with ids, timings and counts, never patient data); they are merged, not quoted."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                                  "level": record.levelname.lower(), "logger": record.name}
        msg = record.getMessage()
        parsed = None
        if msg.startswith("{"):
            try:
                parsed = orjson.loads(msg)
            except orjson.JSONDecodeError:
                parsed = None
        if isinstance(parsed, dict):
            out.update(parsed)
        else:
            out["message"] = msg
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = record.exc_info[0].__name__  # the type only: a message may quote patient data
        return orjson.dumps(out).decode()


def configure(level: int) -> None:
    """JSON lines on stderr for our loggers and uvicorn's."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True


LOG_CONFIG = {"version": 1, "disable_existing_loggers": False,
              "formatters": {"json": {"()": "injectwise.adapters.service.jsonlog.JsonFormatter"}},
              "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json"}},
              "root": {"handlers": ["default"], "level": "INFO"},
              "loggers": {"uvicorn": {"handlers": [], "propagate": True},
                          "uvicorn.error": {"handlers": [], "propagate": True},
                          "uvicorn.access": {"handlers": [], "propagate": True}}}
