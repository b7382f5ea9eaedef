"""Build small synthetic FHIR R4 bundles in code: the demo patients and the test fixtures.

Deterministic ids (a prefix and a counter) so outputs are reproducible."""

from __future__ import annotations

from typing import Any

ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
CPT = "http://www.ama-assn.org/go/cpt"
UCUM = "http://unitsofmeasure.org"

SITES = {  # target -> (CPT without ultrasound, CPT with ultrasound or None, site text)
    "hip-intra-articular": ("20610", "20611", "hip joint"),
    "greater-trochanteric-bursa": ("20610", "20611", "greater trochanteric bursa"),
    "iliopsoas-bursa": ("20610", "20611", "iliopsoas bursa"),
    "knee-intra-articular": ("20610", "20611", "knee joint"),
    "subacromial-bursa": ("20610", "20611", "subacromial bursa"),
    "lateral-epicondyle": ("20551", None, "common extensor origin, lateral epicondyle"),
    "sacroiliac-joint": ("27096", None, "sacroiliac joint"),
    "lumbar-epidural": ("62323", None, "lumbar epidural space"),
    "lumbar-transforaminal": ("64483", None, "lumbar nerve root, transforaminal"),
    "lumbar-facet": ("64493", None, "lumbar facet joint, L4-L5"),
    "trigger-point": ("20552", None, "gluteal muscle trigger points"),
    "peripheral-nerve": ("64450", None, "superior gluteal nerve"),
    "glenohumeral-joint": ("20610", "20611", "glenohumeral joint"),
    "acromioclavicular-joint": ("20605", "20606", "acromioclavicular joint"),
    "medial-epicondyle": ("20551", None, "common flexor origin, medial epicondyle"),
    "cervical-epidural": ("62321", None, "cervical epidural space"),
    "thoracic-epidural": ("62321", None, "thoracic epidural space, T7-T8"),
    "pes-anserine-bursa": ("20610", "20611", "pes anserine bursa"),
    "olecranon-bursa": ("20605", "20606", "olecranon bursa"),
    "cervical-transforaminal": ("64479", None, "cervical nerve root, transforaminal"),
    "cervical-facet": ("64490", None, "cervical facet joint, C4-C5"),
    "carpal-tunnel": ("20526", None, "carpal tunnel"),
    "trigger-finger": ("20550", None, "flexor tendon sheath, A1 pulley"),
    "de-quervain": ("20550", None, "first dorsal compartment"),
    "thumb-cmc": ("20600", "20604", "first carpometacarpal joint"),
    "wrist-intra-articular": ("20605", "20606", "wrist joint"),
    "ankle-intra-articular": ("20605", "20606", "ankle joint"),
    "plantar-fascia": ("20550", None, "plantar fascia"),
    "piriformis": ("20552", None, "piriformis muscle"),
}
DRUGS = {"triamcinolone": "10759", "methylprednisolone": "6902", "dexamethasone": "3264", "betamethasone": "1514",
         "lidocaine": "6387", "bupivacaine": "1815", "ropivacaine": "35780"}
GUIDANCE_TEXT = {"landmark": "landmark-guided, no imaging", "ultrasound": "under ultrasound guidance",
                 "fluoroscopy": "under fluoroscopic guidance"}


def _cc(system: str | None, code: str | None, text: str) -> dict[str, Any]:
    out: dict[str, Any] = {"text": text}
    if code and system:
        out["coding"] = [{"system": system, "code": code, "display": text}]
    return out


def _when(d: str, default_time: str = "09:00:00") -> str:
    return d if "T" in d else f"{d}T{default_time}Z"


