"""A clinical view of one record as of a date: injections, therapy, diagnoses, labs and meds,
each mapped to knowledge-base concepts. Nothing dated after the as-of day is visible."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Container
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

from injectwise.core.dates import end_of_day, fmt_date
from injectwise.core.errors import InputError
from injectwise.core.lazy import cached
from injectwise.core.record import (
    Coded,
    Coding,
    Condition,
    MedicationUse,
    Observation,
    PatientRecord,
    Procedure,
)
from injectwise.engine.result import Evidence
from injectwise.knowledge.model import Drug, Knowledge, Target
from injectwise.knowledge.terminology import CODED_CACHE_TEXT, CONCEPT_SYSTEM, Terminology, system_kind

GUIDANCE_CPT = {"76942": "ultrasound", "77002": "fluoroscopy", "77003": "fluoroscopy", "77012": "ct",
                "77021": "mri"}
CPT_WITH_ULTRASOUND = {"20604", "20606", "20611"}
CPT_WITH_IMAGING = {"27096": "fluoroscopy", "G0260": "fluoroscopy", "62321": "fluoroscopy", "62323": "fluoroscopy",
                    "64479": "fluoroscopy", "64480": "fluoroscopy", "64483": "fluoroscopy", "64484": "fluoroscopy",
                    "27093": "fluoroscopy", "27095": "fluoroscopy", "64490": "fluoroscopy", "64491": "fluoroscopy",
                    "64492": "fluoroscopy", "64493": "fluoroscopy", "64494": "fluoroscopy", "64495": "fluoroscopy"}
CPT_WITHOUT_ULTRASOUND = {"20600", "20605", "20610", "20550", "20551", "20552", "20553", "62320", "62322"}
GUIDANCE_TEXT = (
    ("landmark", re.compile(r"landmark|\bblind\b|palpation|no imaging|without (imaging|guidance|ultrasound)|unguided",
                            re.I)),
    ("ultrasound", re.compile(r"ultrasound|ultrason|sonograph|\bus[- ]guid|under us\b|\busg\b|\bu/s[- ]guid", re.I)),
    ("fluoroscopy", re.compile(r"fluoro|x-?ray guid|c-arm|image intensifier", re.I)),
    ("ct", re.compile(r"\bct[- ]guided|computed tomograph", re.I)),
)
INJECTION_TEXT = re.compile(r"inject|\bblock(ade)?\b|infiltrat|arthrocentesis|aspiration and injection", re.I)
SIDE_WORDS = (("bilateral", re.compile(r"\bbilateral|\bbilat\b|\bb/l\b|\bboth (hips|knees|sides|shoulders)", re.I)),
              ("right", re.compile(r"\bright\b|\brt\b", re.I)), ("left", re.compile(r"\bleft\b|\blt\b", re.I)))
SIDE_ABBR = (("right", re.compile(r"\bR\b")), ("left", re.compile(r"\bL\b")))
GUIDED = ("ultrasound", "fluoroscopy", "ct", "mri")
CURRENT_STATUSES = ("active", "recurrence", "relapse")  # clinical statuses that make a problem current
ML_UNITS = ("mL", "ml", "ML", "millilitre", "milliliter", "millilitres", "milliliters", "cc")
PERCENT_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*%")
MG_PER_ML_STRENGTH = re.compile(r"(\d+(?:\.\d+)?)\s*mg\s*/\s*(\d+(?:\.\d+)?)?\s*(?:ml|cc)\b", re.I)


def _mg_per_ml(text: str) -> float | None:
    """Concentration named in a product or dose text: '1%' is 10 mg/mL; '40 mg/mL' as is (short texts,
    which recur, memoised)."""
    return _mg_per_ml_memo(text) if len(text) <= 1024 else _mg_per_ml_of(text)


@lru_cache(maxsize=4096)
def _mg_per_ml_memo(text: str) -> float | None:
    return _mg_per_ml_of(text)


def _mg_per_ml_of(text: str) -> float | None:
    m = MG_PER_ML_STRENGTH.search(text)
    if m:
        return float(m.group(1)) / float(m.group(2) or 1)
    pct = percent_strength(text)
    return pct * 10 if pct is not None else None


# an injectable solution's percent strength is small (lidocaine 0.5-2%, up to the 10% that must still be caught as
# an overdose; bupivacaine 0.25-0.75%); "60% relief" or "50% better" beside a dose is an outcome, not a strength
MAX_PERCENT_STRENGTH = 10.0
_PERCENT_OUTCOME = re.compile(r"\s*(?:relief|better|improve|reduction|response|decrease|less|pain)", re.I)


def percent_strength(text: str) -> float | None:
    """The first percent in the text that can be a solution's strength (at most MAX_PERCENT_STRENGTH, not an outcome)."""
    for pct in PERCENT_STRENGTH.finditer(text):
        value = float(pct.group(1))
        if value <= MAX_PERCENT_STRENGTH and not _PERCENT_OUTCOME.match(text, pct.end()):
            return value
    return None


