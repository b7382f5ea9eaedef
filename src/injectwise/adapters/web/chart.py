"""A patient's chart for the clinic pages: the stored Bundle plus what the app added (recorded
injections, notes, outcomes as Observations), read by the same FHIR reader and evaluated by the same
engine. Exposure and the next date allowed are derived from the engine's own injection list and the
policy values, so the pages never hold a second copy of a rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import orjson

from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.web.measures import observations
from injectwise.core.dates import period_start, year_before, years_from
from injectwise.core.errors import InputError, NotApplicable
from injectwise.core.record import PatientRecord
from injectwise.engine.clinical import ClinicalView, Injection
from injectwise.engine.evaluate import PlanOverrides, assess, review
from injectwise.engine.result import Result
from injectwise.knowledge.model import Knowledge


def identity(bundle: dict[str, Any]) -> dict[str, Any]:
    """Name, FHIR id, birth date and sex of the Bundle's Patient (name only shown, never logged)."""
    for e in bundle.get("entry") or []:
        r = (e or {}).get("resource") or {}
        if r.get("resourceType") == "Patient":
            names = r.get("name") or []
            n = names[0] if names and isinstance(names[0], dict) else {}
            text = n.get("text") or " ".join([*(n.get("given") or []), n.get("family") or ""]).strip()
            return {"fhir_id": str(r.get("id") or ""), "name": text or f"Patient {r.get('id') or '(no id)'}",
                    "birth": r.get("birthDate"), "sex": r.get("gender")}
    raise InputError("the Bundle has no Patient resource")


def patient_ref(bundle: dict[str, Any]) -> str:
    return f"Patient/{identity(bundle)['fhir_id']}"


def full_bundle(row: dict[str, Any]) -> dict[str, Any]:
    """The stored Bundle with the app's resources and the recorded outcomes appended."""
    bundle = orjson.loads(row["bundle"])
    ref = patient_ref(bundle)
    extra = [orjson.loads(x["resource"]) for x in row.get("resources", [])]
    for o in row.get("outcomes", []):
        extra += observations(ref, o, o["id"])
    entries = list(bundle.get("entry") or [])
    entries += [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in extra]
    return bundle | {"entry": entries}


def record_of(row: dict[str, Any]) -> PatientRecord:
    return read_bundle(full_bundle(row), source=f"registry:{row['id']}")


def as_of_for(row: dict[str, Any], today: date) -> date:
    return row.get("as_of") or today


@dataclass(slots=True)
class TimelineEntry:
    ref: str
    date: date | None
    target: str
    target_id: str | None
    side: str
    guidance: str
    drug: str
    dose_mg: float | None
    tae_mg: float | None
    region: str | None


@dataclass(slots=True)
class Exposure:
    site: str
    count_year: int
    tae_year: float
    last: date | None
    next_allowed: date | None
    region: str | None = None
    region_count_year: int = 0
    reasons: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Chart:
    record: PatientRecord
    as_of: date
    timeline: list[TimelineEntry]
    pain: list[tuple[date, float]]
    exposure: list[Exposure]
    tae_year: float
    review: Result | None
    review_note: str
    planned: Result | None
    planned_note: str


def timeline(view: ClinicalView) -> list[TimelineEntry]:
    out = []
    for inj in view.injections:
        s = inj.steroid
        out.append(TimelineEntry(inj.ref, inj.when.date() if inj.when else None,
                                 inj.target.label if inj.target else "unknown target",
                                 inj.target.id if inj.target else None, inj.side or "not recorded", inj.guidance,
                                 (s.drug.label if s and s.drug else (s.label if s else "none")),
                                 s.dose_mg if s else None, round(s.tae_mg, 1) if s and s.tae_mg is not None else None,
                                 inj.region))
    return out


def out_of_year(day: date) -> date:
    """First day on which an injection given on `day` no longer counts in the rolling 12 months: the first day
    whose year-ago start lies after it (28 February counts until 29 February of a leap year, both included)."""
    out = years_from(day, 1) + timedelta(days=1)
    while year_before(out) <= day:
        out += timedelta(days=1)
    return out


