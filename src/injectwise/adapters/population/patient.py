"""The per-patient function both engines run: resources of one patient in, one flat screening row out."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

import orjson

from injectwise.adapters.fhir.reader import read_resources
from injectwise.adapters.population.relevance import UnusedObservations
from injectwise.core.errors import InjectwiseError
from injectwise.engine.clinical import ClinicalView, Injection, RecordCache
from injectwise.engine.evaluate import PlanOverrides, assess, review
from injectwise.engine.measures import evaluate_measures, period_injections
from injectwise.knowledge.measures import MeasureSet
from injectwise.knowledge.model import Knowledge

# Fixed columns; one boolean column per measure follows (MeasureSpec.column), in measures.yaml order.
BASE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("patient", "string"), ("injections_12m", "int"), ("sites_12m", "string"), ("regions_12m", "string"),
    ("cumulative_tae_mg_12m", "double"), ("doses_unknown_12m", "int"), ("latest_injection", "string"),
    ("review_response", "string"), ("review_findings", "string"), ("repeat_verdict", "string"),
    ("repeat_findings", "string"), ("measure_detail", "string"), ("error", "string"), ("knowledge", "string"),
)


def columns(ms: MeasureSet) -> list[tuple[str, str]]:
    return [*BASE_COLUMNS, *((m.column, "bool") for m in ms.measures)]


def site_key(inj: Injection) -> str:
    tgt = inj.target.id if inj.target else "unknown-target"
    return f"{tgt}:{inj.side or 'side-unknown'}"


def _dumps(v: Any) -> str:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS).decode()


def empty_row(pid: str, ms: MeasureSet, error: str = "", kb: Knowledge | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"patient": pid, "injections_12m": 0, "sites_12m": "{}", "regions_12m": "{}",
                           "cumulative_tae_mg_12m": 0.0, "doses_unknown_12m": 0, "latest_injection": "",
                           "review_response": "", "review_findings": "", "repeat_verdict": "",
                           "repeat_findings": "", "measure_detail": "[]", "error": error,
                           "knowledge": f"{kb.version if kb else ''} measures {ms.version}"}
    for m in ms.measures:
        row[m.column] = False
    return row


@lru_cache(maxsize=8)
def unused_observations(kb: Knowledge) -> UnusedObservations:
    return UnusedObservations(kb)


def screen_resources(pid: str, resources: list[dict[str, Any]], kb: Knowledge, ms: MeasureSet,
                     as_of: date) -> dict[str, Any]:
    """Screen one patient. Record problems become the row's `error` (one line), never an exception."""
    try:
        record = read_resources(resources, source=pid, skip_observation=unused_observations(kb))
        return screen_record(pid, record, kb, ms, as_of)
    except InjectwiseError as e:
        return empty_row(pid, ms, str(e).splitlines()[0], kb)


def screen_record(pid: str, record: Any, kb: Knowledge, ms: MeasureSet, as_of: date) -> dict[str, Any]:
    row = empty_row(pid, ms, kb=kb)
    view = ClinicalView(record, kb, as_of, RecordCache.shared(record, kb))  # one view: measures, review, assess
    period = period_injections(view, ms.period_days)
    if not view.injections:
        return row
    sites: dict[str, int] = {}
    regions: dict[str, int] = {}
    items = evaluate_measures(record, kb, ms, as_of, view)
    detail = []
    for it in items:
        inj = it.injection
        sites[site_key(inj)] = sites.get(site_key(inj), 0) + 1
        area = it.area or "area-unknown"
        regions[area] = regions.get(area, 0) + 1
        for mid, res in it.results.items():
            if res is None:
                continue
            entry: dict[str, Any] = {"measure": mid, "injection": inj.ref, "target": inj.target.id if inj.target else "",
                                     "guidance": inj.guidance, "hit": res}
            if res:
                entry["evidence"] = sorted({e.resource for e in it.evidence.get(mid, []) if e.resource})
            detail.append(entry)
    row.update(injections_12m=len(period), sites_12m=_dumps(sites), regions_12m=_dumps(regions),
               cumulative_tae_mg_12m=round(sum(i.tae for i in period), 3),
               doses_unknown_12m=sum(1 for i in period if i.steroid is not None and i.steroid.tae_mg is None),
               measure_detail=_dumps(detail))
    for m in ms.measures:
        row[m.column] = any(d["hit"] for d in detail if d["measure"] == m.id)
    latest = view.injections[-1]
    row["latest_injection"] = latest.ref
    try:
        rv = review(record, kb, as_of, view=view)
        row["review_response"] = rv.outcome
        row["review_findings"] = " ".join(f.id for f in rv.findings)
    except InjectwiseError as e:
        row["error"] = f"review: {str(e).splitlines()[0]}"
    if latest.target is not None:
        s = latest.steroid
        ov = PlanOverrides(latest.target.id, latest.side, latest.guidance if latest.guidance != "unknown" else None,
                           s.drug.id if s and s.drug else None, s.dose_mg if s and s.drug else None)
        try:
            rs = assess(record, kb, as_of, ov, view=view)
            row["repeat_verdict"] = rs.outcome
            row["repeat_findings"] = " ".join(f.id for f in rs.findings)
        except InjectwiseError as e:
            row["error"] = (row["error"] + "; " if row["error"] else "") + f"assess: {str(e).splitlines()[0]}"
    return row