@lru_cache(maxsize=4096)
def side_of(text: str) -> str | None:
    """Laterality named in a text; memoised because the same site texts recur on every call."""
    for side, pat in SIDE_WORDS:
        if pat.search(text):
            return side
    hits = [side for side, pat in SIDE_ABBR if pat.search(text)]
    return hits[0] if len(hits) == 1 else None


MEMO_TEXT = 1024  # texts up to this length are memoised by `says` (record texts recur; notes are longer)


def says(pattern: re.Pattern[str], text: str) -> bool:
    """Whether the pattern occurs in the text. Record texts (code displays, procedure names) recur across
    evaluations and case-blind alternations are slow to search, so short texts' answers are memoised."""
    if len(text) > MEMO_TEXT:
        return pattern.search(text) is not None
    return _says(pattern, text)


@lru_cache(maxsize=8192)
def _says(pattern: re.Pattern[str], text: str) -> bool:
    return pattern.search(text) is not None


def sides_compatible(a: str | None, b: str | None) -> bool:
    """Unknown or bilateral sides are compatible with anything: safety errs towards a match."""
    return a is None or b is None or a == b or "bilateral" in (a, b)


@dataclass(slots=True)
class Agent:
    drug: Drug | None
    label: str
    dose_mg: float | None
    tae_mg: float | None
    ref: str | None

    @property
    def kind(self) -> str:
        return self.drug.kind if self.drug else "unknown"

    def describe(self) -> str:
        dose = f" {self.dose_mg:g} mg" if self.dose_mg is not None else " (dose not recorded)"
        return f"{self.label}{dose}"


@dataclass(slots=True)
class Injection:
    ref: str
    when: datetime | None
    target: Target | None
    side: str | None
    guidance: str
    guidance_basis: str
    steroid: Agent | None = None
    anesthetics: list[Agent] = field(default_factory=list)
    others: list[Agent] = field(default_factory=list)
    text: str = ""
    notes: str = ""
    refs: list[str] = field(default_factory=list)
    source: str = "record"
    date_estimated: bool = False  # its date is a placement in a stated period, not a recorded date
    date_unknown: bool = False  # no date at all (a note's "outside injection, date unknown"): placed at the note

    @property
    def guided(self) -> bool:
        return self.guidance in GUIDED

    @property
    def tae(self) -> float:
        return self.steroid.tae_mg or 0.0 if self.steroid else 0.0

    @property
    def region(self) -> str | None:
        return self.target.region if self.target else None

    def same_site(self, other: Injection) -> bool:
        return (self.target is not None and other.target is not None and self.target.id == other.target.id
                and sides_compatible(self.side, other.side))

    def describe(self) -> str:
        tgt = self.target.label if self.target else "unknown target"
        side = f"{self.side} " if self.side else ""
        parts = [f"{side}{tgt}", f"{self.guidance}-guided" if self.guided else self.guidance]
        if self.steroid:
            parts.append(self.steroid.describe())
        parts.extend(a.describe() for a in self.anesthetics)
        when = fmt_date(self.when)
        return f"{self.ref} ({when}): " + ", ".join(parts) if when else f"{self.ref}: " + ", ".join(parts)


@dataclass(slots=True)
class Therapy:
    ref: str
    label: str
    start: datetime | None
    end: datetime | None
    status: str
    regions: frozenset[str]


@dataclass(slots=True)
class PainScore:
    ref: str
    when: datetime
    value: float
    side: str | None = None  # the side the score is about ("left hip pain 2/10"), when the record says


@dataclass(slots=True)
class Measurement:
    ref: str
    label: str
    when: datetime | None
    value: float
    unit: str
    note: str = ""


def observation_code_concepts(term: Terminology, code: Coded) -> frozenset[str]:
    """What an observation is about: its coded concepts, else what its code's text names. The only way
    the engine looks at observations, so one mapping to no concept is one no rule can use."""
    return term.code_concepts(code)


class RecordCache:
    """What each resource of one record maps to in one knowledge base (concepts, regions, sides), which
    does not depend on the as-of day. Views of the same record on several days (a screening's measures)
    share one, so each mapping is computed once per patient instead of once per view."""

    __slots__ = ("by_concept", "concepts", "injections", "kb", "record", "regions", "sides")

    def __init__(self, record: PatientRecord, kb: Knowledge) -> None:
        self.record = record
        self.kb = kb
        self.concepts: dict[str, frozenset[str]] = {}  # keyed by resource ref
        self.regions: dict[str, frozenset[str]] = {}
        self.sides: dict[str, str | None] = {}
        self.by_concept: dict[str, list[Observation]] | None = None  # all observations (shared caches only)
        # the injections of the latest day viewed (shared caches only): an earlier day's are those up to it
        self.injections: tuple[datetime, list[Injection]] | None = None

    @classmethod
    def shared(cls, record: PatientRecord, kb: Knowledge) -> RecordCache | None:
        """A cache views may share, or None when two resources have the same reference: which of them is
        mapped first (and so what the reference maps to) would then depend on the day being viewed."""
        return cls(record, kb) if _unique_refs(record) else None


def _first(row: tuple[int, Condition, frozenset[str]]) -> int:
    return row[0]


