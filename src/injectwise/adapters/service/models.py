"""The service's contract as pydantic models: hook requests are checked against them at the edge (a
wrong JSON type anywhere in the envelope is a 400 naming its path, never a 500), and every answer
is declared with them in the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from injectwise.adapters.service.outcome import ServiceError

MAX_FEEDBACK_ITEMS = 100


class _Open(BaseModel):
    """FHIR and CDS Hooks objects carry more than we read: unknown members are kept, not refused."""

    model_config = ConfigDict(extra="allow", strict=True)


class BundleEntry(_Open):
    resource: dict[str, Any] | None = None
    fullUrl: str | None = None


class Bundle(_Open):
    resourceType: Literal["Bundle"]
    type: str | None = None
    entry: list[BundleEntry] | None = None


class HookContext(_Open):
    patientId: str = Field(min_length=1)
    userId: str | None = None
    encounterId: str | None = None
    draftOrders: Bundle | None = None


class FhirAuthorization(_Open):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None


class PrefetchValue(_Open):
    """A prefetched resource, a Bundle of them, or an OperationOutcome for a failed fetch."""

    resourceType: str
    entry: list[BundleEntry] | None = None


class HookRequest(_Open):
    hook: str
    hookInstance: str = Field(min_length=1, max_length=100)
    fhirServer: str | None = Field(None, pattern=r"^https?://\S+$", description="base URL of the EHR's FHIR server")
    fhirAuthorization: FhirAuthorization | None = None
    context: HookContext
    prefetch: dict[str, PrefetchValue | None] | None = None


class Coding(_Open):
    system: str
    code: str
    display: str | None = None


class OverrideReason(_Open):
    reason: Coding | None = None
    userComment: str | None = None


class AcceptedSuggestion(_Open):
    id: str = Field(min_length=1)


class FeedbackItem(_Open):
    card: str = Field(min_length=1, max_length=64)
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] | None = None
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: str


class FeedbackRequest(_Open):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=MAX_FEEDBACK_ITEMS)


def checked(model: type[BaseModel], body: Any) -> Any:
    """Validate a parsed body; the first problem becomes a 400 naming its JSON path."""
    try:
        return model.model_validate(body)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        raise ServiceError(400, f"invalid request: {where}: {err.get('msg', 'invalid')}") from None


def request_body(model: type[BaseModel], service_ids: list[str] | None = None) -> dict[str, Any]:
    """openapi_extra declaring a JSON request body from a model (the handler reads the body itself,
    under the size limit), and the known values of the {service_id} path parameter."""
    out: dict[str, Any] = {"requestBody": {"required": True,
                                           "content": {"application/json": {"schema": inline_schema(model)}}}}
    if service_ids:
        out["parameters"] = [{"name": "service_id", "in": "path", "required": True,
                              "schema": {"type": "string", "enum": service_ids}}]
    return out


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    s = model.model_json_schema()
    return _inline(s, s.pop("$defs", {}))


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {k: _inline(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


# ---- answers ------------------------------------------------------------------------------
class Issue(BaseModel):
    severity: Literal["fatal", "error", "warning", "information"]
    code: str
    diagnostics: str


class OperationOutcome(BaseModel):
    resourceType: Literal["OperationOutcome"]
    issue: list[Issue]


class Card(_Open):
    uuid: str
    summary: str
    indicator: Literal["info", "warning", "critical"]
    source: dict[str, Any]
    detail: str | None = None
    suggestions: list[dict[str, Any]] | None = None
    selectionBehavior: str | None = None
    overrideReasons: list[dict[str, Any]] | None = None
    links: list[dict[str, Any]] | None = None


class CardsResponse(BaseModel):
    cards: list[Card]


class ServiceDescription(_Open):
    hook: str
    id: str
    title: str
    description: str
    prefetch: dict[str, str]


class Discovery(BaseModel):
    services: list[ServiceDescription]


class Health(BaseModel):
    status: Literal["ok"]
    knowledge_version: str
    rules: int
    auth: Literal["on", "off"]


class FeedbackStored(BaseModel):
    stored: int


class OverrideCount(BaseModel):
    code: str
    display: str
    count: int


class FindingSummary(BaseModel):
    finding_id: str
    issued: int
    accepted: int
    overridden: int
    feedback: int
    accept_rate: float | None
    override_rate: float | None
    override_reasons: list[OverrideCount]


class FeedbackSummary(BaseModel):
    findings: list[FindingSummary]


class Evaluation(_Open):
    """The CLI's JSON (`--format json`): verdict or response, findings with their evidence."""

    mode: str
    findings: list[dict[str, Any]]


class KnowledgeDescription(_Open):
    version: str


class RulePage(_Open):
    id: str
    meaning: str
    rules: list[dict[str, Any]]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries: each listed status answers an OperationOutcome."""
    what = {400: "malformed request (OperationOutcome names the JSON path)", 401: "authentication refused",
            404: "no such service or rule", 405: "method not allowed (see the Allow header)",
            409: "conflicts with feedback already on record", 412: "prefetch incomplete and no FHIR server to ask",
            413: "request body over the size limit", 415: "content type is not JSON",
            503: "time budget exceeded or storage unavailable; retry after the Retry-After seconds"}
    out: dict[int | str, dict[str, Any]] = {}
    for s in statuses:
        entry: dict[str, Any] = {"model": OperationOutcome, "description": what[s]}
        if s == 503:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        out[s] = entry
    return out
