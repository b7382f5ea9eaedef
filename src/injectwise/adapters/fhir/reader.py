"""Read a FHIR R4 Bundle (collection, transaction, batch, searchset) into a PatientRecord."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from injectwise.core.dates import parse_fhir_datetime, parse_fhir_str
from injectwise.core.errors import InputError
from injectwise.core.record import (
    Allergy,
    CarePlanActivity,
    Coded,
    Coding,
    Condition,
    Document,
    MedicationAdministration,
    MedicationUse,
    Observation,
    Patient,
    PatientRecord,
    Procedure,
    ServiceRequest,
)

# The _Builder method that reads each resource type into the record.
HANDLERS = {"Condition": "condition", "Observation": "observation", "Procedure": "procedure",
            "MedicationAdministration": "administration", "MedicationStatement": "medication_statement",
            "MedicationRequest": "medication_request", "AllergyIntolerance": "allergy", "CarePlan": "care_plan",
            "ServiceRequest": "service_request", "DocumentReference": "document"}
# Every resource type the reader looks at (Medications through references); any other type is ignored.
READ_TYPES = frozenset({*HANDLERS, "Patient", "Medication", "Binary"})
# SNOMED CT laterality qualifier values (Right, Left, Right and left): EHRs may send a body site's side as one of
# these codes beside the site's own code, with no display or text to read the side from
SNOMED_SYSTEM = "http://snomed.info/sct"
SNOMED_LATERALITY = {"24028007": "right", "7771000": "left", "51440002": "bilateral"}
BUNDLE_TYPES = {"collection", "transaction", "batch", "searchset", "transaction-response", "batch-response"}
Json = dict[str, Any]
# FHIR's own code systems (clinical and verification status, category): preferred over a local coding beside them.
HL7_SYSTEM = re.compile(r"https?://(terminology\.)?hl7\.org/")


def read_bundle_file(path: str | Path) -> PatientRecord:
    """Read one bundle file; every failure is an InputError naming the file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot read file ({e.strerror or e})") from None
    try:
        return read_bundle(data, source=str(p))
    except InputError as e:
        msg = str(e)
        raise InputError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None


def read_bundle(data: bytes | str | Json, source: str = "") -> PatientRecord:
    """Parse bytes or an already-parsed dict; resolve references; build the record."""
    if isinstance(data, dict):
        doc: Any = data
    else:
        if not data or not (data.strip() if isinstance(data, bytes | str) else data):
            raise InputError("empty input: expected a FHIR Bundle")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise InputError(f"not valid JSON ({_short(str(e))})") from None
    if not isinstance(doc, dict):
        raise InputError("not a FHIR Bundle: the JSON is not an object")
    rtype = doc.get("resourceType")
    if rtype != "Bundle":
        raise InputError(f"not a FHIR Bundle: resourceType is {rtype!r}")
    btype = doc.get("type")
    if not isinstance(btype, str) or btype not in BUNDLE_TYPES:
        raise InputError(f"unsupported Bundle type {btype!r}; expected one of collection, transaction, "
                         "batch, searchset")
    entries = doc.get("entry")
    if entries is None or entries == []:
        raise InputError("empty Bundle: no entries")
    if not isinstance(entries, list):
        raise InputError("malformed Bundle: entry is not a list")
    return _read_entries(entries, source)


def read_resources(resources: list[Json], source: str = "",
                   skip_observation: Callable[[Json], bool] | None = None) -> PatientRecord:
    """One patient's resources from a FHIR Bulk Data export (references `Type/id`): read as the collection
    Bundle whose fullUrls are those references, without building it. `skip_observation` lets a caller
    that knows no rule can use an Observation (e.g. its code maps to no concept) skip building it."""
    if not resources:
        raise InputError("empty Bundle: no entries")
    pairs: list[tuple[str, Json]] = []
    alias: dict[str, str] = {}
    for r in resources:
        ref = bulk_reference(r)
        if ref is None:
            return _read_entries(_bulk_entries(resources), source, skip_observation)  # the general case
        alias[ref] = ref
        pairs.append((ref, r))
    return _build(pairs, alias, source, skip_observation)


def bulk_reference(r: Json) -> str | None:
    """A Bulk resource's `Type/id` when `_read_entries` would make it that and nothing else (its own alias);
    None when only the general path can tell (no id, a slash in it, a `urn:` type)."""
    rtype, rid = r.get("resourceType"), r.get("id")
    if isinstance(rtype, str) and isinstance(rid, str) and rid and "/" not in rid and not rtype.startswith("urn:"):
        return f"{rtype}/{rid}"
    return None


