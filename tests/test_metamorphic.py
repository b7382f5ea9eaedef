"""Metamorphic checks over every vignette: a change of FHIR shape or of a note's spacing and date style that
does not change the clinical meaning must not change the verdict or a single finding. Real EHRs send local
codings beside HL7 ones, medications by reference, periods for dates, offsets in times, HTML and CRLF notes;
each transform here found a real reading error once."""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SHARED

from injectwise.adapters.cli.inputs import with_notes
from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.notes import note_only_record
from injectwise.engine.evaluate import PlanOverrides, assess, review

OWN = Path(__file__).parent / "vignettes"
Json = dict[str, Any]


def _vignettes() -> list[Path]:
    public = sorted((SHARED / "examples" / "vignettes").glob("*.yaml")) if SHARED.is_dir() else []
    return sorted(OWN.glob("*.yaml")) + public


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> list[tuple[Json, Json]]:
    """(expected.json, bundle.json) of every vignette, made by the shared converter."""
    if not (SHARED / "tools" / "vignette2fhir.py").is_file():
        pytest.skip("../shared is not beside the project")
    out = tmp_path_factory.mktemp("mm")
    subprocess.run([sys.executable, str(SHARED / "tools" / "vignette2fhir.py"), *map(str, _vignettes()), "--out",
                    str(out)], check=True, capture_output=True)
    return [(json.loads((d / "expected.json").read_text()), json.loads((d / "bundle.json").read_text()))
            for d in sorted(out.iterdir())]


def _resources(b: Json) -> list[Json]:
    return [e["resource"] for e in b["entry"]]


def _walk(o: Any, f: Callable[[Any], Any]) -> Any:
    if isinstance(o, dict):
        return f({k: _walk(v, f) for k, v in o.items()})
    if isinstance(o, list):
        return [_walk(v, f) for v in o]
    return f(o)


def medication_reference(b: Json) -> Json:
    added = []
    for n, r in enumerate(_resources(b)):
        if "medicationCodeableConcept" in r:
            mid = f"med-{n}"
            added.append({"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
                          "resource": {"resourceType": "Medication", "id": mid, "code": r.pop("medicationCodeableConcept")}})
            r["medicationReference"] = {"reference": added[-1]["fullUrl"]}
    b["entry"] = added + b["entry"]
    return b


def contained_medication_by_volume(b: Json) -> Json:
    """A steroid given as 2 mL of a contained Medication whose strength is half the dose per mL."""
    for r in _resources(b):
        if r["resourceType"] != "MedicationAdministration":
            continue
        dose = (r.get("dosage") or {}).get("dose") or {}
        if dose.get("unit") == "mg" and "medicationCodeableConcept" in r:
            code = r.pop("medicationCodeableConcept")
            r["contained"] = [{"resourceType": "Medication", "id": "m1", "code": code, "ingredient": [{
                "itemCodeableConcept": code, "strength": {
                    "numerator": {"value": dose["value"] / 2, "unit": "mg", "code": "mg"},
                    "denominator": {"value": 1, "unit": "mL", "code": "mL"}}}]}]
            r["medicationReference"] = {"reference": "#m1"}
            r["dosage"]["dose"] = {"value": 2, "unit": "mL", "code": "mL"}
    return b


def administrations_not_linked(b: Json) -> Json:
    """Most EHRs do not fill MedicationAdministration.partOf: the drugs are given at the procedure all the same."""
    for r in _resources(b):
        if r["resourceType"] == "MedicationAdministration":
            r.pop("partOf", None)
    return b


def periods(b: Json) -> Json:
    for r in _resources(b):
        for one, span in (("performedDateTime", "performedPeriod"), ("effectiveDateTime", "effectivePeriod"),
                          ("onsetDateTime", "onsetPeriod")):
            if one in r:
                v = r.pop(one)
                r[span] = {"start": v} if r["resourceType"] == "Condition" else {"start": v, "end": v}
    return b


