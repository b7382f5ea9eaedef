"""A populated demo clinic: the built-in demo patients plus synthetic patients with a few months of
injections and recorded outcomes (deterministic), so analytics and timelines show something at once."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import orjson

from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.storage.registry import Registry
from injectwise.adapters.web.chart import identity
from injectwise.adapters.web.measures import interval_score
from injectwise.demo import demo_bundles
from injectwise.demo.builder import BundleBuilder

NAMES = [("Ada", "Lovelace"), ("Ben", "Okafor"), ("Chen", "Wei"), ("Dora", "Silva"), ("Emil", "Novak"),
         ("Farah", "Haddad"), ("Greta", "Lind"), ("Hugo", "Martin"), ("Ines", "Costa"), ("Jon", "Berg")]
PLANS = [("hip-intra-articular", "ultrasound", "triamcinolone", 40, "M16.11", "Primary osteoarthritis, right hip"),
         ("greater-trochanteric-bursa", "landmark", "methylprednisolone", 40, "M70.61", "Trochanteric bursitis, right hip"),
         ("knee-intra-articular", "landmark", "triamcinolone", 40, "M17.11", "Primary osteoarthritis, right knee"),
         ("hip-intra-articular", "fluoroscopy", "methylprednisolone", 40, "M16.11", "Primary osteoarthritis, right hip"),
         ("greater-trochanteric-bursa", "ultrasound", "triamcinolone", 40, "M70.61", "Trochanteric bursitis, right hip")]


def _named(bundle: dict[str, Any], given: str, family: str) -> dict[str, Any]:
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "Patient":
            e["resource"]["name"] = [{"given": [given], "family": family}]
    return bundle


def synthetic_patients(today: date, n: int = 10, seed: int = 7) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(bundle, outcomes) per synthetic patient: one or two right-sided injections in the last months,
    pain before and after, and relief durations (some still ongoing, i.e. censored)."""
    rnd = random.Random(seed)
    out = []
    for k in range(n):
        target, guidance, drug, mg, icd, text = PLANS[k % len(PLANS)]
        given, family = NAMES[k % len(NAMES)]
        b = BundleBuilder(f"clinic-{k + 1}", sex="female" if k % 2 else "male", birth=f"{1950 + 2 * k}-0{1 + k % 9}-15")
        b.condition(icd, text, (today - timedelta(days=900)).isoformat())
        b.therapy((today - timedelta(days=400)).isoformat(), (today - timedelta(days=300)).isoformat())
        outcomes: list[dict[str, Any]] = []
        first = today - timedelta(days=rnd.randint(120, 200))
        dates = [first] + ([first + timedelta(days=rnd.randint(95, 110))] if k % 3 == 0 else [])
        for d in dates:
            if d >= today - timedelta(days=15):
                continue
            base = rnd.randint(6, 8)
            b.pain(d.isoformat(), base)
            b.injection(d.isoformat(), target, "right", guidance, drug, mg, "lidocaine", 40)
            good = rnd.random() < (0.7 if guidance != "landmark" else 0.45)
            after = max(0, base - (rnd.randint(4, 6) if good else rnd.randint(0, 2)))
            day = d + timedelta(days=rnd.randint(18, 30))
            relief = rnd.randint(40, 120) if good else rnd.randint(3, 20)
            ongoing = good and d + timedelta(days=relief) > today
            outcomes.append({"measured_on": day, "nrs": float(after), "pgic": 2 if good else 4,
                             "instrument": "hoos-jr" if target.startswith("hip") else None,
                             "instrument_raw": (6 if good else 14) if target.startswith("hip") else None,
                             "instrument_score": interval_score("hoos-jr", 6 if good else 14)
                             if target.startswith("hip") else None,
                             "relief_days": min(relief, (today - d).days), "relief_ongoing": ongoing,
                             "injection_ref": None})
        out.append((_named(b.bundle(), given, family), outcomes))
    return out


def load_demo(reg: Registry, today: date, actor: str = "demo-loader") -> int:
    """Put the demo clinic into the registry; returns the number of patients."""
    n = 0
    for (mode, bundle, on), (given, family) in zip(demo_bundles(), [("Mary", "Demo"), ("Peter", "Demo")],
                                                    strict=True):
        _add(reg, actor, _named(bundle, given, family), on, [])
        n += 1
        del mode
    for bundle, outcomes in synthetic_patients(today):
        _add(reg, actor, bundle, None, outcomes)
        n += 1
    return n


def _add(reg: Registry, actor: str, bundle: dict[str, Any], as_of: date | None, outcomes: list[dict[str, Any]]) -> None:
    raw = orjson.dumps(bundle)
    record = read_bundle(raw, source="demo")
    who = identity(bundle)
    pid = reg.add_patient(actor, who["fhir_id"], who["name"], record.patient.birth_date, who["sex"], raw.decode(), as_of)
    for o in outcomes:
        reg.add_outcome(actor, pid, o)