def _bulk_entries(resources: list[Json]) -> list[Json]:
    entries = []
    for r in resources:
        rid = r.get("id")
        e: Json = {"resource": r}
        if isinstance(rid, str) and isinstance(r.get("resourceType"), str):
            e["fullUrl"] = f"{r['resourceType']}/{rid}"
        entries.append(e)
    return entries


def _read_entries(entries: list[Any], source: str,
                  skip_observation: Callable[[Json], bool] | None = None) -> PatientRecord:
    """Resolve each entry's reference (its `Type/id`, else its fullUrl) and build the record."""
    resources: list[tuple[str, Json]] = []
    alias: dict[str, str] = {}
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise InputError(f"malformed Bundle: entry {i} is not an object")
        r = e.get("resource")
        if r is None:
            continue  # e.g. a DELETE request entry
        if not isinstance(r, dict) or not isinstance(r.get("resourceType"), str):
            raise InputError(f"malformed Bundle: entry {i} has no resourceType")
        rid = r.get("id")
        canon = f"{r['resourceType']}/{rid}" if isinstance(rid, str) and rid else None
        full = e.get("fullUrl")
        if isinstance(full, str) and full:
            if canon is None:
                canon = full
            alias[full] = canon
            if "/" in full and not full.startswith("urn:"):
                tail = "/".join(full.rstrip("/").split("/")[-2:])
                alias.setdefault(tail, canon)
        if canon is None:
            canon = f"{r['resourceType']}/#{i}"
        alias.setdefault(canon, canon)
        resources.append((canon, r))  # the reference travels beside the resource, which stays untouched
    return _build(resources, alias, source, skip_observation)


def _build(resources: list[tuple[str, Json]], alias: dict[str, str], source: str,
           skip_observation: Callable[[Json], bool] | None) -> PatientRecord:
    if skip_observation is not None and len({ref for ref, _ in resources}) != len(resources):
        skip_observation = None  # two resources share a reference: the engine's per-reference caches would
        # map both as the first one, so which of them is read must not change
    return _Builder(alias, source, skip_observation).build(resources)


# Codings are immutable and the same codes recur in every record: one shared instance per (system, code,
# display), up to a bound (unique displays must not grow memory without limit).
_CODINGS: dict[tuple[str, str, str], Coding] = {}
MAX_SHARED_CODINGS = 50_000
# The codings a `coding` list reads as, by the list's JSON: a function of that JSON alone (bounded).
_CODING_LISTS: dict[bytes, tuple[Coding, ...]] = {}
MAX_SHARED_KEY = 2048


_PLAIN = (str, int, bool, type(None))


def _coding_key(raw: Any) -> bytes | None:
    """The memo key of a `coding` list: its JSON, when the list holds only objects of plain strings, integers,
    booleans and nulls (parsed JSON), so that equal keys read alike; else (a float, a nested value, a Python
    object a caller put in a dict, a long display) None: read it each time."""
    if type(raw) is not list:
        return None
    for c in raw:
        if type(c) is not dict:
            return None
        for v in c.values():
            if type(v) not in _PLAIN:
                return None
    try:
        key = orjson.dumps(raw)
    except TypeError:  # e.g. a key that is not a string, a string that is not valid Unicode
        return None
    return key if len(key) <= MAX_SHARED_KEY else None


def _codings(raw: Any) -> tuple[Coding, ...]:
    """A CodeableConcept's `coding` list: entries with a string or integer code (any other is skipped)."""
    codings = []
    for c in raw:
        if not isinstance(c, dict):
            continue
        code = c.get("code")
        if isinstance(code, str):
            code = code.strip()
        elif isinstance(code, int):
            code = str(code).strip()
        else:
            continue
        system = c.get("system")
        display = c.get("display")
        key = (system if isinstance(system, str) else str(system or ""), code,
               display if isinstance(display, str) else "")
        cd = _CODINGS.get(key)
        if cd is None:
            cd = Coding(*key)
            if len(_CODINGS) < MAX_SHARED_CODINGS and len(key[0]) + len(code) + len(key[2]) <= MAX_SHARED_KEY:
                _CODINGS[key] = cd
        codings.append(cd)
    return tuple(codings)

# No clinical quantity we read comes near this; larger values (1e308) are data errors, read as unknown.
MAX_QUANTITY = 1e6


