"""The CDS Hooks services: what discovery advertises and how one hook call becomes cards."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from injectwise.adapters.notes import add_bundle_notes
from injectwise.adapters.service.cards import build_cards
from injectwise.adapters.service.outcome import ServiceError
from injectwise.adapters.service.prefetch import gather, templates
from injectwise.adapters.service.settings import ServiceSettings
from injectwise.adapters.storage import FeedbackStore, IssuedCard
from injectwise.core.dates import today_utc
from injectwise.core.errors import InputError, NotApplicable
from injectwise.core.record import PatientRecord
from injectwise.engine.evaluate import assess, review
from injectwise.knowledge.model import Knowledge


@dataclass(frozen=True, slots=True)
class HookService:
    id: str
    hook: str
    mode: str  # assess or review
    title: str
    description: str


SERVICES = (
    HookService("injectwise-order-select", "order-select", "assess", "Steroid injection check (order select)",
                "When a musculoskeletal corticosteroid injection is picked: contraindications, reasons to defer "
                "(physical therapy first, interval, cumulative exposure, repeated non-response), image guidance "
                "and dose, each with the patient's data and the literature."),
    HookService("injectwise-order-sign", "order-sign", "assess", "Steroid injection check (order sign)",
                "The same checks as at order select, on the final draft order before signing."),
    HookService("injectwise-patient-view", "patient-view", "review", "Steroid injection review",
                "On opening the chart: did the latest corticosteroid injection work, why not, what harm it may "
                "have done, what to do next, cumulative exposure and what is due."),
)
BY_ID = {s.id: s for s in SERVICES}


def discovery() -> dict[str, Any]:
    out = []
    for s in SERVICES:
        out.append({"hook": s.hook, "id": s.id, "title": s.title, "description": s.description,
                    "prefetch": templates(),
                    "usageRequirements": "Send every prefetch key (null when there is no data). For order hooks, "
                                         "context.draftOrders must hold the draft injection ServiceRequest and its "
                                         "MedicationRequests."})
    return {"services": out}


def _check_request(svc: HookService, body: Any) -> list[dict[str, Any]]:
    """Validate the call's envelope; returns the draft order resources (empty for patient-view)."""
    if not isinstance(body, dict):
        raise ServiceError(400, "the request body must be a JSON object")
    if body.get("hook") != svc.hook:
        raise ServiceError(400, f"service {svc.id} answers the {svc.hook} hook, not {body.get('hook')!r}")
    if not isinstance(body.get("hookInstance"), str) or not body["hookInstance"]:
        raise ServiceError(400, "hookInstance is required")
    ctx = body.get("context")
    if not isinstance(ctx, dict) or not isinstance(ctx.get("patientId"), str) or not ctx["patientId"]:
        raise ServiceError(400, "context.patientId is required")
    if "fhirAuthorization" in body and not body.get("fhirServer"):
        raise ServiceError(400, "fhirAuthorization given without fhirServer (cds-r-1)")
    if body.get("fhirServer") is not None and not isinstance(body["fhirServer"], str):
        raise ServiceError(400, "fhirServer must be a URL string")
    if svc.mode != "assess":
        return []
    orders = ctx.get("draftOrders")
    if not isinstance(orders, dict) or orders.get("resourceType") != "Bundle":
        raise ServiceError(400, f"{svc.hook} needs context.draftOrders, a Bundle of draft orders")
    out = []
    for e in orders.get("entry") or []:
        r = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(r, dict) or not isinstance(r.get("resourceType"), str):
            raise ServiceError(400, "context.draftOrders has an entry without a resource")
        out.append(r)
    return out


def as_of_for(record: PatientRecord, settings: ServiceSettings) -> date:
    """The evaluation date: today, or in replay mode the newest event in the request's own data."""
    if settings.clock == "record":
        last = record.last_event()
        if last is not None:
            return last.date()
    return today_utc()


log = logging.getLogger("injectwise.service")
# What a FHIR value of an unexpected JSON type raises deep inside the reader or the card builder.
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, ValueError, IndexError)


def shape_error(e: Exception, where: str) -> ServiceError:
    """A 400 for data of the wrong shape; the log names the code location (never the data)."""
    frame = traceback.extract_tb(e.__traceback__)[-1] if e.__traceback__ else None
    log.warning('{"event": "malformed-fhir", "stage": "%s", "error": "%s", "at": "%s:%s"}', where, type(e).__name__,
                frame.filename.rsplit("/", 1)[-1] if frame else "?", frame.lineno if frame else 0)
    return ServiceError(400, f"{where}: a FHIR resource has a field of an unexpected type or shape ({type(e).__name__})")


class HookHandler:
    def __init__(self, kb: Knowledge, settings: ServiceSettings, store: FeedbackStore) -> None:
        self.kb = kb
        self.settings = settings
        self.store = store

    async def gather(self, svc: HookService, body: Any) -> tuple[PatientRecord, list[dict[str, Any]], dict[str, Any]]:
        t0 = time.perf_counter()
        drafts = _check_request(svc, body)
        try:
            got = await gather(body, drafts, self.settings.fhir_timeout_s, self.settings.missing_prefetch == "refuse")
        except InputError as e:
            raise ServiceError(400, f"prefetch is not usable FHIR: {e}") from None
        except SHAPE_ERRORS as e:
            raise shape_error(e, "prefetch or draftOrders") from None
        meta = {"gather_ms": round((time.perf_counter() - t0) * 1000, 2), "fetched": got.fetched,
                "unavailable": got.unavailable}
        return got.record, drafts, meta

    def evaluate(self, svc: HookService, body: dict[str, Any], record: PatientRecord,
                 drafts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[IssuedCard], float]:
        """CPU part of a call: engine and cards, and the card log rows the caller must make durable."""
        t0 = time.perf_counter()
        as_of = as_of_for(record, self.settings)
        try:
            add_bundle_notes(record, self.kb, as_of)  # DocumentReference notes join the coded data
            result = assess(record, self.kb, as_of) if svc.mode == "assess" else review(record, self.kb, as_of)
        except NotApplicable:
            return [], [], (time.perf_counter() - t0) * 1000
        except InputError as e:
            raise ServiceError(400, str(e)) from None
        except SHAPE_ERRORS as e:
            raise shape_error(e, "patient data") from None
        try:
            cards = build_cards(result, self.kb, self.settings.base, svc.hook, drafts, self.settings.cards == "all")
        except SHAPE_ERRORS as e:
            raise shape_error(e, "context.draftOrders") from None
        now = datetime.now(UTC).replace(tzinfo=None)
        by_code = {f.id: f for f in result.findings}
        issued = [IssuedCard(c["uuid"], svc.id, svc.hook, body["hookInstance"], c["source"]["topic"]["code"],
                             by_code[c["source"]["topic"]["code"]].rule["version"], self.kb.version, c["indicator"], now,
                             tuple(s["uuid"] for s in c.get("suggestions") or ()))
                  for c in cards]
        return cards, issued, (time.perf_counter() - t0) * 1000