def offsets_in_times(b: Json) -> Json:
    def f(s: Any) -> Any:
        if isinstance(s, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT(0[6-9]|1\d|2[0-3]):\d\d:\d\dZ", s):
            return f"{s[:11]}{int(s[11:13]) - 5:02d}{s[13:19]}-05:00"
        return s
    return _walk(b, f)


def local_codings_first(b: Json) -> Json:
    def f(o: Any) -> Any:
        if isinstance(o, dict) and isinstance(o.get("coding"), list):
            o["coding"] = [{"system": "urn:oid:1.2.840.114350.1.13", "code": "LOC-77"}, *o["coding"]]
        return o
    return _walk(b, f)


def absolute_references(b: Json) -> Json:
    urls = {}
    for e in b["entry"]:
        r = e["resource"]
        url = f"https://ehr.example.org/fhir/{r['resourceType']}/{r['id']}"
        urls[e.get("fullUrl")] = urls[f"{r['resourceType']}/{r['id']}"] = e["fullUrl"] = url

    def f(o: Any) -> Any:
        if isinstance(o, dict) and o.get("reference") in urls:
            o["reference"] = urls[o["reference"]]
        return o
    b["entry"] = [{**e, "resource": _walk(e["resource"], f)} for e in b["entry"]]
    return b


def searchset_reversed(b: Json) -> Json:
    b["type"] = "searchset"
    b["entry"] = [{**e, "search": {"mode": "match"}} for e in reversed(b["entry"])]
    return b


def html_note_with_plain_rendition_and_binary(b: Json) -> Json:
    """The note as HTML (wrapped lines kept as `<br>`) beside its plain text held in a Binary."""
    for r in _resources(b):
        if r["resourceType"] == "DocumentReference":
            att = r["content"][0]["attachment"]
            text = base64.b64decode(att["data"]).decode()
            body = "".join("<p>" + "<br/>\n".join(html.escape(x) for x in para.split("\n")) + "</p>"
                           for para in text.split("\n\n"))
            r["contained"] = [{"resourceType": "Binary", "id": "b1", "contentType": "text/plain", "data": att["data"]}]
            r["content"] = [{"attachment": {"contentType": "text/html",
                                            "data": base64.b64encode(body.encode()).decode()}},
                            {"attachment": {"contentType": "text/plain", "url": "#b1"}}]
    return b


def html_note_only(b: Json) -> Json:
    b = html_note_with_plain_rendition_and_binary(b)
    for r in _resources(b):
        if r["resourceType"] == "DocumentReference":
            r["content"] = r["content"][:1]
    return b


def units_converted(b: Json) -> Json:
    for r in _resources(b):
        q = r.get("valueQuantity")
        if r["resourceType"] != "Observation" or not isinstance(q, dict):
            continue
        codes = {c.get("code") for c in (r.get("code") or {}).get("coding", [])}
        unit = q.get("code") or q.get("unit")
        if unit in ("Cel", "°C"):
            r["valueQuantity"] = {"value": round(q["value"] * 9 / 5 + 32, 2), "unit": "°F", "code": "[degF]"}
        elif codes & {"2339-0", "2345-7"} and unit == "mg/dL":
            r["valueQuantity"] = {"value": round(q["value"] / 18.016, 2), "unit": "mmol/L", "code": "mmol/L"}
        elif codes & {"4548-4", "17856-6"} and unit == "%":
            r["valueQuantity"] = {"value": round((q["value"] - 2.15) * 10.929, 1), "unit": "mmol/mol",
                                  "code": "mmol/mol"}
    return b


BUNDLE_TRANSFORMS = [medication_reference, contained_medication_by_volume, administrations_not_linked, periods, offsets_in_times,
                     local_codings_first, absolute_references, searchset_reversed,
                     html_note_with_plain_rendition_and_binary, html_note_only, units_converted]


def _bundle_result(expected: Json, bundle: Json) -> tuple[str, list[str]]:
    from injectwise.knowledge import load_knowledge

    kb = load_knowledge()
    as_of = date.fromisoformat(expected["as_of"])
    rec = with_notes(read_bundle(json.dumps(bundle).encode()), None, kb, as_of)
    r = (assess if expected["mode"] == "assess" else review)(rec, kb, as_of)
    return r.outcome, sorted(f.id for f in r.findings)


@pytest.mark.parametrize("transform", BUNDLE_TRANSFORMS, ids=lambda t: t.__name__)
def test_fhir_shape_does_not_change_the_result(bundles, transform):
    changed = []
    for expected, bundle in bundles:
        before = _bundle_result(expected, bundle)
        after = _bundle_result(expected, transform(copy.deepcopy(bundle)))
        if after != before:
            changed.append(f"{expected['id']}: {before} -> {after}")
    assert not changed, "\n".join(changed)


# ---- notes -------------------------------------------------------------------------------------------
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# words clinicians use for the same thing, each replacing the other everywhere in a note
SYNONYMS = [("triamcinolone", "Kenalog"), ("methylprednisolone", "Depo-Medrol"), ("physical therapy", "physiotherapy"),
            ("PT", "physio"), ("lidocaine", "lignocaine"), ("bupivacaine", "Marcaine"), ("weeks", "wks"),
            ("fluoroscopy", "fluoro"), ("R", "Rt"), ("L", "Lt"), ("dexamethasone", "Decadron")]


def _synonyms(text: str) -> str:
    for a, b in SYNONYMS:
        text = re.sub(rf"(?<![\w-]){re.escape(a)}(?![\w-])", b, text, flags=0 if a.isupper() else re.I)
    return text


NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]
NOTE_TRANSFORMS: dict[str, Callable[[str], str]] = {
    "crlf": lambda t: t.replace("\n", "\r\n"),
    "double-spaces": lambda t: re.sub(r"(?<=\S) (?=\S)", "  ", t),
    "tabs-and-nbsp": lambda t: t.replace(", ", ",\t").replace(" mg", "\u00a0mg"),
    "us-dates": lambda t: re.sub(r"\b(\d{4})-(\d\d)-(\d\d)\b", lambda m: f"{int(m[2])}/{int(m[3])}/{m[1]}", t),
    "dates-in-words": lambda t: re.sub(r"\b(\d{4})-(\d\d)-(\d\d)\b",
                                       lambda m: f"{int(m[3])} {MONTHS[int(m[2]) - 1]} {m[1]}", t),
    "sentences-without-capitals": lambda t: re.sub(r"(?<=[.!?] )([A-Z])(?=[a-z])", lambda m: m[1].lower(), t),
    "numbers-in-words": lambda t: re.sub(
        r"\b([1-9]|1[0-2]) (days?|weeks?|months?|years?|injections?|sessions?)\b",
        lambda m: f"{NUMBER_WORDS[int(m[1])]} {m[2]}", t),
    "sides-spelled-out": lambda t: re.sub(r"\bL\b(?=\s[A-Za-z])", "left", re.sub(r"\bR\b(?=\s[A-Za-z])", "right", t)),
    "degrees-in-words": lambda t: re.sub(r"(\d) ?(?:°C|C)\b", r"\1 degrees C", t),
    "family-and-return-precautions-first": lambda t: "FHx: mother had septic arthritis; brother with lumbar "
    "radiculopathy, sister with lupus. If saddle numbness or new weakness, go to the ED.\n" + t,
    "history-and-consent-after": lambda t: t.rstrip("\n") + "\nPMH: HTN, hyperlipidemia, GERD.\nSH: never smoker.\n"
    "Consent: risks discussed including infection, bleeding, skin depigmentation, fat atrophy, tendon rupture, nerve "
    "injury, raised blood sugars and a post-injection flare. Advised to call if redness, warmth or fever.\n",
    "synonyms": lambda t: _synonyms(t),
    "header-and-signature": lambda t: "PROGRESS NOTE\nClinic: Musculoskeletal medicine\n\n" + t.rstrip("\n")
    + "\n\nElectronically signed by: Dr. A. Example, MD\n",
}