def _year(injs: list[Injection], as_of: date) -> list[Injection]:
    start = period_start(as_of, 365)
    return [i for i in injs if i.when is not None and i.when.date() >= start]


def exposure(view: ClinicalView, kb: Knowledge) -> tuple[list[Exposure], float]:
    """Per site (target and side): injections and mg triamcinolone-equivalent in the last 12 months,
    and the first day the policy's interval and yearly-count limits would allow the next one."""
    injs = view.injections
    year = _year(injs, view.as_of)
    tae_year = round(sum(i.tae for i in year), 1)
    gap, per_site, per_region = (int(kb.p("min_interval_days")), int(kb.p("max_per_site_per_year")),
                                 int(kb.p("max_per_region_per_year")))
    sites: dict[tuple[str, str], list[Injection]] = {}
    for i in injs:
        if i.target is not None:
            sites.setdefault((i.target.id, i.side or "side not recorded"), []).append(i)
    out = []
    for (tid, side), items in sorted(sites.items()):
        dates = sorted(i.when.date() for i in items if i.when is not None)
        in_year = [d for d in dates if d >= period_start(view.as_of, 365)]
        region = items[-1].region
        region_dates = sorted(i.when.date() for i in year if i.region == region and i.when is not None)
        nxt, why = None, []
        if dates:
            nxt = dates[-1] + timedelta(days=gap)
            why.append(f"{gap} days after the last injection at this site")
        if len(in_year) >= per_site:
            d = out_of_year(in_year[len(in_year) - per_site])
            if nxt is None or d > nxt:
                nxt = d
            why.append(f"at most {per_site} per site in 12 months")
        if region and len(region_dates) >= per_region:
            d = out_of_year(region_dates[len(region_dates) - per_region])
            if nxt is None or d > nxt:
                nxt = d
            why.append(f"at most {per_region} in the {region} region in 12 months")
        label = f"{side} {items[-1].target.label if items[-1].target else tid}"
        out.append(Exposure(label, len(in_year), round(sum(i.tae for i in items if i in year), 1),
                            dates[-1] if dates else None, nxt, region, len(region_dates), why))
    return out, tae_year


def build_chart(row: dict[str, Any], kb: Knowledge, today: date, on: date | None = None) -> Chart:
    record = record_of(row)
    as_of = on or as_of_for(row, today)
    view = ClinicalView(record, kb, as_of)
    pain = [(p.when.date(), p.value) for p in view.pain]
    exp, tae_year = exposure(view, kb)
    rev, rev_note = None, ""
    try:
        rev = review(record, kb, as_of)
    except (NotApplicable, InputError) as e:
        rev_note = str(e)
    planned, planned_note = None, ""
    if view.planned_from_orders() is not None:
        try:
            planned = assess(record, kb, as_of)
        except (NotApplicable, InputError) as e:
            planned_note = str(e)
    return Chart(record, as_of, timeline(view), pain, exp, tae_year, rev, rev_note, planned, planned_note)


def injection_resources(bundle: dict[str, Any], when: date, target: str, side: str | None, guidance: str,
                        steroid: str | None, dose: float | None, anesthetic: str | None, key: str) -> list[dict[str, Any]]:
    """FHIR resources (Procedure, MedicationAdministration) for an injection recorded in the app, coded
    as the demo/fixture builder codes them, so the reader recognises target, side, guidance and drugs."""
    from injectwise.demo.builder import GUIDANCE_TEXT, SITES, BundleBuilder

    if target not in SITES:
        raise InputError(f"recording an injection into {target!r} in the app is not supported yet; known: "
                         f"{', '.join(sorted(SITES))}")
    if guidance not in GUIDANCE_TEXT:
        raise InputError(f"guidance {guidance!r}: one of {', '.join(GUIDANCE_TEXT)}")
    b = BundleBuilder(key)
    b.resources, b.subject = [], {"reference": patient_ref(bundle)}
    b.injection(when.isoformat(), target, side, guidance, steroid, dose, anesthetic, None)
    return b.resources


def assess_plan(row: dict[str, Any], kb: Knowledge, as_of: date, plan: PlanOverrides) -> Result:
    return assess(record_of(row), kb, as_of, plan)
