"""Built-in demo patients (synthetic), so `injectwise demo` runs with no setup."""

from __future__ import annotations

from datetime import date

from injectwise.adapters.fhir import read_bundle
from injectwise.core.record import PatientRecord
from injectwise.demo.builder import BundleBuilder


def _assess_bundle() -> dict:
    b = BundleBuilder("demo-assess", sex="female", birth="1962-04-09")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2021-03-01")
    b.condition("E11.9", "Type 2 diabetes mellitus without complications", "2014-06-01")
    b.medication("6809", "metformin 1000 mg twice daily", "2014-07-01")
    b.medication("1364430", "apixaban 5 mg twice daily", "2023-02-01")
    b.lab("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 7.4, "%", "2026-09-15")
    b.therapy("2026-05-01", "2026-07-15", "Physical therapy - hip strengthening and mobility")
    b.pain("2026-10-30", 6)
    b.planned("hip-intra-articular", "right", "landmark", "triamcinolone", 80, "lidocaine", 40)
    return b.bundle()


def _review_bundle() -> dict:
    b = BundleBuilder("demo-review", sex="male", birth="1958-11-23")
    b.condition("M70.62", "Trochanteric bursitis, left hip", "2024-02-01")
    b.condition("M54.16", "Radiculopathy, lumbar region (L5), left", "2025-01-10")
    b.therapy("2025-03-01", "2025-05-30", "Physical therapy - hip abductor strengthening")
    b.injection("2026-08-04", "greater-trochanteric-bursa", "left", "landmark", "methylprednisolone", 80,
                "lidocaine", 50)
    b.pain("2026-08-04", 7)
    b.pain("2026-08-04T13:00:00", 7)
    b.pain("2026-09-01", 7)
    b.pain("2026-10-20", 8)
    b.condition("R20.2", "Numbness and tingling down the left lateral thigh to the knee", "2026-10-20",
                category="encounter-diagnosis")
    return b.bundle()


def demo_bundles() -> list[tuple[str, dict, date]]:
    """(mode, FHIR Bundle, evaluation date) for each demo patient; also used by tests of the adapters."""
    return [("assess", _assess_bundle(), date(2026, 11, 2)), ("review", _review_bundle(), date(2026, 10, 20))]


def demo_cases() -> list[tuple[str, PatientRecord, date]]:
    return [(mode, read_bundle(bundle, source=f"demo:{mode}"), on) for mode, bundle, on in demo_bundles()]