def _unique_refs(record: PatientRecord) -> bool:
    """No two resources the per-reference mappings key on have the same reference."""
    refs = [x.ref for xs in (record.observations, record.conditions, record.procedures, record.medications,
                             record.draft_medications, record.service_requests, record.allergies,
                             record.administrations) for x in xs]
    return len(refs) == len(set(refs))


class ClinicalView:
    """Everything the rules look at, derived once per evaluation. `cache` (RecordCache.shared) lets
    views of the same record on other days reuse the per-resource mappings."""

    def __init__(self, record: PatientRecord, kb: Knowledge, as_of: date, cache: RecordCache | None = None) -> None:
        self.record = record
        self.kb = kb
        self.as_of = as_of
        self.now = end_of_day(as_of)
        self.term = kb.terminology
        if cache is not None and (cache.record is not record or cache.kb is not kb):
            cache = None
        self.shared_cache = cache
        own = cache or RecordCache(record, kb)
        self._concepts = own.concepts  # per-resource mappings keyed by resource ref
        self._regions = own.regions
        self._sides = own.sides
        self._meas: dict[str, list[Measurement]] = {}
        self._with: dict[frozenset[str], list[tuple[Condition, frozenset[str]]]] = {}
        self._cond_ev: dict[int, Evidence] = {}  # by id() of a condition of this view's record
        self._by_concept: dict[str, list[Observation]] | None = None

    # ---- time -----------------------------------------------------------------------------
    def days_before_now(self, when: datetime) -> float:
        """Whole calendar days from `when` to the as-of day: "within 30 days" includes day 30 whatever the hour."""
        return float((self.as_of - when.date()).days)

    # ---- patient --------------------------------------------------------------------------
    @cached
    def age(self) -> int | None:
        b = self.record.patient.birth_date
        if b is None:
            return None
        a = self.as_of
        return a.year - b.year - ((a.month, a.day) < (b.month, b.day))

    # ---- concepts -------------------------------------------------------------------------
    def concepts(self, ref: str, coded: Coded, extra: str = "") -> frozenset[str]:
        hit = self._concepts.get(ref)
        if hit is None:
            hit = self.term.concepts_of(coded, extra)
            self._concepts[ref] = hit
        return hit

    def regions_of_text(self, text: str) -> frozenset[str]:
        return _regions_of_text(self.kb, self.term.clip(text))

    @cached
    def conditions(self) -> list[Condition]:
        """Conditions known by the as-of day: recorded (or, failing that, with onset) on or before it."""
        out = []
        for c in self.record.conditions:
            known = c.recorded or c.onset
            if known is None or known <= self.now:
                out.append(c)
        return out

    def condition_concepts(self, c: Condition) -> frozenset[str]:
        hit = self._concepts.get(c.ref)
        if hit is None:
            # a note's item names its concept; its body site is a side and region id ("right lumbar-spine"), which
            # places it but is no diagnosis (a "lumbar MRI" is not a lumbar spine disorder)
            site = "" if c.code.codings and all(x.system == CONCEPT_SYSTEM for x in c.code.codings) else c.body_site
            hit = self.concepts(c.ref, c.code, " | ".join(x for x in (site, c.notes) if x))
        return hit

    def conditions_with(self, concepts: frozenset[str]) -> list[tuple[Condition, frozenset[str]]]:
        """The visible conditions mapped to any of these concepts, in record order, each with its concepts:
        what a loop over `conditions` keeping `concepts & condition_concepts(c)` sees, through an index
        built once per view (most rules ask about concepts only a few conditions have)."""
        hit = self._with.get(concepts)
        if hit is None:
            by_concept = self._condition_index
            lists = [rows for cid in concepts if (rows := by_concept.get(cid))]
            if not lists:
                hit = []
            elif len(lists) == 1:
                hit = [(c, cc) for _, c, cc in lists[0]]
            else:  # in record order, each condition once
                hit = [(c, cc) for _, c, cc in sorted({row[0]: row for rows in lists for row in rows}.values(),
                                                        key=_first)]
            self._with[concepts] = hit
        return hit

    def condition_evidence(self, c: Condition) -> Evidence:
        """The usual evidence of a condition (label, clinical status, date): built once per view, as the
        same condition is cited by many rules (Evidence is immutable)."""
        e = self._cond_ev.get(id(c))
        if e is None:
            e = self._cond_ev[id(c)] = Evidence(c.ref, c.code.label(), c.clinical_status or None, c.when)
        return e

    @cached
    def _condition_index(self) -> dict[str, list[tuple[int, Condition, frozenset[str]]]]:
        """Concept -> (position, condition, its concepts) of the visible conditions, mapped in record order when
        a rule first asks (where the plain loop over `conditions` mapped them: a reference shared by two
        resources maps the same way)."""
        by_concept: dict[str, list[tuple[int, Condition, frozenset[str]]]] = {}
        for i, c in enumerate(self.conditions):
            cc = self.condition_concepts(c)
            row = (i, c, cc)
            for cid in cc:
                rows = by_concept.get(cid)
                if rows is None:
                    by_concept[cid] = [row]
                else:
                    rows.append(row)
        return by_concept

    def condition_regions(self, c: Condition) -> frozenset[str]:
        hit = self._regions.get(c.ref)
        if hit is None:
            hit = self._regions[c.ref] = self._condition_regions(c)
        return hit

    def _condition_regions(self, c: Condition) -> frozenset[str]:
        regs = set(self.regions_of_text(c.code.all_text() + " " + c.body_site))
        for cid in self.condition_concepts(c):
            r = self.term.concepts[cid].region
            if r:
                regs.add(r)
        for cd in c.code.codings:
            if system_kind(cd.system) == "icd10":
                region, _ = self.kb.icd10_sites.locate(cd.code)
                if region:
                    regs.add(region)
        return frozenset(regs)

    def condition_side(self, c: Condition) -> str | None:
        if c.ref not in self._sides:
            self._sides[c.ref] = self._condition_side(c)
        return self._sides[c.ref]

    def _condition_side(self, c: Condition) -> str | None:
        # the side of the condition's own mentions ("avascular necrosis of the LEFT hip; right hip OA"
        # is left for the necrosis); only a text naming none of its concepts falls back to any side word
        text = self.term.clip(" | ".join(x for x in (c.code.all_text(), c.body_site) if x))
        mentioned, s = self.term.mention_side(text, self.condition_concepts(c))
        if not mentioned:
            s = side_of(text)
        if s:
            return s
        for cd in c.code.codings:
            if system_kind(cd.system) == "icd10":
                _, side = self.kb.icd10_sites.locate(cd.code)
                if side:
                    return side
        return None

    def condition_active(self, c: Condition) -> bool:
        if not c.present:
            return False
        if c.abated is not None and c.abated > self.now:
            return True  # resolved only after the as-of day: still current on it
        if c.clinical_status in ("inactive", "resolved", "remission"):
            return False
        return not (c.abated is not None and c.abated <= self.now)

    # ---- observations ---------------------------------------------------------------------
    def observation_concepts(self, o: Observation) -> frozenset[str]:
        hit = self._concepts.get(o.ref)
        if hit is None:
            hit = self._concepts[o.ref] = observation_code_concepts(self.term, o.code)
        return hit

    @cached
    def observations(self) -> list[Observation]:
        """Observations up to the as-of day. Undated ones (missing or impossible date) stay visible: a
        value whose timing is unknown may be current, and the result lists them as unknowns."""
        return [o for o in self.record.observations if o.when is None or o.when <= self.now]

    @cached
    def bad_dates(self) -> frozenset[str]:
        """References of resources whose dates are missing or impossible."""
        return frozenset(ref for ref, _ in self.record.date_problems)

    def _observations_by_concept(self) -> dict[str, list[Observation]]:
        """The visible observations of each concept, in record order: one pass instead of one per concept."""
        idx = self._by_concept
        if idx is None:
            shared = self.shared_cache
            if shared is not None and shared.by_concept is not None:
                idx = shared.by_concept
            else:  # a shared cache indexes every observation once, the view keeps its visible ones
                idx = {}
                for o in self.record.observations if shared is not None else self.observations:
                    for cid in self.observation_concepts(o):
                        bucket = idx.get(cid)
                        if bucket is None:
                            idx[cid] = [o]
                        else:
                            bucket.append(o)
                if shared is not None:
                    shared.by_concept = idx
            if shared is not None:
                now = self.now
                idx = {cid: [o for o in obs if o.when is None or o.when <= now] for cid, obs in idx.items()}
            self._by_concept = idx
        return idx

    def observed_concepts(self) -> Container[str]:
        """The concepts some visible observation maps to."""
        return self._observations_by_concept()

    def measurements(self, concept: str) -> list[Measurement]:
        """Values of one concept in its canonical unit, oldest first. Unknown units are input errors."""
        cache = self._meas
        hit = cache.get(concept)
        if hit is not None:
            return hit
        c = self.term.concepts[concept]
        out = []
        for o in self._observations_by_concept().get(concept, ()):
            value = o.value
            note = ""
            if value is None and concept == "kl-grade":
                value = _grade(o.value_text)
            if value is None:
                continue
            unit = o.unit
            if c.unit and unit and unit != c.unit:
                table = self.kb.units.get(c.unit, {})
                conv = table.get(unit) or table.get(unit.strip())
                if conv is None:
                    raise InputError(f"{o.ref}: unit {unit!r} cannot be used for {concept} (expected {c.unit})")
                value = _as_precise_as(value * conv[0] + conv[1], value)
                note = f" (converted from {o.value:g} {unit})"
            elif c.unit and not unit and concept not in ("pain-nrs", "kl-grade"):
                note = f" (unit not recorded; read as {c.unit})"
            if o.when is None:
                note += " (date unknown)"
            out.append(Measurement(o.ref, o.code.label(), o.when, float(value), c.unit or unit, note))
        out.sort(key=lambda m: m.when or datetime.min)
        cache[concept] = out
        return out

    def latest(self, concept: str, within_days: float | None = None) -> Measurement | None:
        ms = self.measurements(concept)
        if not ms:
            return None
        m = ms[-1]
        if within_days is not None and m.when is not None and self.days_before_now(m.when) > within_days:
            return None
        return m

    @cached
    def pain(self) -> list[PainScore]:
        out = []
        sites = {o.ref: o.body_site for o in self.record.observations if o.body_site}
        for m in self.measurements("pain-nrs"):
            if not 0 <= m.value <= 10:
                raise InputError(f"{m.ref}: pain score {m.value:g} is outside the 0-10 scale")
            if m.when is None:
                continue  # a pain score with no date cannot be placed before or after an injection
            site = sites.get(m.ref)
            out.append(PainScore(m.ref, m.when, m.value, side_of(site) if site else None))
        return out

    def pain_for(self, side: str | None) -> tuple[list[PainScore], list[datetime]]:
        """Pain scores (and their times) that may be about an injection on `side`: a score said of the other
        side belongs to the other side's injection (bilateral injections are judged per side)."""
        pain = self.pain
        if side not in ("left", "right") or not any(s.side in ("left", "right") for s in pain):
            return pain, self.pain_times
        kept = [s for s in pain if sides_compatible(side, s.side)]
        return kept, [s.when for s in kept]

    @cached
    def pain_times(self) -> list[datetime]:
        """When each of `pain` was scored (the same order: oldest first), for bisecting windows."""
        return [s.when for s in self.pain]

    def next_steroid_injection(self, after: datetime, ref: str) -> datetime | None:
        """When the first steroid injection later than `after` (other than `ref`) was given, if any."""
        injs = self.steroid_injections
        times = self._steroid_times
        start = bisect_right(times, after) if times is not None else 0
        for i in injs[start:]:
            if i.when is not None and i.when > after and i.ref != ref:
                return i.when
        return None

    @cached
    def _steroid_times(self) -> list[datetime] | None:
        """When each steroid injection was given (in order), or None if one has no date."""
        times: list[datetime] = []
        for i in self.steroid_injections:
            if i.when is None:
                return None
            times.append(i.when)
        return times

    # ---- medications ----------------------------------------------------------------------
    def med_concepts(self, m: MedicationUse) -> frozenset[str]:
        return self.concepts(m.ref, m.medication, m.dose_text)

    def current_medications(self, concept: str, recent_days: float | None = None) -> list[MedicationUse]:
        out = []
        for m in self.record.medications:
            if concept not in self.med_concepts(m):
                continue
            if m.start is not None and m.start > self.now:
                continue
            ended_later = m.status in ("stopped", "completed") and m.end is not None and m.end > self.now
            if not ended_later and m.status in ("stopped", "completed", "entered-in-error", "cancelled", "not-taken",
                                                "revoked", "intended", "draft", "unknown"):
                continue  # a course stopped only after the as-of day was still being taken on it
            if m.end is not None and m.end < self.now:
                continue
            if recent_days is not None and (m.start is None or self.days_before_now(m.start) > recent_days):
                continue
            out.append(m)
        return out

    # ---- drugs ----------------------------------------------------------------------------
    def identify_drug(self, coded: Coded) -> Drug | None:
        if len(coded.text) > CODED_CACHE_TEXT:  # long texts are not memoised (bounded memory)
            return _drug_of_coded.__wrapped__(self.kb, coded.codings, coded.text)
        return _drug_of_coded(self.kb, coded.codings, coded.text)

    def agent(self, coded: Coded, value: float | None, unit: str, ref: str | None, text: str = "") -> Agent:
        drug = self.identify_drug(coded)
        mg = None
        if value is not None:
            u = (unit or "mg").strip()
            per_ml = _mg_per_ml(f"{coded.all_text()} {text}") if u in ML_UNITS else None
            if u in ("mg", "MG", "milligram", "milligrams"):
                mg = value
            elif u in ("g", "G"):
                mg = value * 1000
            elif u in ("ug", "mcg", "µg"):
                mg = value / 1000
            elif per_ml is not None:
                mg = value * per_ml  # e.g. 4 mL of 1% lidocaine = 40 mg
            else:
                raise InputError(f"{ref or 'medication'}: dose unit {unit!r} cannot be converted to mg")
            if mg < 0:
                raise InputError(f"{ref or 'medication'}: negative dose {value:g}")
        tae = None
        if drug is not None and drug.kind == "corticosteroid" and mg is not None and drug.equivalent_mg:
            tae = mg * self.kb.equivalence_reference_mg / drug.equivalent_mg
        label = drug.label if drug else (coded.label() or "unknown agent")
        return Agent(drug, label, mg, tae, ref)

    # ---- targets and guidance -------------------------------------------------------------
    def identify_target(self, texts: list[str], cpts: set[str]) -> Target | None:
        """The first text naming a target wins (knowledge match order); else an unambiguous CPT code."""
        for text in texts:
            if text:
                t = _target_of_text(self.kb, self.term.clip(text))
                if t is not None:
                    return t
        candidates = [t for t in self.kb.targets.values() if cpts & t.cpt]
        return candidates[0] if len(candidates) == 1 else None

    @staticmethod
    def guidance_from_text(text: str) -> str | None:
        return _guidance_of_text(text)

    def guidance_of(self, cpts: set[str], text: str, linked: list[Procedure]) -> tuple[str, str]:
        for p in linked:
            for c in p.code.codings:
                if c.code in GUIDANCE_CPT:
                    return GUIDANCE_CPT[c.code], f"{p.ref} (CPT {c.code})"
            g = self.guidance_from_text(p.code.all_text())
            if g:
                return g, f"{p.ref} ({p.code.label()})"
        g = self.guidance_from_text(text)
        if g:
            return g, "procedure text"
        for c in cpts:
            if c in CPT_WITH_ULTRASOUND:
                return "ultrasound", f"CPT {c} includes ultrasound guidance"
            if c in CPT_WITH_IMAGING:
                return CPT_WITH_IMAGING[c], f"CPT {c} includes imaging guidance"
        for c in cpts:
            if c in CPT_WITHOUT_ULTRASOUND:
                return "landmark", f"CPT {c} without a guidance code"
        return "unknown", "not recorded"

    # ---- injections -----------------------------------------------------------------------
    @cached
    def injections(self) -> list[Injection]:
        """Completed injections up to the as-of date, oldest first. An injection is the same whatever the
        day it is viewed from, so views sharing a cache take an earlier day's from a later day's list."""
        shared = self.shared_cache
        if shared is not None and shared.injections is not None and self.now <= shared.injections[0]:
            return [i for i in shared.injections[1] if i.when is not None and i.when <= self.now]
        out = self._injections()
        if shared is not None and (shared.injections is None or self.now > shared.injections[0]):
            shared.injections = (self.now, out)
        return out

    def _injections(self) -> list[Injection]:
        procs = self.record.procedures
        children: dict[str, list[Procedure]] = {}
        for p in procs:
            for parent in p.part_of:
                children.setdefault(parent, []).append(p)
        admins_by_parent: dict[str, list] = {}
        loose_admins = []
        proc_refs = {p.ref for p in procs}
        for a in self.record.administrations:
            parents = [x for x in a.part_of if x in proc_refs]
            if parents:
                for parent in parents:
                    admins_by_parent.setdefault(parent, []).append(a)
            else:  # no partOf (most EHRs), or one naming a procedure the record does not hold
                loose_admins.append(a)
        out: list[Injection] = []
        guidance_refs = {p.ref for p in procs if any(c.code in GUIDANCE_CPT for c in p.code.codings)}
        for p in procs:
            if p.ref in guidance_refs or p.status in ("not-done", "entered-in-error", "preparation", "stopped"):
                continue
            cpts = {c.code for c in p.code.codings if system_kind(c.system) == "cpt"}
            admins = admins_by_parent.get(p.ref, [])
            is_target_cpt = not _target_cpts(self.kb).isdisjoint(cpts)
            text = p.code.all_text()
            if not (is_target_cpt or admins or says(INJECTION_TEXT, text)):
                continue
            target = self.identify_target([text, p.body_site, p.notes], cpts)
            agents = [self.agent(a.medication, a.dose_value, a.dose_unit, a.ref) for a in admins]
            if target is None and not any(a.kind in ("corticosteroid", "anesthetic") for a in agents):
                continue  # e.g. an intramuscular contraceptive or vaccine: not a musculoskeletal injection
            when = p.start or p.end
            if when is None:
                bad = dict(self.record.date_problems).get(p.ref)
                raise InputError(f"{p.ref}: injection has no performed date" + (f" ({bad})" if bad else ""))
            if when > self.now:
                continue
            guidance, basis = self.guidance_of(cpts, f"{text} {p.body_site} {p.notes}", children.get(p.ref, []))
            inj = Injection(ref=p.ref, when=when, target=target, side=side_of(f"{text} {p.body_site}"),
                            guidance=guidance, guidance_basis=basis, text=text, notes=p.notes,
                            refs=[p.ref, *(c.ref for c in children.get(p.ref, []))],
                            date_estimated=p.date_estimated or p.date_unknown, date_unknown=p.date_unknown)
            self._attach(inj, agents)
            out.append(inj)
        from_procedures = list(out)
        for a in loose_admins:
            agent = self.agent(a.medication, a.dose_value, a.dose_unit, a.ref)
            if a.when is None or a.when > self.now or agent.kind not in ("corticosteroid", "anesthetic"):
                continue
            same = _procedure_given_with(a.when, side_of(a.site), agent.kind, from_procedures)
            if same is not None:  # given at that procedure, only not linked to it
                self._attach(same, [agent])
                continue
            if agent.kind != "corticosteroid":
                continue
            # a steroid given with no procedure recorded is still an injection
            route = f"{a.route} {a.site}".lower()
            if any(w in route for w in ("oral", "intravenous", "iv ", "inhal", "topical")):
                continue
            target = self.identify_target([a.site, a.medication.all_text()], set())
            inj = Injection(ref=a.ref, when=a.when, target=target, side=side_of(a.site),
                            guidance=self.guidance_from_text(a.site) or "unknown", guidance_basis="not recorded",
                            text=a.site, refs=[a.ref])
            self._attach(inj, [agent])
            out.append(inj)
        out.sort(key=lambda i: i.when or datetime.min)
        return out

    @staticmethod
    def _attach(inj: Injection, agents: list[Agent]) -> None:
        for ag in agents:
            if ag.kind == "corticosteroid" and inj.steroid is None:
                inj.steroid = ag
            elif ag.kind == "corticosteroid" and inj.steroid is not None:
                prev = inj.steroid
                inj.steroid = Agent(prev.drug, prev.label, (prev.dose_mg or 0) + (ag.dose_mg or 0),
                                    (prev.tae_mg or 0) + (ag.tae_mg or 0), prev.ref)
            elif ag.kind == "anesthetic":
                inj.anesthetics.append(ag)
            else:
                inj.others.append(ag)
            if ag.ref:
                inj.refs.append(ag.ref)

    @cached
    def steroid_injections(self) -> list[Injection]:
        return [i for i in self.injections if i.steroid is not None]

    # ---- planned injection ----------------------------------------------------------------
    def planned_from_orders(self, drafts: list[Injection] | None = None) -> Injection | None:
        """The planned injection: the first draft order (`drafts` when the caller already read them), else one
        built from draft medication requests alone."""
        drafts = self.draft_injections() if drafts is None else drafts
        if drafts:
            return drafts[0]
        return self._from_medications(list(self.record.draft_medications))

    def _from_medications(self, meds: list[MedicationUse]) -> Injection | None:
        """One planned injection from draft medicines alone (no injection order), if a corticosteroid is among
        them; where it is given is read from their sites or dose texts."""
        agents = [self.agent(m.medication, m.dose_value, m.dose_unit, m.ref, m.dose_text) for m in meds]
        if any(a.kind == "corticosteroid" for a in agents):
            site = " ".join(m.site or m.dose_text for m in meds)
            inj = Injection(ref=meds[0].ref, when=self.now, target=self.identify_target([site], set()),
                            side=side_of(site), guidance=self.guidance_from_text(site) or "unknown",
                            guidance_basis="not recorded", text=site, refs=[], source="draft-orders")
            self._attach(inj, agents)
            return inj
        return None

    def _medication_only_drafts(self) -> list[Injection]:
        """Draft medicines with no injection order, grouped by the site each names: a steroid for each knee is two
        planned injections, each checked on its own, not one of twice the dose. Medicines naming no site join
        every group. One group (or none) gives nothing here: the single planned injection is built as before."""
        groups: dict[tuple[str | None, str | None], list[MedicationUse]] = {}
        unsited = []
        for m in self.record.draft_medications:
            where = m.site or m.dose_text
            target = self.identify_target([where], set()) if where else None
            key = (side_of(where) if where else None, target.id if target else None)
            if key == (None, None):
                unsited.append(m)
            else:
                groups.setdefault(key, []).append(m)
        if len(groups) < 2:
            return []
        out = [inj for ms in groups.values() if (inj := self._from_medications(ms + unsited)) is not None]
        return out if len(out) > 1 else []

    def draft_injections(self) -> list[Injection]:
        """Every draft injection order, each with the draft medicines that give it as their reason (bilateral
        knees are two orders, each checked on its own)."""
        out = []
        for sr in self.record.service_requests:
            if sr.status != "draft":
                continue
            cpts = {c.code for c in sr.code.codings if system_kind(c.system) == "cpt"}
            text = sr.code.all_text()
            target = self.identify_target([text, sr.body_site, sr.notes], cpts)
            if target is None and not says(INJECTION_TEXT, text):
                continue
            guidance, basis = self.guidance_of(cpts, f"{text} {sr.body_site} {sr.notes}", [])
            inj = Injection(ref=sr.ref, when=self.now, target=target, side=side_of(f"{text} {sr.body_site}"),
                            guidance=guidance, guidance_basis=basis, text=text, refs=[sr.ref], source="draft-orders")
            meds = [m for m in self.record.draft_medications if not m.reason_refs or sr.ref in m.reason_refs]
            self._attach(inj, [self.agent(m.medication, m.dose_value, m.dose_unit, m.ref, m.dose_text) for m in meds])
            out.append(inj)
        return out or self._medication_only_drafts()

    # ---- conservative care ----------------------------------------------------------------
    @cached
    def therapies(self) -> list[Therapy]:
        out = []
        for p in self.record.procedures:
            if p.status in ("not-done", "entered-in-error", "preparation", "stopped"):
                continue
            if "exercise-therapy" in self.concepts(p.ref, p.code, p.notes) and (p.start is None or p.start <= self.now):
                out.append(Therapy(p.ref, p.code.label(), p.start, p.end,
                                   "in-progress" if p.status == "in-progress" or (p.end and p.end > self.now)
                                   else "completed",
                                   self.treated_regions(p.code.all_text() + " " + p.body_site, p.reason_refs,
                                                        p.reason_text)))
        for a in self.record.care_plan_activities:
            if a.status in ("cancelled", "not-started", "entered-in-error", "scheduled", "stopped"):
                continue
            key = f"{a.ref}#{a.code.label()}"
            if "exercise-therapy" in self.concepts(key, a.code) and (a.start is None or a.start <= self.now):
                status = "completed" if a.status == "completed" or (a.end and a.end <= self.now) else "in-progress"
                out.append(Therapy(a.ref, a.code.label() + " (care plan)", a.start,
                                   a.end if a.end and a.end <= self.now else None, status,
                                   self.treated_regions(a.code.all_text() + " " + a.plan_category, a.reason_refs,
                                                        a.reason_text)))
        for s in self.record.service_requests:
            if s.status not in ("completed", "active"):
                continue
            start = s.occurrence or s.authored
            if start is not None and start > self.now:
                continue
            if "exercise-therapy" in self.concepts(s.ref, s.code, s.notes):
                out.append(Therapy(s.ref, s.code.label() + " (referral)", start, None,
                                   "completed" if s.status == "completed" else "in-progress",
                                   self.treated_regions(s.code.all_text() + " " + s.body_site, s.reason_refs,
                                                        s.reason_text)))
        out.sort(key=lambda t: t.start or datetime.min)
        return out

    def treated_regions(self, text: str, reason_refs: tuple[str, ...], reason_text: str) -> frozenset[str]:
        """Where a course of therapy was aimed: its own text and body site, else the problems it
        addressed (CarePlan.addresses, reasonReference, reasonCode), so an ankle sprain's exercises
        do not count as hip physical therapy."""
        own = self.regions_of_text(text)
        if own:
            return own
        by_ref = {c.ref: c for c in self.record.conditions}
        regs: set[str] = set(self.regions_of_text(reason_text)) if reason_text else set()
        for ref in reason_refs:
            c = by_ref.get(ref)
            if c is not None:
                regs |= self.condition_regions(c)
        return frozenset(regs)

    def within(self, when: datetime | None, days: float) -> bool:
        return when is not None and when <= self.now and self.days_before_now(when) <= days

    def window(self, start: datetime, days: float) -> datetime:
        return start + timedelta(days=days)


