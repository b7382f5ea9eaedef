"""The ASGI app: CDS Hooks discovery, hook calls and feedback; the REST API; rule explanation pages.
Built by `create_app(settings)`; the engine and knowledge are the CLI's, loaded once at start-up."""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from injectwise.adapters.service import api
from injectwise.adapters.service import models as m
from injectwise.adapters.service.feedback import parse_feedback
from injectwise.adapters.service.hooks import BY_ID, HookHandler, discovery
from injectwise.adapters.service.metrics import Guard, Metrics
from injectwise.adapters.service.outcome import ServiceError, operation_outcome
from injectwise.adapters.service.settings import ServiceSettings
from injectwise.adapters.service.trust import Trust, load_api_keys, load_issuers
from injectwise.adapters.storage import FeedbackRejected, FeedbackStore
from injectwise.adapters.web.app import install as install_clinic
from injectwise.core.errors import InputError
from injectwise.knowledge import load_knowledge
from injectwise.knowledge.describe import describe_knowledge, describe_rule
from injectwise.knowledge.model import Knowledge

log = logging.getLogger("injectwise.service")


class JSON(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def _outcome(status: int, message: str, headers: dict[str, str] | None = None) -> JSON:
    return JSON(operation_outcome(status, message), status_code=status, headers=headers)


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, within the size limit; every problem is a ServiceError with a 4xx status."""
    ctype = request.headers.get("content-type", "")
    if ctype and "json" not in ctype.lower():
        raise ServiceError(415, f"content type {ctype.split(';')[0]!r} is not JSON")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ServiceError(413, f"request body larger than the limit of {limit} bytes")
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ServiceError(413, f"request body larger than the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise ServiceError(400, "empty request body: expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise ServiceError(400, f"malformed JSON: {str(e).split(':')[0]}") from None


def create_app(settings: ServiceSettings) -> FastAPI:
    # httpx logs every URL it calls at INFO, and FHIR search URLs carry the patient id: keep it quiet.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    kb = load_knowledge(settings.policy_file)
    issuers = load_issuers(settings.trusted_issuers_file) if settings.trusted_issuers_file else {}
    keys = load_api_keys(settings.api_keys_file) if settings.api_keys_file else {}
    if not settings.insecure_no_auth and not issuers and not keys:
        raise InputError("no way to trust a caller: give --trusted-issuers (and/or --api-keys), "
                         "or --insecure-no-auth for a local demo")
    store = FeedbackStore(settings.database_url)

    async def claim(iss: str, jti: str, expires_at: float) -> bool:
        try:
            return await store.commit([], (iss, jti, expires_at))
        except Exception:
            raise ServiceError(503, "token store unavailable; retry", {"Retry-After": "1"}) from None

    trust = Trust(issuers, keys, settings.jwt_leeway_s, settings.jwt_max_lifetime_s, settings.jwks_cache_s,
                  settings.fhir_timeout_s, claim)
    handler = HookHandler(kb, settings, store)
    metrics = Metrics()
    # Evaluation runs in worker threads so a slow request never blocks the event loop (/healthz, other calls).
    cpu = anyio.CapacityLimiter(settings.eval_threads)
    if settings.insecure_no_auth:
        log.warning("*** AUTHENTICATION IS OFF (--insecure-no-auth): any caller is trusted. Local demos only. ***")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()  # write the queued card log before exit

    app = FastAPI(title="injectwise", version=kb.version, default_response_class=JSON, lifespan=lifespan,
                  description="Decision support for musculoskeletal corticosteroid injections: CDS Hooks 2.0 "
                              "services and a REST API over the same engine and knowledge base as the CLI.")
    app.state.settings, app.state.kb, app.state.store, app.state.metrics = settings, kb, store, metrics
    app.add_middleware(Guard, metrics=metrics)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-API-Key"], max_age=600)

    async def authenticate(request: Request, allow_api_key: bool,
                           defer_claim: bool = False) -> tuple[str, str, float] | None:
        """Refuses untrusted callers. With defer_claim, returns the JWT id to commit with the call's cards."""
        if settings.insecure_no_auth:
            return None
        authz = request.headers.get("authorization", "")
        if authz[:7].lower() == "bearer ":
            if not issuers:
                raise ServiceError(401, "authentication failed: no JWT issuer is trusted here")
            claims = await trust.verify_jwt(authz[7:].strip(), settings.base + request.url.path, defer_claim)
            return trust.claim_key(claims) if defer_claim else None
        key = request.headers.get("x-api-key")
        if allow_api_key and key:
            trust.verify_api_key(key)
            return None
        raise ServiceError(401, "authentication required: send a signed JWT as a Bearer token"
                           + (" or an X-API-Key" if allow_api_key else ""),
                           {"WWW-Authenticate": "Bearer"})

    async def within_budget(work: Any) -> Any:
        """Run a request's work under the per-request time budget: past it, 503 with Retry-After."""
        try:
            async with asyncio.timeout(settings.time_budget_s):
                return await work
        except TimeoutError:
            raise ServiceError(503, f"the request took longer than its {settings.time_budget_s:g} s budget; retry later",
                               {"Retry-After": str(max(1, round(settings.time_budget_s)))}) from None

    async def evaluate_rest(request: Request, run: Callable[[Any, Knowledge], dict[str, Any]]) -> JSON:
        await authenticate(request, allow_api_key=True)
        body = await read_json(request, settings.max_body_bytes)
        return JSON(await within_budget(anyio.to_thread.run_sync(run, body, kb, limiter=cpu)))

    # The clinic web app (/app/) and registry API, on the same knowledge base and database.
    app.state.registry = install_clinic(app, kb, settings, store.engine,
                                        lambda request: authenticate(request, allow_api_key=True))

    @app.exception_handler(ServiceError)
    async def _service_error(_req: Request, e: ServiceError) -> JSON:
        return _outcome(e.status, e.message, e.headers)

    @app.exception_handler(InputError)
    async def _input_error(_req: Request, e: InputError) -> JSON:
        return _outcome(400, str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, e: RequestValidationError) -> JSON:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return _outcome(400, f"invalid request: {where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(FeedbackRejected)
    async def _feedback_rejected(_req: Request, e: FeedbackRejected) -> JSON:
        return _outcome(e.status, e.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, e: StarletteHTTPException) -> JSON:
        return _outcome(e.status_code, str(e.detail), dict(e.headers) if e.headers else None)  # keeps Allow on 405

    @app.get("/healthz", summary="Liveness and readiness", response_model=m.Health)
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "knowledge_version": kb.version, "rules": len(kb.rules),
                "auth": "off" if settings.insecure_no_auth else "on"}

    @app.get("/cds-services", summary="CDS Hooks discovery", response_model=m.Discovery)
    async def services() -> dict[str, Any]:
        return discovery()

    @app.get("/metrics", summary="Prometheus metrics (no patient data)", response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text exposition format"}})
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/cds-services/{service_id}", summary="Call a CDS Hooks service", response_model=m.CardsResponse,
              responses=m.errors(400, 401, 404, 412, 413, 415, 503), openapi_extra=m.request_body(m.HookRequest, list(BY_ID)))
    async def call_hook(service_id: str, request: Request) -> JSON:
        t0 = time.perf_counter()
        svc = BY_ID.get(service_id)
        if svc is None:
            raise ServiceError(404, f"no CDS service {service_id!r}")
        tok = await authenticate(request, allow_api_key=False, defer_claim=True)
        body = await read_json(request, settings.max_body_bytes)
        m.checked(m.HookRequest, body)
        size = int(request.headers.get("content-length") or 0) or settings.inline_eval_max_bytes + 1

        async def work() -> tuple[list[dict[str, Any]], dict[str, Any], float]:
            record, drafts, meta = await handler.gather(svc, body)
            if size <= settings.inline_eval_max_bytes:  # about a millisecond: a thread hop would cost more
                cards, issued, engine_ms = handler.evaluate(svc, body, record, drafts)
            else:  # large: in a worker thread, so the loop (and /healthz) keeps answering
                cards, issued, engine_ms = await anyio.to_thread.run_sync(handler.evaluate, svc, body, record, drafts,
                                                                          limiter=cpu)
            t_commit = time.perf_counter()
            try:  # durable before it is returned: wait for the group commit that holds these cards (and the jti)
                fresh = await store.commit(issued, tok)
                meta["commit_ms"] = round((time.perf_counter() - t_commit) * 1000, 2)
            except Exception:
                raise ServiceError(503, "the card log is unavailable; cards were not returned", {"Retry-After": "1"}) \
                    from None
            if not fresh:
                raise ServiceError(401, "authentication failed: token already used (jti replay)",
                                   {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return cards, meta, engine_ms

        cards, meta, engine_ms = await within_budget(work())
        metrics.hook_latency.labels(svc.hook).observe(time.perf_counter() - t0)
        for c in cards:
            metrics.cards.labels(c["source"]["topic"]["code"]).inc()
        log.info(orjson.dumps({
            "event": "hook", "hook": svc.hook, "service": svc.id, "hookInstance": body["hookInstance"],
            "cards": [f"{c['source']['topic']['code']}:{c['uuid']}" for c in cards], "fetched": meta["fetched"],
            "unavailable": meta["unavailable"], "gather_ms": meta["gather_ms"], "engine_ms": round(engine_ms, 2),
            "commit_ms": meta.get("commit_ms", 0.0),
            "total_ms": round((time.perf_counter() - t0) * 1000, 2)}).decode())
        return JSON({"cards": cards})

    @app.post("/cds-services/{service_id}/feedback", summary="Feedback on cards (accepted / overridden)",
              response_model=m.FeedbackStored, responses=m.errors(400, 401, 404, 409, 413, 415),
              openapi_extra=m.request_body(m.FeedbackRequest, list(BY_ID)))
    async def feedback(service_id: str, request: Request) -> dict[str, Any]:
        if service_id not in BY_ID:
            raise ServiceError(404, f"no CDS service {service_id!r}")
        await authenticate(request, allow_api_key=False)
        body = await read_json(request, settings.max_body_bytes)
        m.checked(m.FeedbackRequest, body)
        items = parse_feedback(body)
        n = await run_in_threadpool(store.record_feedback, service_id, items, datetime.now(UTC).replace(tzinfo=None))
        log.info(orjson.dumps({"event": "feedback", "service": service_id, "items": n,
                               "cards": [i["card"] for i in items]}).decode())
        return {"stored": n}

    @app.get("/api/feedback/summary", summary="Accept and override rates per finding id and override reason",
             response_model=m.FeedbackSummary, responses=m.errors(401))
    async def feedback_summary(request: Request) -> dict[str, Any]:
        await authenticate(request, allow_api_key=True)
        return await run_in_threadpool(store.summary)

    @app.post("/api/assess", summary="Assess a planned injection (same JSON as `injectwise assess --format json`)",
              openapi_extra=api.ASSESS_BODY, response_model=m.Evaluation, responses=m.errors(400, 401, 413, 415, 503))
    async def api_assess(request: Request) -> JSON:
        return await evaluate_rest(request, api.assess_json)

    @app.post("/api/review", summary="Review a completed injection (same JSON as `injectwise review --format json`)",
              openapi_extra=api.REVIEW_BODY, response_model=m.Evaluation, responses=m.errors(400, 401, 413, 415, 503))
    async def api_review(request: Request) -> JSON:
        return await evaluate_rest(request, api.review_json)

    @app.get("/api/knowledge", summary="Knowledge base: version, rules, citations, policy",
             response_model=m.KnowledgeDescription, responses=m.errors(401))
    async def api_knowledge(request: Request) -> dict[str, Any]:
        await authenticate(request, allow_api_key=True)
        return describe_knowledge(kb)

    @app.get("/rules/{finding_id}", summary="Human explanation of the rule(s) behind a finding id",
             response_class=JSON, responses={
                 200: {"description": "HTML page, or JSON with ?format=json / Accept: application/json",
                       "content": {"text/html": {"schema": {"type": "string"}},
                                   "application/json": {"schema": m.inline_schema(m.RulePage)}}},
                 **m.errors(404)})
    async def rule_page(finding_id: str, request: Request) -> Response:
        doc = describe_rule(kb, finding_id)
        if doc is None:
            raise ServiceError(404, f"no rule for finding {finding_id!r}")
        if "json" in request.headers.get("accept", "") or request.query_params.get("format") == "json":
            return JSON(doc)
        return HTMLResponse(_rule_html(doc))

    return app


def app_from_environment() -> FastAPI:
    """Factory for each worker of `injectwise serve --workers N` (settings come through the environment)."""
    from injectwise.adapters.service.jsonlog import configure

    settings = ServiceSettings.from_env()
    configure(logging.getLogger().level or logging.INFO)
    app = create_app(settings)
    tune_gc()  # each worker is its own process with its own heap: freeze it too
    return app


def tune_gc() -> None:
    """The knowledge base and compiled rules live for the whole process: move them out of the
    collector's sight, and collect the young generation less often (each request allocates many short
    lived objects). Measured: a full collection with the knowledge loaded took ~40 ms, showing up as
    p99 latency spikes under load."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _rule_html(doc: dict[str, Any]) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset=utf-8><title>{e(doc['id'])}</title>",
             "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem}"
             "code{background:#f3f3f3;padding:0 .2em}</style>",
             f"<h1>{e(doc['id'])}</h1><p>{e(doc['meaning'])}</p>"]
    for r in doc["rules"]:
        parts.append(f"<h2>{e(r['title'])}</h2><p><b>{e(r['mode'])}</b>, severity <b>{e(r['severity'])}</b>, "
                     f"rule version {e(r['version'])} (<code>{e(r['file'])}</code>)</p><p>{e(r['rationale'])}</p>")
        if r.get("advice"):
            parts.append(f"<p><b>What to do:</b> {e(r['advice'])}</p>")
        parts.append("<h3>Evidence</h3><ul>")
        for c in r["citations"]:
            link = f"https://doi.org/{c['doi']}" if c.get("doi") else c.get("url")
            text = f"{e(c['label'])}: {e(c['reference'])} (confidence {e(c['confidence'])})"
            parts.append(f"<li><a href='{e(link)}'>{text}</a></li>" if link else f"<li>{text}</li>")
        parts.append("</ul>")
    parts.append(f"<p><small>Knowledge base {e(doc['knowledge_version'])}</small></p>")
    return "".join(parts)
