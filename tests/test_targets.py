"""Injection targets beyond the hip: every target is named by its own words in a plan, by the names a caller
may give (id, alias or words), and the particulate-steroid hazard at a cervical foramen is a hard stop."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from injectwise.adapters.notes import note_only_record
from injectwise.engine.evaluate import PlanOverrides, assess

ON = "2026-09-01"


def _assess(tmp_path: Path, kb, text: str, plan: dict | None = None):
    p = tmp_path / "note.txt"
    p.write_text(text)
    rec = note_only_record(p, kb, date.fromisoformat(ON))
    return assess(rec, kb, date.fromisoformat(ON), PlanOverrides(**(plan or {})))


PLANS = [
    ("Plan: US-guided R GH joint injection, triamcinolone 40 mg.", "glenohumeral-joint"),
    ("Plan: L glenohumeral injection posterior approach, Depo-Medrol 40 mg.", "glenohumeral-joint"),
    ("Plan: US-guided R subacromial bursa injection, triamcinolone 20 mg.", "subacromial-bursa"),
    ("Plan: R AC joint injection, methylprednisolone 20 mg.", "acromioclavicular-joint"),
    ("Plan: R medial epicondyle injection for golfer's elbow, methylprednisolone 20 mg.", "medial-epicondyle"),
    ("Plan: R tennis elbow injection, triamcinolone 10 mg.", "lateral-epicondyle"),
    ("Plan: C6-7 ILESI under fluoroscopy, dexamethasone 10 mg.", "cervical-epidural"),
    ("Plan: cervical interlaminar epidural steroid injection, dexamethasone 10 mg.", "cervical-epidural"),
    ("Plan: L4-5 ILESI under fluoroscopy, dexamethasone 10 mg.", "lumbar-epidural"),
    ("Plan: R C5-6 TFESI with dexamethasone 10 mg.", "cervical-transforaminal"),
    ("Plan: R L5 transforaminal ESI with dexamethasone 10 mg.", "lumbar-transforaminal"),
    ("Plan: R C4-5 medial branch block, triamcinolone 10 mg.", "cervical-facet"),
    ("Plan: R L4-5 facet injection, triamcinolone 20 mg.", "lumbar-facet"),
    ("Plan: US-guided R carpal tunnel injection, methylprednisolone 40 mg.", "carpal-tunnel"),
    ("Plan: R trigger thumb injection, triamcinolone 10 mg.", "trigger-finger"),
    ("Plan: L first dorsal compartment (de Quervain) injection, triamcinolone 10 mg.", "de-quervain"),
    ("Plan: L first CMC joint injection, triamcinolone 10 mg.", "thumb-cmc"),
    ("Plan: US-guided R wrist joint injection, methylprednisolone 40 mg.", "wrist-intra-articular"),
    ("Plan: L plantar fascia injection, triamcinolone 20 mg.", "plantar-fascia"),
    ("Plan: US-guided R ankle joint injection, triamcinolone 40 mg.", "ankle-intra-articular"),
    ("Plan: US-guided R piriformis injection, triamcinolone 20 mg.", "piriformis"),
    ("Plan: US-guided R hip IA injection, triamcinolone 40 mg.", "hip-intra-articular"),
    # CESI is cervical (interlaminar) unless a lumbar or caudal level is named with it; caudal stays lumbar
    ("Plan: CESI under fluoroscopy, dexamethasone 10 mg.", "cervical-epidural"),
    ("Plan: C6-7 CESI under fluoroscopy, dexamethasone 10 mg.", "cervical-epidural"),
    ("Plan: CESI at L5-S1 under fluoroscopy, dexamethasone 10 mg.", "lumbar-epidural"),
    ("Plan: caudal ESI under fluoroscopy, dexamethasone 10 mg.", "lumbar-epidural"),
    ("Plan: caudal epidural steroid injection, triamcinolone 40 mg.", "lumbar-epidural"),
    ("Plan: L4-5 TFESI with dexamethasone 10 mg.", "lumbar-transforaminal"),
    ("Plan: thoracic epidural steroid injection T7-8 under fluoroscopy, dexamethasone 10 mg.", "thoracic-epidural"),
    ("Plan: T9-10 ILESI under fluoroscopy, dexamethasone 10 mg.", "thoracic-epidural"),
    ("Plan: interlaminar epidural at the thoracic level, dexamethasone 10 mg.", "thoracic-epidural"),
    ("Plan: R pes anserine bursa injection, triamcinolone 40 mg.", "pes-anserine-bursa"),
    ("Plan: US-guided L pes anserinus injection, methylprednisolone 40 mg.", "pes-anserine-bursa"),
    ("Plan: L olecranon bursa aspiration and injection, triamcinolone 10 mg.", "olecranon-bursa"),
    ("Plan: R olecranon bursitis injection, methylprednisolone 20 mg.", "olecranon-bursa"),
    ("Plan: R knee IA injection, triamcinolone 40 mg.", "knee-intra-articular"),
    ("Plan: R tennis elbow injection, triamcinolone 10 mg; no olecranon swelling.", "lateral-epicondyle"),
]


@pytest.mark.parametrize(("text", "target"), PLANS)
def test_a_plan_names_its_target_in_words(tmp_path, kb, text, target):
    res = _assess(tmp_path, kb, "Completed 8 weeks of physical therapy. " + text)
    assert res.as_json()["planned"]["target"] == target


@pytest.mark.parametrize(("name", "target"), [
    ("glenohumeral-joint", "glenohumeral-joint"), ("gh-joint", "glenohumeral-joint"),
    ("shoulder-glenohumeral", "glenohumeral-joint"), ("medial-epicondyle", "medial-epicondyle"),
    ("golfers-elbow", "medial-epicondyle"), ("cervical-interlaminar-epidural", "cervical-epidural"),
    ("cervical_transforaminal", "cervical-transforaminal"), ("carpal-tunnel", "carpal-tunnel"),
    ("trigger-finger", "trigger-finger"), ("first-dorsal-compartment", "de-quervain"), ("plantar-fascia", "plantar-fascia"),
    ("ankle", "ankle-intra-articular"), ("thumb-cmc", "thumb-cmc"), ("shoulder", "subacromial-bursa"),
    ("elbow", "lateral-epicondyle"), ("superior-gluteal-nerve", "peripheral-nerve"), ("left-ear", None),
    ("thoracic-epidural", "thoracic-epidural"), ("thoracic-interlaminar", "thoracic-epidural"),
    ("pes-anserine", "pes-anserine-bursa"), ("olecranon-bursa", "olecranon-bursa"), ("olecranon", "olecranon-bursa"),
    ("stellate-ganglion", None), ("lumbar-sympathetic-block", None),
])
def test_a_target_name_resolves_by_id_alias_or_words(kb, name, target):
    t = kb.target(name)
    assert (t.id if t else None) == target


@pytest.mark.parametrize(("steroid", "verdict"), [
    ("triamcinolone 40 mg", "do-not-inject"), ("Depo-Medrol 40 mg/mL 1 mL", "do-not-inject"),
    ("Celestone Soluspan 1 mL", "do-not-inject"), ("dexamethasone 10 mg", "proceed"),
])
def test_particulate_steroid_at_a_cervical_foramen_is_contraindicated(tmp_path, kb, steroid, verdict):
    res = _assess(tmp_path, kb, "R C6 radiculopathy, 8 weeks of PT completed. No blood thinners. "
                                f"Plan: R C5-6 transforaminal ESI under fluoroscopy, {steroid}.")
    assert res.outcome == verdict
    assert ("contraindication.particulate-steroid" in [f.id for f in res.findings]) == (verdict == "do-not-inject")


def test_particulate_steroid_in_a_cervical_interlaminar_epidural_is_a_caution_only(tmp_path, kb):
    res = _assess(tmp_path, kb, "Cervical radiculopathy, PT done. Plan: C7-T1 ILESI under fluoroscopy, Depo-Medrol 80 mg.")
    found = [f.id for f in res.findings]
    assert res.outcome == "proceed-with-caution"
    assert "caution.particulate-steroid" in found and not any(f.startswith("contraindication") for f in found)


def test_first_line_injections_need_no_therapy_first(tmp_path, kb):
    for text in ("R trigger finger, catching for 2 months. Plan: R A1 pulley injection, triamcinolone 10 mg.",
                 "R carpal tunnel syndrome, night splints. Plan: US-guided R carpal tunnel injection, methylprednisolone 40 mg."):
        res = _assess(tmp_path, kb, text)
        assert res.outcome == "proceed", [f.id for f in res.findings]
    res = _assess(tmp_path, kb, "R golfer's elbow for 6 weeks, no treatment yet. Plan: R medial epicondyle injection, "
                                "triamcinolone 10 mg.")
    assert "defer.conservative-care-not-tried" in [f.id for f in res.findings]


# ---- coded records (FHIR): each target's draft order is read as that target -------------------
SITES_CODED = ["glenohumeral-joint", "acromioclavicular-joint", "medial-epicondyle", "cervical-epidural", "thoracic-epidural",
               "pes-anserine-bursa", "olecranon-bursa",
               "cervical-transforaminal", "cervical-facet", "carpal-tunnel", "trigger-finger", "de-quervain", "thumb-cmc",
               "wrist-intra-articular", "ankle-intra-articular", "plantar-fascia", "piriformis"]


@pytest.mark.parametrize("target", SITES_CODED)
def test_a_coded_draft_order_is_read_as_its_target(kb, target):
    from injectwise.adapters.fhir import read_bundle
    from injectwise.demo.builder import BundleBuilder
    b = BundleBuilder("t")
    b.therapy("2026-01-01", "2026-03-01", "Physical therapy")
    b.planned(target, "right", "ultrasound", "dexamethasone", 4)
    res = assess(read_bundle(b.bundle()), kb, date.fromisoformat(ON))
    assert res.as_json()["planned"]["target"] == target


@pytest.mark.parametrize(("steroid", "mg", "contraindicated"), [("triamcinolone", 40, True), ("methylprednisolone", 80, True),
                                                                 ("dexamethasone", 10, False)])
def test_coded_cervical_transforaminal_particulate(kb, steroid, mg, contraindicated):
    from injectwise.adapters.fhir import read_bundle
    from injectwise.demo.builder import BundleBuilder
    b = BundleBuilder("c")
    b.condition("M54.12", "Cervical radiculopathy", "2026-03-01")
    b.therapy("2026-04-01", "2026-06-01", "Physical therapy - cervical")
    b.planned("cervical-transforaminal", "right", "fluoroscopy", steroid, mg)
    res = assess(read_bundle(b.bundle()), kb, date.fromisoformat(ON))
    assert ("contraindication.particulate-steroid" in [f.id for f in res.findings]) == contraindicated
    assert res.outcome == ("do-not-inject" if contraindicated else "proceed")


def test_a_thoracic_epidural_is_guided_and_avoids_particulate_steroid(tmp_path, kb):
    """Its own neuraxial target, not the lumbar one: fluoroscopy required, particulate steroid a caution."""
    res = _assess(tmp_path, kb, "T7 radiculopathy after shingles, no blood thinners. Plan: T7-8 thoracic epidural, "
                                "Depo-Medrol 80 mg.")
    found = [f.id for f in res.findings]
    assert res.as_json()["planned"]["target"] == "thoracic-epidural"
    assert "guidance.image-guidance-recommended" in found and "caution.particulate-steroid" in found
    assert not any(f.startswith("contraindication") for f in found)


def test_bursa_dose_ceilings_are_local_policy(tmp_path, kb):
    """Olecranon (superficial, 20 mg ceiling) and pes anserine (40 mg) bursae: above the ceiling is flagged."""
    note = "Completed 8 weeks of physical therapy. Pes anserine bursitis R knee; olecranon bursitis L elbow. "
    for plan, above in (("Plan: R pes anserine bursa injection, triamcinolone 40 mg.", False),
                        ("Plan: R pes anserine bursa injection, triamcinolone 60 mg.", True),
                        ("Plan: L olecranon bursa injection, triamcinolone 20 mg.", False),
                        ("Plan: L olecranon bursa injection, methylprednisolone 40 mg.", True)):
        found = [f.id for f in _assess(tmp_path, kb, note + plan).findings]
        assert ("dose.above-recommended" in found) == above, (plan, found)


@pytest.mark.parametrize("plan", [
    "Plan: R stellate ganglion block under US, bupivacaine 0.25% 5 mL with dexamethasone 4 mg.",
    "Plan: L lumbar sympathetic nerve block under fluoroscopy, bupivacaine, triamcinolone 40 mg.",
    "Plan: R stellate ganglion injection with ropivacaine and dexamethasone 4 mg.",
])
def test_a_sympathetic_block_is_refused_with_its_reason(tmp_path, kb, plan):
    from injectwise.core.errors import NotApplicable
    with pytest.raises(NotApplicable, match="sympathetic block"):
        _assess(tmp_path, kb, "CRPS of the R hand, PT done. " + plan)


def test_a_sympathetic_block_in_the_history_does_not_stop_a_plan(tmp_path, kb):
    res = _assess(tmp_path, kb, "CRPS, stellate ganglion block 2024 helped. R pes anserine bursitis, PT 8 weeks done. "
                                "Plan: R pes anserine bursa injection, triamcinolone 20 mg.")
    assert res.as_json()["planned"]["target"] == "pes-anserine-bursa"


def test_a_sympathetic_block_named_as_target_is_refused(kb):
    from injectwise.core.errors import InputError
    from injectwise.engine.evaluate import check_target_name
    with pytest.raises(InputError, match="not a corticosteroid injection target"):
        check_target_name(kb, "stellate-ganglion-block")
    assert check_target_name(kb, "olecranon-bursa").id == "olecranon-bursa"
