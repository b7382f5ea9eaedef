"""Prometheus metrics (requests, hook latency, cards per finding id, errors) and a pure ASGI guard that
turns any escaped exception into an OperationOutcome without dropping the keep-alive connection.
Labels are routes, hooks, statuses and finding ids only: never patient data."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from injectwise.adapters.service.outcome import operation_outcome

log = logging.getLogger("injectwise.service")
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("injectwise_requests", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.errors = Counter("injectwise_errors", "Answers with an error status (4xx, 5xx)", ["route", "status"],
                              registry=self.registry)
        self.hook_latency = Histogram("injectwise_hook_latency_seconds", "Time to answer a CDS Hooks call", ["hook"],
                                      buckets=LATENCY_BUCKETS, registry=self.registry)
        self.cards = Counter("injectwise_cards", "Cards returned, per finding id", ["finding_id"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _route(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class Guard:
    """Outermost app middleware: counts every answer, and answers a crash with an OperationOutcome 500
    (still logged with the exception type only) instead of letting the server close the connection."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = {"status": 0}

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as e:
            log.error(orjson.dumps({"event": "internal-error", "route": _route(scope), "error": type(e).__name__}).decode())
            if state["status"]:
                raise  # the answer has begun: nothing better can be sent
            state["status"] = 500
            body = orjson.dumps(operation_outcome(500, "internal error; the request was not processed"))
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        finally:
            route, status = _route(scope), str(state["status"] or 500)
            self.metrics.requests.labels(route, scope.get("method", ""), status).inc()
            if state["status"] >= 400 or not state["status"]:
                self.metrics.errors.labels(route, status).inc()
