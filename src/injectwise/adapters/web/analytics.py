"""Clinic analytics over the registry: response rate (responders among injections the engine could
judge, with a Wilson 95% CI) and median relief duration by target, guidance and drug; Kaplan-Meier
time to pain recurrence by guidance; injections per patient per year against policy. The response of
each injection is the engine's own `review` classification; nothing here re-decides it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from injectwise.adapters.web.chart import as_of_for, record_of
from injectwise.adapters.web.stats import kaplan_meier, km_median, median, median_ci, wilson
from injectwise.core.dates import period_start
from injectwise.core.errors import InputError, NotApplicable
from injectwise.engine.clinical import ClinicalView
from injectwise.engine.evaluate import review
from injectwise.knowledge.model import Knowledge

JUDGED = ("responder", "partial", "non-responder")


@dataclass(slots=True)
class InjectionOutcome:
    target: str
    guidance: str
    drug: str
    response: str
    relief_days: int | None
    relief_ongoing: bool


def _relief(outcomes: list[dict[str, Any]], ref: str, start: date, end: date | None) -> tuple[int | None, bool]:
    """The latest relief duration recorded for this injection (linked by reference, else by date)."""
    best: tuple[int | None, bool] = (None, False)
    for o in outcomes:
        if o.get("relief_days") is None:
            continue
        linked = o.get("injection_ref") == ref or (
            not o.get("injection_ref") and o["measured_on"] >= start and (end is None or o["measured_on"] < end))
        if linked:
            best = (int(o["relief_days"]), bool(o.get("relief_ongoing")))
    return best


def injection_outcomes(rows: list[dict[str, Any]], kb: Knowledge, today: date) -> tuple[list[InjectionOutcome],
                                                                                     list[tuple[int, int]]]:
    """Each injection with the engine's response and its relief; per patient (injections in the last
    12 months, most in any one region)."""
    items, per_year = [], []
    for row in rows:
        try:
            record = record_of(row)
            as_of = as_of_for(row, today)
            injs = ClinicalView(record, kb, as_of).injections
        except InputError:
            continue
        year = [i for i in injs if i.when and i.when.date() >= period_start(as_of, 365)]
        per_region: dict[str, int] = defaultdict(int)
        for i in year:
            per_region[i.region or "unknown"] += 1
        per_year.append((len(year), max(per_region.values(), default=0)))
        for k, inj in enumerate(injs):
            try:
                response = review(record, kb, as_of, inj.ref).outcome
            except (NotApplicable, InputError):
                response = "unknown"
            start = inj.when.date() if inj.when else as_of
            nxt = injs[k + 1].when if k + 1 < len(injs) else None
            days, ongoing = _relief(row["outcomes"], inj.ref, start, nxt.date() if nxt else None)
            s = inj.steroid
            items.append(InjectionOutcome(inj.target.label if inj.target else "unknown target", inj.guidance,
                                          s.drug.id if s and s.drug else (s.label if s else "none"), response, days,
                                          ongoing))
    return items, per_year


def _group(items: list[InjectionOutcome], key: str) -> list[dict[str, Any]]:
    groups: dict[str, list[InjectionOutcome]] = defaultdict(list)
    for it in items:
        groups[getattr(it, key)].append(it)
    out = []
    for name, its in sorted(groups.items()):
        judged = [i for i in its if i.response in JUDGED]
        resp = sum(1 for i in judged if i.response == "responder")
        ci = wilson(resp, len(judged))
        relief = [float(i.relief_days) for i in its if i.relief_days is not None and not i.relief_ongoing]
        mci = median_ci(relief)
        out.append({"group": name, "injections": len(its), "judged": len(judged), "responders": resp,
                    "response_rate": round(resp / len(judged), 3) if judged else None,
                    "response_rate_ci95": [round(ci[0], 3), round(ci[1], 3)] if ci else None,
                    "relief_n": len(relief), "median_relief_days": median(relief),
                    "median_relief_ci95": list(mci) if mci else None})
    return out


def summary(rows: list[dict[str, Any]], kb: Knowledge, today: date) -> dict[str, Any]:
    items, per_year = injection_outcomes(rows, kb, today)
    km: dict[str, Any] = {}
    by_guidance: dict[str, list[InjectionOutcome]] = defaultdict(list)
    for it in items:
        if it.relief_days is not None:
            by_guidance[it.guidance].append(it)
    for g, its in sorted(by_guidance.items()):
        steps = kaplan_meier([float(i.relief_days or 0) for i in its], [not i.relief_ongoing for i in its])
        km[g] = {"n": len(its), "events": sum(not i.relief_ongoing for i in its), "median_days": km_median(steps),
                 "steps": [{"day": s.time, "at_risk": s.at_risk, "events": s.events, "survival": round(s.survival, 4)}
                           for s in steps]}
    limit = int(kb.p("max_per_region_per_year"))
    hist: dict[int, int] = defaultdict(int)
    for n, _ in per_year:
        hist[n] += 1
    return {
        "patients": len(rows), "injections": len(items),
        "responses": {r: sum(1 for i in items if i.response == r) for r in
                      ("responder", "partial", "non-responder", "too-early", "unknown")},
        "by_target": _group(items, "target"), "by_guidance": _group(items, "guidance"), "by_drug": _group(items, "drug"),
        "time_to_recurrence_by_guidance": km,
        "injections_per_patient_year": {
            "policy_max_per_region": limit, "histogram": [{"injections": k, "patients": v} for k, v in sorted(hist.items())],
            "median": median([float(n) for n, _ in per_year]),
            "patients_over_policy": sum(1 for _, most in per_year if most > limit)},
        "method": "response = the engine's review classification (responder >= 50% NRS relief); rate = responders / "
                  "injections judged (responder, partial, non-responder); 95% CI Wilson; median relief CI by order "
                  "statistics (n >= 6); time to recurrence = recorded relief duration, ongoing relief censored (Kaplan-Meier)",
    }
