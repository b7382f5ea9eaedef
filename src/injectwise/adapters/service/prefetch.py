"""Turn a CDS Hooks request into the patient record the engine reads: prefetched resources, resources
fetched from the EHR's FHIR server for keys the client left out, and the draft orders in the context."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.service.outcome import ServiceError
from injectwise.core.record import PatientRecord

# key -> (resource type, query template, what the rules lose without it). Keys follow the examples.
# Medication queries _include the referenced Medication resources (medicationReference, strengths).
PREFETCH: dict[str, tuple[str, str, str]] = {
    "patient": ("Patient", "Patient/{{context.patientId}}", "patient demographics"),
    "conditions": ("Condition", "Condition?patient={{context.patientId}}", "conditions"),
    "procedures": ("Procedure", "Procedure?patient={{context.patientId}}", "procedures (earlier injections, therapy)"),
    "medicationAdministrations": ("MedicationAdministration",
                                  "MedicationAdministration?patient={{context.patientId}}"
                                  "&_include=MedicationAdministration:medication",
                                  "medication administrations (injected drugs and doses)"),
    "medicationStatements": ("MedicationStatement", "MedicationStatement?patient={{context.patientId}}"
                             "&_include=MedicationStatement:medication",
                             "medication statements (anticoagulants, diabetes medicines)"),
    "observations": ("Observation", "Observation?patient={{context.patientId}}", "observations (pain, labs, vitals)"),
    "allergyIntolerances": ("AllergyIntolerance", "AllergyIntolerance?patient={{context.patientId}}", "allergies"),
    "documentReferences": ("DocumentReference", "DocumentReference?patient={{context.patientId}}", "notes"),
    "serviceRequests": ("ServiceRequest", "ServiceRequest?patient={{context.patientId}}",
                        "service requests (scheduled surgery, referrals)"),
}
MAX_PAGES = 20


@dataclass(slots=True)
class Gathered:
    record: PatientRecord
    fetched: list[str]  # keys fetched from the FHIR server
    unavailable: list[str]  # keys neither sent nor fetchable


def templates() -> dict[str, str]:
    return {k: v[1] for k, v in PREFETCH.items()}


def _entries(key: str, value: Any) -> list[dict[str, Any]] | None:
    """Resources in one prefetch value; None when the value says the fetch failed."""
    rtype = PREFETCH[key][0]
    if value is None:
        return []  # the client looked and found nothing
    if not isinstance(value, dict):
        raise ServiceError(400, f"prefetch.{key} must be a FHIR resource, a Bundle or null")
    kind = value.get("resourceType")
    if kind == "OperationOutcome":
        return None
    if kind == rtype:
        return [value]
    if kind != "Bundle":
        raise ServiceError(400, f"prefetch.{key} holds a {kind!r}; expected {rtype} or a Bundle of them")
    out = []
    for e in value.get("entry") or []:
        r = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(r, dict):
            raise ServiceError(400, f"prefetch.{key} has an entry without a resource")
        if r.get("resourceType") == "OperationOutcome":
            continue  # search-level warnings ride along in searchsets
        out.append(r)
    return out


def _query(template: str, context: dict[str, Any]) -> str:
    pid = context.get("patientId")
    return template.replace("{{context.patientId}}", quote(str(pid), safe=""))


async def _fetch(client: httpx.AsyncClient, base: str, query: str) -> list[dict[str, Any]]:
    url: str | None = f"{base.rstrip('/')}/{query}"
    out: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        if url is None:
            break
        r = await client.get(url)
        r.raise_for_status()
        doc = r.json()
        if doc.get("resourceType") != "Bundle":
            return [doc]
        out += [e["resource"] for e in doc.get("entry") or [] if isinstance(e, dict) and isinstance(e.get("resource"), dict)
                and e["resource"].get("resourceType") != "OperationOutcome"]
        url = next((ln.get("url") for ln in doc.get("link") or [] if ln.get("relation") == "next"), None)
    return out


async def _fetch_missing(request: dict[str, Any], keys: list[str], timeout_s: float) -> dict[str, list[dict[str, Any]]]:
    """Ask the EHR's FHIR server for the missing keys, all at once, within one hard deadline."""
    base = request["fhirServer"]
    auth = request.get("fhirAuthorization") or {}
    headers = {"Accept": "application/fhir+json"}
    if auth.get("access_token"):
        headers["Authorization"] = f"{auth.get('token_type', 'Bearer')} {auth['access_token']}"
    got: dict[str, list[dict[str, Any]]] = {}
    async with httpx.AsyncClient(headers=headers, timeout=timeout_s, follow_redirects=False) as client:
        async def one(key: str) -> None:
            # A failed fetch leaves the key out of `got`: it is then reported as unavailable.
            with contextlib.suppress(httpx.HTTPError, httpx.InvalidURL, ValueError, AttributeError, KeyError, TypeError):
                got[key] = await _fetch(client, base, _query(PREFETCH[key][1], request["context"]))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(one(k) for k in keys))
    return got


async def gather(request: dict[str, Any], draft_orders: list[dict[str, Any]], timeout_s: float,
                 refuse_missing: bool) -> Gathered:
    prefetch = request.get("prefetch") or {}
    if not isinstance(prefetch, dict):
        raise ServiceError(400, "prefetch must be an object")
    resources: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    for key in PREFETCH:
        if key not in prefetch:
            missing.append(key)
            continue
        found = _entries(key, prefetch[key])
        if found is None:
            missing.append(key)
        else:
            resources[key] = found
    fetched: list[str] = []
    if missing and request.get("fhirServer"):
        try:
            got = await _fetch_missing(request, missing, timeout_s)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, TypeError):  # an unusable URL or token: nothing fetched
            got = {}
        resources.update(got)
        fetched = [k for k in missing if k in got]
        missing = [k for k in missing if k not in got]
    if missing and refuse_missing:
        how = "the FHIR server did not supply them in time" if request.get("fhirServer") else "no fhirServer was given"
        raise ServiceError(412, f"prefetch incomplete: {', '.join(missing)} missing and {how}")
    pid = str(request["context"].get("patientId", ""))
    patients = resources.get("patient") or []
    if not patients:
        patients = [{"resourceType": "Patient", "id": pid}]  # explain mode: identity only
    elif patients[0].get("id") != pid:
        raise ServiceError(400, "prefetch.patient is not the patient named in context.patientId")
    seen: set[tuple[str, str]] = set()
    entries = []
    for r in [*patients, *(r for k, v in resources.items() if k != "patient" for r in v), *draft_orders]:
        key = (str(r.get("resourceType")), str(r.get("id")))
        if r.get("id") is not None and key in seen:
            continue
        seen.add(key)
        entries.append({"resource": r})
    record = read_bundle({"resourceType": "Bundle", "type": "collection", "entry": entries}, f"cds:{request['hook']}")
    record.unavailable = tuple(PREFETCH[k][2] for k in missing)
    return Gathered(record, fetched, missing)