def _str(v: Any) -> str | None:
    """FHIR code fields are strings; anything else is treated as absent."""
    return v if isinstance(v, str) else None


def _merge_problems(problems: list[tuple[str, str]], rec: PatientRecord) -> tuple[tuple[str, str], ...]:
    """One line per resource: its date problems, and for a condition with no usable date at all, that."""
    by_ref: dict[str, list[str]] = {}
    for ref, msg in problems:
        by_ref.setdefault(ref, []).append(msg)
    for c in rec.conditions:
        if c.ref in by_ref and c.onset is None and c.recorded is None:
            by_ref[c.ref].append("no usable onset or recorded date")
    return tuple((ref, "; ".join(dict.fromkeys(msgs))) for ref, msgs in by_ref.items())


def _short(msg: str) -> str:
    return msg.splitlines()[0][:120] if msg else "parse error"


class _Builder:
    """Turns resolved resources into the record; one small method per resource type."""

    def __init__(self, alias: dict[str, str], source: str,
                 skip_observation: Callable[[Json], bool] | None = None) -> None:
        self.alias = alias
        self.source = source
        self.skip_observation = skip_observation
        self.patient_refs: set[str] = set()
        self.medication_index: dict[str, Json] = {}
        self.binaries: dict[str, Json] = {}
        self.current: str | None = None  # the resource being read, for date problems
        self.date_problems: list[tuple[str, str]] = []

    # ---- helpers -------------------------------------------------------------------------
    @property
    def ref_now(self) -> str:
        """The reference of the resource being read (set by `build` around each handler)."""
        assert self.current is not None
        return self.current

    def ref(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return None
        r = value.get("reference")
        if isinstance(r, dict):  # R5 CodeableReference: {"reference": Reference}
            return self.ref(r)
        if not isinstance(r, str) or not r:
            return None
        hit = self.alias.get(r)
        if hit is not None:
            return hit
        if "/" in r and not r.startswith("urn:"):
            tail = "/".join(r.rstrip("/").split("/")[-2:])
            return self.alias.get(tail, tail)
        return r

    def refs(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list):
            return ()
        out = []
        for v in value:
            r = self.ref(v)
            if r:
                out.append(r)
        return tuple(out)

    def check_subject(self, r: Json, key: str = "subject") -> None:
        subj = r.get(key)
        if subj is None and key == "subject":
            subj = r.get("patient")
        if type(subj) is dict:  # the common shape, resolved without the general path's checks
            raw = subj.get("reference")
            if type(raw) is str and self.alias.get(raw) in self.patient_refs:
                return
        ref = self.ref(subj)
        if ref is None:
            raise InputError(f"{self.ref_now} has no {key}: cannot tell whose record it is")
        if self.patient_refs and ref not in self.patient_refs:
            raise InputError(f"{self.ref_now} belongs to {ref}, not to the bundle's patient")

    @staticmethod
    def coded(value: Any) -> Coded:
        if not isinstance(value, dict):
            return Coded()
        text = value.get("text")
        raw = value.get("coding")
        if not raw:
            return Coded((), text if isinstance(text, str) else "")
        key = _coding_key(raw)
        codings = _CODING_LISTS.get(key) if key is not None else None
        if codings is None:
            codings = _codings(raw)
            if key is not None:
                if len(_CODING_LISTS) >= MAX_SHARED_CODINGS:
                    _CODING_LISTS.clear()
                _CODING_LISTS[key] = codings
        return Coded(codings, text if isinstance(text, str) else "")

    @classmethod
    def label(cls, value: Any) -> str:
        """`coded(value).label()`, without building the Coded when the text alone says it."""
        if not isinstance(value, dict):
            return ""
        raw = value.get("coding")
        if raw and not isinstance(raw, list):
            return cls.coded(value).label()  # e.g. a number: fails there as it always did
        text = value.get("text")
        if isinstance(text, str) and text:
            return text
        if not raw:
            return ""
        return cls.coded(value).label()

    @staticmethod
    def status_code(value: Any) -> str | None:
        """The status a CodeableConcept states. An EHR may send its own local coding beside (and before) the
        HL7 one; the HL7 coding is the status ("refuted" must not be lost behind a local code)."""
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            codes = [c for c in value.get("coding") or () if isinstance(c, dict) and isinstance(c.get("code"), str)]
            for c in codes:
                if isinstance(c.get("system"), str) and HL7_SYSTEM.match(c["system"]):
                    return c["code"]
            if codes:
                return codes[0]["code"]
            t = value.get("text")
            if isinstance(t, str):
                return t.lower()
        return None

    @staticmethod
    def texts(items: Any) -> str:
        out = []
        if isinstance(items, list):
            for it in items:
                if isinstance(it, dict):
                    t = it.get("text")
                    if isinstance(t, str) and t:
                        out.append(t)
                    else:
                        for c in it.get("coding") or ():
                            if isinstance(c, dict) and isinstance(c.get("display"), str):
                                out.append(c["display"])
                            elif isinstance(c, dict) and c.get("code") in SNOMED_LATERALITY \
                                    and str(c.get("system", "")).startswith(SNOMED_SYSTEM):
                                out.append(SNOMED_LATERALITY[c["code"]])  # a side sent as a bare qualifier code
        return "; ".join(out)

    def dt(self, r: Json, *keys: str) -> datetime | None:
        for k in keys:
            v = r.get(k)
            if v is not None:
                d = parse_fhir_str(v) if isinstance(v, str) else None  # parse_fhir_datetime, one call less
                if d is not None:
                    return d
                self._bad_date(v, k)
        return None

    def period(self, value: Any) -> tuple[datetime | None, datetime | None]:
        if not isinstance(value, dict):
            return None, None
        return self._date(value.get("start"), "start"), self._date(value.get("end"), "end")

    def _date(self, value: Any, field: str) -> datetime | None:
        """A date that is present but impossible (2026-02-30) is noted, never silently dropped."""
        if value is None:
            return None
        d = parse_fhir_datetime(value)
        if d is None:
            self._bad_date(value, field)
        return d

    def _bad_date(self, value: Any, field: str) -> None:
        if self.current is not None:
            self.date_problems.append((self.current, f"{field} {str(value)[:40]!r} is not a valid date"))

    @staticmethod
    def quantity(value: Any) -> tuple[float | None, str]:
        if not isinstance(value, dict):
            return None, ""
        v = value.get("value")
        unit = value.get("code") or value.get("unit") or ""
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or abs(v) > MAX_QUANTITY:
            return None, unit if isinstance(unit, str) else ""  # inf, nan, 1e308: unknown, never a number
        return float(v), unit if isinstance(unit, str) else ""

    @classmethod
    def dose(cls, value: Any) -> tuple[float | None, str]:
        """A drug dose: zero or negative (including -0) is no dose at all, so it reads as not recorded."""
        v, unit = cls.quantity(value)
        return (v if v is not None and v > 0 else None), unit

    # ---- build ---------------------------------------------------------------------------
    def build(self, resources: list[tuple[str, Json]]) -> PatientRecord:
        patients = []
        medications: dict[str, Json] = {}
        for ref, r in resources:  # one pass for both
            rtype = r["resourceType"]
            if rtype == "Patient":
                patients.append((ref, r))
            elif rtype == "Medication":
                medications[ref] = r
            elif rtype == "Binary":
                self.binaries[ref] = r
        if not patients:
            raise InputError("no Patient resource in the Bundle: cannot tell whose record it is")
        if len(patients) > 1:
            raise InputError(f"the Bundle holds {len(patients)} Patient resources; one patient per bundle")
        self.current = patients[0][0]
        patient = self.patient(patients[0][1])
        self.current = None
        self.patient_refs = {patient.ref, *(k for k, v in self.alias.items() if v == patient.ref)}
        rec = PatientRecord(patient=patient, source=self.source)
        self.medication_index = medications
        handlers: dict[str, Callable[[Json, PatientRecord], None]] = {
            rtype: getattr(self, method) for rtype, method in HANDLERS.items()}
        for ref, r in resources:
            h = handlers.get(r["resourceType"])
            if h is not None:
                self.current = ref
                try:
                    h(r, rec)
                except (TypeError, AttributeError, ValueError) as e:
                    raise InputError(f"{ref}: malformed resource ({type(e).__name__})") from None
        self.current = None
        rec.date_problems = _merge_problems(self.date_problems, rec)
        return rec

    def patient(self, r: Json) -> Patient:
        birth = parse_fhir_datetime(r.get("birthDate"))
        deceased = False
        deceased_at = None
        if r.get("deceasedBoolean") is True:
            deceased = True
        d = parse_fhir_datetime(r.get("deceasedDateTime"))
        if d is not None:
            deceased, deceased_at = True, d
        sex = r.get("gender")
        return Patient(ref=self.ref_now, birth_date=birth.date() if birth else None,
                       sex=sex if isinstance(sex, str) else None, deceased=deceased, deceased_at=deceased_at)

    def condition(self, r: Json, rec: PatientRecord) -> None:
        self.check_subject(r)
        cats = r.get("category") or []
        category = None
        for c in cats if isinstance(cats, list) else []:
            category = self.status_code(c) or category
        rec.conditions.append(Condition(
            ref=self.ref_now, code=self.coded(r.get("code")),
            clinical_status=self.status_code(r.get("clinicalStatus")),
            verification=self.status_code(r.get("verificationStatus")),
            category=category,
            onset=self.dt(r, "onsetDateTime") or self.period(r.get("onsetPeriod"))[0],
            recorded=self.dt(r, "recordedDate", "assertedDate"),
            abated=self.dt(r, "abatementDateTime") or self.period(r.get("abatementPeriod"))[0],
            body_site=self.texts(r.get("bodySite")),
            notes=self.texts(r.get("note")),
        ))

    def observation(self, r: Json, rec: PatientRecord) -> None:
        if r.get("status") in ("entered-in-error", "cancelled"):  # only a str equals these
            return
        self.check_subject(r)
        if self.skip_observation is not None and self.skip_observation(r):
            return
        value, unit, value_text = self._value(r)
        when = self.dt(r, "effectiveDateTime", "effectiveInstant", "issued") or self.period(
            r.get("effectivePeriod"))[0]
        site = self.texts([r.get("bodySite")])
        if when is None:
            self.date_problems.append((self.ref_now, "no effective date"))
        rec.observations.append(Observation(
            ref=self.ref_now, code=self.coded(r.get("code")), when=when, value=value, unit=unit,
            value_text=value_text, status=_str(r.get("status")), body_site=site,
            narrative=bool(value_text) and isinstance(r.get("valueString"), str)))
        low, low_unit = self._range_low(r)
        if low is not None:  # a range of readings: its lower end is a reading too (a "below" test may need it)
            rec.observations.append(Observation(
                ref=f"{self.ref_now}#range-low", code=self.coded(r.get("code")), when=when, value=low, unit=low_unit,
                status=_str(r.get("status")), body_site=site))
        for i, comp in enumerate(r.get("component") or ()):  # blood pressure, panels: each part its own value
            if isinstance(comp, dict):
                cv, cu, ct = self._value(comp)
                rec.observations.append(Observation(
                    ref=f"{self.ref_now}#component-{i}", code=self.coded(comp.get("code")), when=when, value=cv,
                    unit=cu, value_text=ct, status=_str(r.get("status")), body_site=site))

    def _value(self, r: Json) -> tuple[float | None, str, str]:
        """An Observation's (or component's) value: a number with its unit, or text (coded or free)."""
        if "valueQuantity" in r:
            value, unit = self.quantity(r["valueQuantity"])
            return value, unit, ""
        rng = r.get("valueRange")
        if isinstance(rng, dict):  # home readings "250-350 mg/dL": the upper end, as a note's range is read
            for end in ("high", "low"):
                value, unit = self.quantity(rng.get(end))
                if value is not None:
                    return value, unit, ""
        v = r.get("valueInteger")
        if isinstance(v, int) and not isinstance(v, bool):
            return float(v), "", ""
        v = r.get("valueDecimal")
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v), "", ""
        if isinstance(r.get("valueString"), str):
            return None, "", r["valueString"]
        if isinstance(r.get("valueCodeableConcept"), dict):
            return None, "", self.coded(r["valueCodeableConcept"]).all_text()
        if isinstance(r.get("valueBoolean"), bool):
            return None, "", "true" if r["valueBoolean"] else "false"
        return None, "", ""

    def _range_low(self, r: Json) -> tuple[float | None, str]:
        """The lower end of a valueRange that also has an upper end (read as the value itself)."""
        rng = r.get("valueRange")
        if not isinstance(rng, dict) or self.quantity(rng.get("high"))[0] is None:
            return None, ""
        return self.quantity(rng.get("low"))

    def reasons(self, r: Json, *ref_keys: str) -> tuple[tuple[str, ...], str]:
        """What a procedure, request or plan treated: referenced problems and coded reasons' text."""
        refs: tuple[str, ...] = ()
        for k in ref_keys:
            refs += self.refs(r.get(k))
        reason = r.get("reason")  # R5: CodeableReference list
        text = self.texts(r.get("reasonCode"))
        if isinstance(reason, list):
            refs += self.refs([x.get("reference") for x in reason if isinstance(x, dict)])
            more = self.texts([x.get("concept") for x in reason if isinstance(x, dict)])
            text = "; ".join(t for t in (text, more) if t)
        return refs, text

    def procedure(self, r: Json, rec: PatientRecord) -> None:
        self.check_subject(r)
        start, end = self.period(r.get("performedPeriod"))
        when = self.dt(r, "performedDateTime", "occurrenceDateTime")
        if when is not None:
            start = end = when
        reason_refs, reason_text = self.reasons(r, "reasonReference")
        rec.procedures.append(Procedure(
            ref=self.ref_now, code=self.coded(r.get("code")), status=_str(r.get("status")),
            start=start, end=end, body_site=self.texts(r.get("bodySite")),
            notes=self.texts(r.get("note")), part_of=self.refs(r.get("partOf")),
            category=self.label(r.get("category")), reason_refs=reason_refs, reason_text=reason_text))

    def _medication(self, r: Json) -> Coded:
        return self._medication_and_strength(r)[0]

    def _medication_and_strength(self, r: Json) -> tuple[Coded, tuple[float, str, str] | None]:
        """The medication as codes and text, and its strength (amount, unit, per unit) when one active
        ingredient's strength is given: R4 medicationCodeableConcept / medicationReference to a bundled,
        contained (#id) or relative Medication; R4B/R5 medication.concept / medication.reference."""
        if "medicationCodeableConcept" in r:
            return self.coded(r["medicationCodeableConcept"]), None
        ref = r.get("medicationReference")
        med = r.get("medication")
        if isinstance(med, dict):  # R5 CodeableReference
            if isinstance(med.get("concept"), dict):
                return self.coded(med["concept"]), None
            ref = med.get("reference")
        if not isinstance(ref, dict):
            return Coded(), None
        target = self._resolve_medication(r, ref)
        display = ref.get("display") if isinstance(ref.get("display"), str) else ""
        if target is None:
            return Coded((), display), None
        return self._medication_resource(target, display)

    def _resolve_medication(self, r: Json, ref: Json) -> Json | None:
        return self._referenced(r, ref.get("reference"), "Medication", self.medication_index)

    def _referenced(self, r: Json, raw: Any, rtype: str, index: dict[str, Json]) -> Json | None:
        """The resource of type `rtype` a reference names: contained in `r` (`#id`) or in the bundle (`index`)."""
        if not isinstance(raw, str) or not raw:
            return None
        if raw.startswith("#"):
            for c in r.get("contained") or ():
                if isinstance(c, dict) and c.get("resourceType") == rtype and c.get("id") == raw[1:]:
                    return c
            return None
        canon = self.ref({"reference": raw})
        return index.get(canon) if canon else None

    def _medication_resource(self, m: Json, display: str) -> tuple[Coded, tuple[float, str, str] | None]:
        code = self.coded(m.get("code"))
        codings = list(code.codings)
        texts = [code.text or display]
        strengths = []
        for ing in m.get("ingredient") or ():
            if not isinstance(ing, dict) or ing.get("isActive") is False:
                continue
            item = ing.get("itemCodeableConcept")
            if item is None and isinstance(ing.get("item"), dict):  # R5 CodeableReference
                item = ing["item"].get("concept")
            if isinstance(item, dict):
                c = self.coded(item)
                codings.extend(c.codings)
                texts.append(c.label())
            st = self._strength(ing.get("strength") or ing.get("strengthRatio"))
            if st is not None:
                strengths.append(st)
        text = " + ".join(t for t in texts if t)
        return Coded(tuple(codings), text), strengths[0] if len(strengths) == 1 else None

    def _strength(self, ratio: Any) -> tuple[float, str, str] | None:
        """A strength ratio as (amount per one unit, amount unit, per unit), e.g. (40, mg, mL)."""
        if not isinstance(ratio, dict):
            return None
        num, nunit = self.quantity(ratio.get("numerator"))
        den, dunit = self.quantity(ratio.get("denominator"))
        if num is None or not nunit:
            return None
        den = den if den else 1.0
        return num / den, nunit, dunit or "1"

    @staticmethod
    def _dose_by_strength(value: float | None, unit: str,
                          strength: tuple[float, str, str] | None) -> tuple[float | None, str]:
        """A dose given as a volume (1 mL) becomes an amount (40 mg) through the product's strength."""
        if value is None or strength is None:
            return value, unit
        per, amount_unit, per_unit = strength
        if unit.strip().lower() == per_unit.strip().lower() and unit.strip().lower() in ("ml", "l", "1"):
            return value * per, amount_unit
        return value, unit

    def administration(self, r: Json, rec: PatientRecord) -> None:
        if _str(r.get("status")) in ("entered-in-error", "not-done"):
            return
        self.check_subject(r)
        dosage = r.get("dosage") if isinstance(r.get("dosage"), dict) else {}
        medication, strength = self._medication_and_strength(r)
        value, unit = self._dose_by_strength(*self.dose(dosage.get("dose")), strength)
        # R5 spells the element occurence[x]
        when = self.dt(r, "effectiveDateTime", "occurenceDateTime", "occurrenceDateTime") or self.period(
            r.get("effectivePeriod"))[0]
        rec.administrations.append(MedicationAdministration(
            ref=self.ref_now, medication=medication, when=when, dose_value=value, dose_unit=unit,
            part_of=self.refs(r.get("partOf")), site=self.label(dosage.get("site")),
            route=self.label(dosage.get("route")), status=_str(r.get("status"))))

    def medication_statement(self, r: Json, rec: PatientRecord) -> None:
        self.check_subject(r)
        start, end = self.period(r.get("effectivePeriod"))
        if start is None:
            start = self.dt(r, "effectiveDateTime", "dateAsserted")
        dose_text = ""
        dosage = r.get("dosage")
        if isinstance(dosage, list) and dosage and isinstance(dosage[0], dict):
            dose_text = dosage[0].get("text") if isinstance(dosage[0].get("text"), str) else ""
        rec.medications.append(MedicationUse(
            ref=self.ref_now, medication=self._medication(r), status=_str(r.get("status")), intent="statement",
            start=start, end=end, dose_text=dose_text))

    def medication_request(self, r: Json, rec: PatientRecord) -> None:
        self.check_subject(r)
        status = _str(r.get("status"))
        start = self.dt(r, "authoredOn")
        end = None
        disp = r.get("dispenseRequest")
        if isinstance(disp, dict):
            vs, ve = self.period(disp.get("validityPeriod"))
            start = start or vs
            end = ve
        dose_text, value, unit, site = "", None, "", ""
        instr = r.get("dosageInstruction")
        if isinstance(instr, list) and instr and isinstance(instr[0], dict):
            d0 = instr[0]
            dose_text = d0.get("text") if isinstance(d0.get("text"), str) else ""
            site = self.label(d0.get("site"))
            dr = d0.get("doseAndRate")
            if isinstance(dr, list) and dr and isinstance(dr[0], dict):
                value, unit = self.dose(dr[0].get("doseQuantity"))
        medication, strength = self._medication_and_strength(r)
        value, unit = self._dose_by_strength(value, unit, strength)
        use = MedicationUse(
            ref=self.ref_now, medication=medication, status=status, intent=_str(r.get("intent")),
            start=start, end=end, dose_text=dose_text, dose_value=value, dose_unit=unit, site=site,
            reason_refs=self.refs(r.get("reasonReference")))
        if status == "draft":
            rec.draft_medications.append(use)
        else:
            rec.medications.append(use)

    def allergy(self, r: Json, rec: PatientRecord) -> None:
        self.check_subject(r, "patient")
        reaction = []
        severe = False
        for rx in r.get("reaction") or []:
            if isinstance(rx, dict):
                reaction.append(self.texts(rx.get("manifestation")))
                severe = severe or rx.get("severity") == "severe"
        kind = self.status_code(r.get("type"))  # R4 a code, R5 a CodeableConcept
        criticality = _str(r.get("criticality"))
        rec.allergies.append(Allergy(
            ref=self.ref_now, code=self.coded(r.get("code")),
            clinical_status=self.status_code(r.get("clinicalStatus")),
            verification=self.status_code(r.get("verificationStatus")),
            recorded=self.dt(r, "recordedDate", "onsetDateTime"), reaction="; ".join(x for x in reaction if x),
            kind=kind.lower() if kind else None, criticality="high" if severe else criticality))

    def care_plan(self, r: Json, rec: PatientRecord) -> None:
        self.check_subject(r)
        pstart, pend = self.period(r.get("period"))
        cat = "; ".join(self.label(c) for c in r.get("category") or [] if isinstance(c, dict))
        plan_refs, _ = self.reasons(r, "addresses")
        plan_text = self.texts([a.get("concept") for a in r.get("addresses") or [] if isinstance(a, dict)])
        for a in r.get("activity") or []:
            if not isinstance(a, dict):
                continue
            d = a.get("detail")
            if not isinstance(d, dict):
                continue
            s, e = self.period(d.get("scheduledPeriod"))
            refs, text = self.reasons(d, "reasonReference")
            rec.care_plan_activities.append(CarePlanActivity(
                ref=self.ref_now, code=self.coded(d.get("code")), status=_str(d.get("status")),
                plan_status=_str(r.get("status")), start=s or pstart, end=e or pend, plan_category=cat,
                reason_refs=plan_refs + refs, reason_text="; ".join(t for t in (plan_text, text) if t)))

    def service_request(self, r: Json, rec: PatientRecord) -> None:
        self.check_subject(r)
        occ = self.dt(r, "occurrenceDateTime") or self.period(r.get("occurrencePeriod"))[0]
        reason_refs, reason_text = self.reasons(r, "reasonReference")
        rec.service_requests.append(ServiceRequest(
            ref=self.ref_now, code=self.coded(r.get("code")), status=_str(r.get("status")), intent=_str(r.get("intent")),
            occurrence=occ, authored=self.dt(r, "authoredOn"), body_site=self.texts(r.get("bodySite")),
            notes=self.texts(r.get("note")), reason_refs=reason_refs, reason_text=reason_text))

    def document(self, r: Json, rec: PatientRecord) -> None:
        """A note. Several `content` entries are renditions of one document (FHIR: each a different format):
        one is read, plain text before HTML before RTF, never the same note twice. An attachment may hold its
        bytes in `data` or point (`url`) at a Binary in the bundle or contained in the DocumentReference."""
        if _str(r.get("status")) == "entered-in-error":
            return
        self.check_subject(r)
        renditions: dict[int, list[tuple[str, str]]] = {}
        for c in r.get("content") or []:
            att = c.get("attachment") if isinstance(c, dict) else None
            if not isinstance(att, dict):
                continue
            ctype = _str(att.get("contentType")) or ""
            data = att.get("data")
            if not (isinstance(data, str) and data):
                binary = self._binary(r, att.get("url"))
                if binary is None:
                    continue
                data, ctype = binary.get("data"), _str(binary.get("contentType")) or ctype
                if not (isinstance(data, str) and data):
                    continue
            try:
                raw = base64.b64decode(data, validate=False)
            except (binascii.Error, ValueError):
                raise InputError(f"{self.ref_now}: attachment data is not valid base64") from None
            rank = _rendition_rank(ctype)
            if rank is not None:  # a PDF or an image is not text this reader can read
                renditions.setdefault(rank, []).append((_decode(raw, ctype), ctype))
        texts, ctype = [], ""
        if renditions:
            best = renditions[min(renditions)]
            texts, ctype = [t for t, _ in best], best[0][1]
        title = self.label(r.get("type"))
        rec.documents.append(Document(ref=self.ref_now, text="\n".join(texts), when=self.dt(r, "date"),
                                      title=title, content_type=ctype))

    def _binary(self, r: Json, url: Any) -> Json | None:
        """The Binary an attachment's `url` names: contained (`#id`) or in the bundle (`Binary/id`, full URL)."""
        return self._referenced(r, url, "Binary", self.binaries)


_RENDITION_ORDER = ("text/plain", "text/html", "application/xhtml", "text/rtf", "application/rtf")


def _rendition_rank(content_type: str) -> int | None:
    """Which rendition of a note to read first (lowest); None for a format that is not text. No declared type
    reads as plain text (markup is still recognised by its look); another text type after the known ones."""
    ct = content_type.lower().strip()
    if not ct:
        return 0
    rank = next((i for i, t in enumerate(_RENDITION_ORDER) if ct.startswith(t)), None)
    if rank is None and (ct.startswith("text/") or "xml" in ct):
        rank = len(_RENDITION_ORDER)
    return rank


def _decode(raw: bytes, content_type: str) -> str:
    """Bytes in the charset the content type declares (UTF-8 when it declares none or an unknown one)."""
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        k, _, v = part.partition("=")
        if k.strip().lower() == "charset" and v.strip():
            charset = v.strip().strip('"')
    try:
        return raw.decode(charset, errors="replace")
    except LookupError:
        return raw.decode("utf-8", errors="replace")


def read_coded(value: Any) -> Coded:
    """A CodeableConcept as the reader builds it (for callers deciding what to read)."""
    return _Builder.coded(value)
