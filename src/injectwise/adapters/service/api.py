"""REST API bodies: a FHIR Bundle (alone, or with the evaluation date and planned-injection fields)
in, exactly the CLI's JSON out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.notes import add_bundle_notes
from injectwise.adapters.service.models import checked, inline_schema
from injectwise.adapters.service.outcome import ServiceError
from injectwise.core.dates import parse_as_of, today_utc
from injectwise.engine.evaluate import PlanOverrides, assess, review
from injectwise.knowledge.model import Knowledge


class Planned(BaseModel):
    """Overrides for the planned injection, as the CLI's assess options."""

    model_config = ConfigDict(extra="forbid")
    target: str | None = Field(None, description="e.g. hip-intra-articular")
    side: Literal["right", "left", "bilateral"] | None = None
    guidance: Literal["landmark", "ultrasound", "fluoroscopy", "ct"] | None = None
    steroid: str | None = Field(None, description="e.g. triamcinolone")
    dose: float | None = Field(None, ge=0, description="corticosteroid dose in mg")
    anesthetic: str | None = Field(None, description="local anaesthetic, or none")
    anesthetic_dose: float | None = Field(None, ge=0, description="anaesthetic dose in mg")


class AssessBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle: dict[str, Any] = Field(description="FHIR R4 Bundle with the patient's record and draft orders")
    on: str | None = Field(None, description="evaluate as of this date (YYYY-MM-DD); default today (UTC)")
    planned: Planned | None = None


class ReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bundle: dict[str, Any] = Field(description="FHIR R4 Bundle with the patient's record")
    on: str | None = Field(None, description="evaluate as of this date (YYYY-MM-DD); default today (UTC)")
    injection: str | None = Field(None, description="Procedure id to review; default the latest")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    s = inline_schema(model)
    bare = {"type": "object", "description": "a bare FHIR R4 Bundle (evaluated as of today)",
            "properties": {"resourceType": {"const": "Bundle"}}, "required": ["resourceType"]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [s, bare]}}}}}


ASSESS_BODY = _schema(AssessBody)
REVIEW_BODY = _schema(ReviewBody)


def _envelope(body: Any, model: type[BaseModel]) -> Any:
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        body = {"bundle": body}
    if not isinstance(body, dict):
        raise ServiceError(400, "the body must be a FHIR Bundle or an object with a bundle")
    return checked(model, body)


def assess_json(body: Any, kb: Knowledge) -> dict[str, Any]:
    req: AssessBody = _envelope(body, AssessBody)
    p = req.planned or Planned()
    ov = PlanOverrides(p.target, p.side, p.guidance, p.steroid, p.dose, p.anesthetic, p.anesthetic_dose)
    record = read_bundle(req.bundle, "request")
    as_of = parse_as_of(req.on) if req.on else today_utc()
    add_bundle_notes(record, kb, as_of)
    return assess(record, kb, as_of, ov).as_json()


def review_json(body: Any, kb: Knowledge) -> dict[str, Any]:
    req: ReviewBody = _envelope(body, ReviewBody)
    record = read_bundle(req.bundle, "request")
    as_of = parse_as_of(req.on) if req.on else today_utc()
    add_bundle_notes(record, kb, as_of)
    return review(record, kb, as_of, req.injection).as_json()