# ---- text recognisers: pure functions of (knowledge, text), memoised across evaluations ----------
@lru_cache(maxsize=4096)
def _regions_of_text(kb: Knowledge, text: str) -> frozenset[str]:
    if "injection site" in text.lower():
        return frozenset({"*"})
    return frozenset(r.id for r in kb.regions.values() if any(p.search(text) for p in r.text))


@lru_cache(maxsize=8)
def _target_cpts(kb: Knowledge) -> frozenset[str]:
    """Every target's CPT codes: a procedure coded with any of them is an injection."""
    return frozenset(c for t in kb.targets.values() for c in t.cpt)


@lru_cache(maxsize=4096)
def _target_of_text(kb: Knowledge, text: str) -> Target | None:
    for tid in kb.target_order:
        t = kb.targets[tid]
        if any(p.search(text) for p in t.text):
            return t
    return None


@lru_cache(maxsize=4096)
def _drug_of_coded(kb: Knowledge, codings: tuple[Coding, ...], text: str) -> Drug | None:
    """The drug a CodeableConcept names (its RxNorm codes, else its text); memoised on codes and text."""
    coded = Coded(codings, text)
    codes = frozenset(c.code for c in coded.codings if system_kind(c.system) == "rxnorm")
    return _drug_of(kb, codes, kb.terminology.clip(coded.all_text()))