class BundleBuilder:
    def __init__(self, prefix: str, sex: str = "female", birth: str = "1960-01-01",
                 deceased: str | None = None) -> None:
        self.prefix = prefix
        self.n = 0
        self.resources: list[dict[str, Any]] = []
        pid = self._id()
        p: dict[str, Any] = {"resourceType": "Patient", "id": pid, "gender": sex, "birthDate": birth}
        if deceased:
            p["deceasedDateTime"] = deceased
        self.patient = p
        self.resources.append(p)
        self.subject = {"reference": f"Patient/{pid}"}

    def _id(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}"

    def add(self, r: dict[str, Any]) -> dict[str, Any]:
        r.setdefault("id", self._id())
        self.resources.append(r)
        return r

    def condition(self, icd10: str | None, text: str, onset: str, category: str = "problem-list-item",
                  verification: str = "confirmed", status: str | None = "active", snomed: str | None = None,
                  body_site: str | None = None, abated: str | None = None) -> dict[str, Any]:
        """status None: no clinicalStatus at all (recency then decides)."""
        code = _cc(ICD10, icd10, text) if icd10 else _cc(SNOMED, snomed, text)
        r: dict[str, Any] = {
            "resourceType": "Condition", "subject": self.subject,
            "verificationStatus": _cc("http://terminology.hl7.org/CodeSystem/condition-ver-status", verification,
                                      verification),
            "category": [_cc("http://terminology.hl7.org/CodeSystem/condition-category", category, category)],
            "code": code, "onsetDateTime": onset, "recordedDate": onset}
        if status:
            r["clinicalStatus"] = _cc("http://terminology.hl7.org/CodeSystem/condition-clinical", status, status)
        if abated:
            r["abatementDateTime"] = abated
        if body_site:
            r["bodySite"] = [{"text": body_site}]
        return self.add(r)

    def medication(self, rxnorm: str | None, text: str, start: str, status: str = "active",
                   end: str | None = None) -> dict[str, Any]:
        period = {"start": start, **({"end": end} if end else {})}
        return self.add({"resourceType": "MedicationStatement", "subject": self.subject, "status": status,
                         "medicationCodeableConcept": _cc(RXNORM, rxnorm, text), "effectivePeriod": period})

    def result(self, loinc: str | None, text: str, value: str, date: str, coded: bool = False) -> dict[str, Any]:
        """A qualitative result: valueString, or valueCodeableConcept when `coded`."""
        r: dict[str, Any] = {"resourceType": "Observation", "status": "final", "subject": self.subject,
                             "code": _cc(LOINC, loinc, text), "effectiveDateTime": _when(date)}
        if coded:
            r["valueCodeableConcept"] = {"text": value}
        else:
            r["valueString"] = value
        return self.add(r)

    def allergy(self, rxnorm: str | None, text: str, verification: str = "confirmed",
                reaction: str | None = None) -> dict[str, Any]:
        r = {
            "resourceType": "AllergyIntolerance", "patient": self.subject,
            "clinicalStatus": _cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "active",
                                  "Active"),
            "verificationStatus": _cc("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                                      verification, verification),
            "code": _cc(RXNORM, rxnorm, text)}
        if reaction:
            r["reaction"] = [{"manifestation": [{"text": reaction}]}]
        return self.add(r)

    def lab(self, loinc: str | None, text: str, value: float, unit: str | None, date: str) -> dict[str, Any]:
        q: dict[str, Any] = {"value": value}
        if unit:
            q.update({"unit": unit, "system": UCUM, "code": unit})
        return self.add({"resourceType": "Observation", "status": "final", "subject": self.subject,
                         "code": _cc(LOINC, loinc, text), "effectiveDateTime": _when(date), "valueQuantity": q})

    def text_obs(self, text: str, value: float | str, date: str) -> dict[str, Any]:
        r: dict[str, Any] = {"resourceType": "Observation", "status": "final", "subject": self.subject,
                             "code": {"text": text}, "effectiveDateTime": _when(date)}
        if isinstance(value, int | float):
            r["valueQuantity"] = {"value": value}
        else:
            r["valueString"] = value
        return self.add(r)

    def pain(self, date: str, value: float) -> dict[str, Any]:
        return self.add({"resourceType": "Observation", "status": "final", "subject": self.subject,
                         "code": _cc(LOINC, "72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported"),
                         "effectiveDateTime": _when(date), "valueInteger" if float(value).is_integer() else
                         "valueDecimal": int(value) if float(value).is_integer() else value})

    def therapy(self, start: str, end: str, text: str = "Physical therapy", status: str = "completed") -> dict[str, Any]:
        return self.add({"resourceType": "Procedure", "subject": self.subject, "status": status,
                         "code": _cc(SNOMED, "91251008", text), "performedPeriod": {"start": start, "end": end}})

    def procedure(self, text: str, date: str, snomed: str | None = None, status: str = "completed") -> dict[str, Any]:
        return self.add({"resourceType": "Procedure", "subject": self.subject, "status": status,
                         "code": _cc(SNOMED, snomed, text), "performedDateTime": date})

    def future_order(self, text: str, date: str, snomed: str | None = None) -> dict[str, Any]:
        return self.add({"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                         "subject": self.subject, "code": _cc(SNOMED, snomed, text), "occurrenceDateTime": date})

    def injection(self, date: str, target: str, side: str | None, guidance: str, steroid: str | None,
                  mg: float | None, anesthetic: str | None = None, amg: float | None = None,
                  note: str | None = None) -> dict[str, Any]:
        cpt0, cpt_us, site_text = SITES[target]
        site = f"{side} {site_text}" if side else site_text
        code = cpt_us if guidance == "ultrasound" and cpt_us else cpt0
        text = f"Corticosteroid injection, {site}, {GUIDANCE_TEXT[guidance]}"
        when = _when(date, "10:00:00")
        proc = self.add({"resourceType": "Procedure", "subject": self.subject, "status": "completed",
                         "code": _cc(CPT, code, text), "performedDateTime": when, "bodySite": [{"text": site}]})
        if note:
            proc["note"] = [{"text": note}]
        if guidance == "fluoroscopy" or (guidance == "ultrasound" and not cpt_us):
            g = ("77002", "Fluoroscopic guidance") if guidance == "fluoroscopy" else ("76942", "Ultrasonic guidance")
            self.add({"resourceType": "Procedure", "subject": self.subject, "status": "completed",
                      "code": _cc(CPT, g[0], g[1]), "performedDateTime": when,
                      "partOf": [{"reference": f"Procedure/{proc['id']}"}]})
        for drug, dose in ((steroid, mg), (anesthetic, amg)):
            if not drug:
                continue
            ma: dict[str, Any] = {
                "resourceType": "MedicationAdministration", "status": "completed", "subject": self.subject,
                "effectiveDateTime": when, "medicationCodeableConcept": _cc(RXNORM, DRUGS.get(drug), drug),
                "partOf": [{"reference": f"Procedure/{proc['id']}"}], "dosage": {"site": {"text": site}}}
            if dose is not None:
                ma["dosage"]["dose"] = {"value": dose, "unit": "mg", "system": UCUM, "code": "mg"}
            self.add(ma)
        return proc

    def planned(self, target: str, side: str | None, guidance: str, steroid: str | None, mg: float | None,
                anesthetic: str | None = None, amg: float | None = None, aunit: str = "mg",
                atext: str | None = None) -> dict[str, Any]:
        """A draft order; `aunit`/`atext` give the anaesthetic as e.g. 4 mL of "lidocaine 1%"."""
        cpt0, cpt_us, site_text = SITES[target]
        site = f"{side} {site_text}" if side else site_text
        code = cpt_us if guidance == "ultrasound" and cpt_us else cpt0
        sr = self.add({"resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
                       "subject": self.subject,
                       "code": _cc(CPT, code, f"Corticosteroid injection, {site}, {GUIDANCE_TEXT[guidance]}"),
                       "bodySite": [{"text": site}]})
        for drug, dose, unit, label in ((steroid, mg, "mg", steroid), (anesthetic, amg, aunit, atext or anesthetic)):
            if drug:
                self.add({"resourceType": "MedicationRequest", "status": "draft", "intent": "proposal",
                          "subject": self.subject, "medicationCodeableConcept": _cc(RXNORM, DRUGS.get(drug), label),
                          "reasonReference": [{"reference": f"ServiceRequest/{sr['id']}"}],
                          "dosageInstruction": [{"text": f"{dose} {unit} into {site}", "site": {"text": site},
                                                 "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit,
                                                                                   "system": UCUM, "code": unit}}]}]})
        return sr

    def bundle(self, btype: str = "collection") -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": btype,
                "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in self.resources]}