def _note_result(v: Json, text: str, path: Path) -> tuple[str, list[str]]:
    from injectwise.knowledge import load_knowledge

    kb = load_knowledge()
    path.write_bytes(text.encode())
    as_of = date.fromisoformat(str(v["as_of"]))
    rec = note_only_record(path, kb, as_of)
    if v["expect"]["mode"] == "review":
        r = review(rec, kb, as_of)
    else:
        p = (v.get("planned") or [{}])[0]
        s, a = p.get("steroid") or {}, p.get("anesthetic") or {}
        r = assess(rec, kb, as_of, PlanOverrides(p.get("target"), p.get("side"), p.get("guidance"), s.get("drug"),
                                                 s.get("mg"), a.get("drug"), a.get("mg")))
    return r.outcome, sorted(f.id for f in r.findings)


@pytest.mark.parametrize("name", list(NOTE_TRANSFORMS))
def test_note_spacing_and_date_style_do_not_change_the_result(tmp_path, name):
    changed = []
    for f in _vignettes():
        v = yaml.safe_load(f.read_text())
        if not v.get("note"):
            continue
        before = _note_result(v, v["note"], tmp_path / "a.txt")
        text = NOTE_TRANSFORMS[name](v["note"])
        if text != v["note"] and (after := _note_result(v, text, tmp_path / "b.txt")) != before:
            changed.append(f"{f.stem}: {before} -> {after}")
    assert not changed, "\n".join(changed)


# ---- time --------------------------------------------------------------------------------------------
def _shift_text(text: str, years: int) -> str:
    text = re.sub(r"\b(19[5-9]\d|20\d\d)\b", lambda m: str(int(m[1]) + years), text)
    return re.sub(r"\b(\d{1,2}/\d{1,2}/)(\d\d)\b(?!/)", lambda m: m[1] + f"{(int(m[2]) + years) % 100:02d}", text)


def _shift(o: Any, years: int) -> Any:
    if isinstance(o, dict):
        out = {k: _shift(v, years) for k, v in o.items()}
        if out.get("resourceType") == "DocumentReference":
            for c in out.get("content", []):
                att = c["attachment"]
                if "data" in att:
                    text = base64.b64decode(att["data"]).decode()
                    att["data"] = base64.b64encode(_shift_text(text, years).encode()).decode()
        return out
    if isinstance(o, list):
        return [_shift(v, years) for v in o]
    if isinstance(o, str):
        return f"{int(o[:4]) + years}{o[4:]}" if re.match(r"\d{4}-\d\d", o) else _shift_text(o, years)
    return o


@pytest.mark.parametrize("years", [-28, 28])
def test_the_same_case_28_years_apart_gives_the_same_result(bundles, years):
    """The Gregorian calendar repeats every 28 years in 1901-2099 (weekdays and leap days alike), so every
    interval, age and window is the same; dates in notes, also with two-digit years, move with the record."""
    changed = []
    for expected, bundle in bundles:
        before = _bundle_result(expected, bundle)
        moved = {**expected, "as_of": _shift(expected["as_of"], years)}
        after = _bundle_result(moved, _shift(copy.deepcopy(bundle), years))
        if after != before:
            changed.append(f"{expected['id']}: {before} -> {after}")
    assert not changed, "\n".join(changed)