@lru_cache(maxsize=4096)
def _drug_of(kb: Knowledge, rxnorm: frozenset[str], text: str) -> Drug | None:
    for d in kb.drugs.values():
        if rxnorm & d.rxnorm:
            return d
    for d in kb.drugs.values():
        if any(p.search(text) for p in d.text):
            return d
    return None


@lru_cache(maxsize=4096)
def _guidance_of_text(text: str) -> str | None:
    for name, pat in GUIDANCE_TEXT:
        if pat.search(text):
            return name
    return None


def _as_precise_as(converted: float, source: float) -> float:
    """A converted value carries the source's precision, no more (at least 3 significant digits): 11.1 mmol/L
    is 200 mg/dL, not 199.98 below a 200 threshold."""
    digits = len(f"{abs(source):g}".replace(".", "").lstrip("0").split("e")[0]) or 1
    return float(f"{converted:.{max(3, digits)}g}")


def _grade(text: str) -> float | None:
    m = re.search(r"\b([0-4])\b", text or "")
    if m:
        return float(m.group(1))
    roman = {"0": 0, "i": 1, "ii": 2, "iii": 3, "iv": 4}
    m = re.search(r"\b(iv|iii|ii|i)\b", (text or "").lower())
    return float(roman[m.group(1)]) if m else None


def _procedure_given_with(when: datetime, side: str | None, kind: str, injections: list[Injection]) -> Injection | None:
    """The injection procedure an unlinked administration belongs to: the same day, the same side when both
    say one, no agent of its kind yet (a second steroid that day is a second injection), nearest in time."""
    day = when.date()
    fits = [i for i in injections if i.when is not None and i.when.date() == day
            and not (side and i.side and side != i.side)
            and not (i.steroid if kind == "corticosteroid" else i.anesthetics)]
    return min(fits, key=lambda i: abs((i.when - when).total_seconds()) if i.when else 0.0, default=None)
