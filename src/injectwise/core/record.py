"""The patient record as the engine sees it: a trimmed, typed copy of what the EHR sent.

Adapters (FHIR today, notes later) fill these classes; the engine never sees raw FHIR.
Each item keeps its source reference ("Type/id") so every finding can cite it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

# What a note alone leaves unknown when it does not mention therapy (PatientRecord.unavailable).
THERAPY_UNSTATED = "physical therapy / conservative care (the note does not say)"


@dataclass(slots=True, frozen=True)
class Coding:
    system: str
    code: str
    display: str = ""


@dataclass(slots=True)
class Coded:
    """A CodeableConcept: codings plus the human text, which is the fallback when codes are missing."""

    codings: tuple[Coding, ...] = ()
    text: str = ""
    # all_text() of (text, codings) as they were when it was joined; recomputed if either is reassigned
    _joined: tuple[str, tuple[Coding, ...], str] | None = field(default=None, init=False, repr=False, compare=False)

    def label(self) -> str:
        if self.text:
            return self.text
        for c in self.codings:
            if c.display:
                return c.display
        return self.codings[0].code if self.codings else ""

    def all_text(self) -> str:
        j = self._joined
        if j is not None and j[0] is self.text and j[1] is self.codings:
            return j[2]
        parts = [self.text, *(c.display for c in self.codings)]
        out = " | ".join(p for p in parts if p)
        self._joined = (self.text, self.codings, out)
        return out


@dataclass(slots=True)
class Patient:
    ref: str
    birth_date: date | None = None
    sex: str | None = None
    deceased: bool = False
    deceased_at: datetime | None = None


@dataclass(slots=True)
class Condition:
    ref: str
    code: Coded
    clinical_status: str | None = None  # active, recurrence, relapse, inactive, remission, resolved
    verification: str | None = None  # confirmed, provisional, differential, unconfirmed, refuted, entered-in-error
    category: str | None = None  # problem-list-item, encounter-diagnosis
    onset: datetime | None = None
    recorded: datetime | None = None
    abated: datetime | None = None
    body_site: str = ""
    notes: str = ""

    @property
    def when(self) -> datetime | None:
        return self.onset or self.recorded

    @property
    def present(self) -> bool:
        """Refuted or entered-in-error means the finding is absent."""
        return self.verification not in ("refuted", "entered-in-error")


@dataclass(slots=True)
class Observation:
    ref: str
    code: Coded
    when: datetime | None = None
    value: float | None = None
    unit: str = ""
    value_text: str = ""
    status: str | None = None
    body_site: str = ""
    narrative: bool = False  # value_text is free text (valueString), not a coded answer


@dataclass(slots=True)
class Procedure:
    ref: str
    code: Coded
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    body_site: str = ""
    notes: str = ""
    part_of: tuple[str, ...] = ()
    category: str = ""
    reason_refs: tuple[str, ...] = ()  # the problems it treated (reasonReference)
    reason_text: str = ""  # reasonCode text and displays
    date_estimated: bool = False  # placed in a stated period by a note ("twelve injections over 4 years")
    date_unknown: bool = False  # a note names it with no date at all: dated by the note, its own date unknown


@dataclass(slots=True)
class MedicationAdministration:
    ref: str
    medication: Coded
    when: datetime | None = None
    dose_value: float | None = None
    dose_unit: str = ""
    part_of: tuple[str, ...] = ()
    site: str = ""
    route: str = ""
    status: str | None = None


@dataclass(slots=True)
class MedicationUse:
    """A MedicationStatement or MedicationRequest: what the patient takes or is prescribed."""

    ref: str
    medication: Coded
    status: str | None = None
    intent: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    dose_text: str = ""
    dose_value: float | None = None
    dose_unit: str = ""
    site: str = ""
    reason_refs: tuple[str, ...] = ()


@dataclass(slots=True)
class Allergy:
    ref: str
    code: Coded
    clinical_status: str | None = None
    verification: str | None = None
    recorded: datetime | None = None
    reaction: str = ""
    kind: str | None = None  # FHIR type: "allergy" (immune) or "intolerance" (non-immune); None when not said
    criticality: str | None = None  # FHIR criticality: "high" (or a severe reaction) is never explained away

    @property
    def present(self) -> bool:
        return self.verification not in ("refuted", "entered-in-error") and self.clinical_status not in (
            "inactive", "resolved")


@dataclass(slots=True)
class CarePlanActivity:
    ref: str
    code: Coded
    status: str | None = None
    plan_status: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    plan_category: str = ""
    reason_refs: tuple[str, ...] = ()  # CarePlan.addresses and the activity's reasonReference
    reason_text: str = ""


@dataclass(slots=True)
class ServiceRequest:
    ref: str
    code: Coded
    status: str | None = None
    intent: str | None = None
    occurrence: datetime | None = None
    authored: datetime | None = None
    body_site: str = ""
    notes: str = ""
    reason_refs: tuple[str, ...] = ()
    reason_text: str = ""


@dataclass(slots=True)
class Document:
    ref: str
    text: str
    when: datetime | None = None
    title: str = ""
    content_type: str = ""  # the MIME type of the rendition read (markup is stripped by it)


@dataclass(slots=True, frozen=True)
class Provenance:
    """Where a fact read from free text came from: the note, the sentence quoted, character offsets."""

    source: str  # e.g. "DocumentReference/abc" or "note:visit.txt"
    quote: str
    start: int
    end: int
    note_date: datetime | None = None


@dataclass(slots=True)
class PatientRecord:
    patient: Patient
    conditions: list[Condition] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    procedures: list[Procedure] = field(default_factory=list)
    administrations: list[MedicationAdministration] = field(default_factory=list)
    medications: list[MedicationUse] = field(default_factory=list)
    draft_medications: list[MedicationUse] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    care_plan_activities: list[CarePlanActivity] = field(default_factory=list)
    service_requests: list[ServiceRequest] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    source: str = ""
    # Kinds of data the source could not supply (e.g. a CDS client that sent no allergies): the
    # checks that need them cannot be made, and the result must say so rather than assume "none".
    unavailable: tuple[str, ...] = ()
    # Items read from free text, by ref: the sentence they rest on (findings quote it).
    provenance: dict[str, Provenance] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # what was read: files, documents, notes
    # Resources whose dates are missing or impossible: (reference, what is wrong). They stay in the
    # record (a fever with a bad date is still a fever) and the result lists them as unknowns.
    date_problems: tuple[tuple[str, str], ...] = ()

    def last_event(self) -> datetime | None:
        """The most recent moment something happened in the record (not a future booking): the visit
        date when a historic or synthetic record is replayed."""
        stamps: list[datetime | None] = [o.when for o in self.observations]
        stamps += [p.start for p in self.procedures]
        stamps += [a.when for a in self.administrations]
        stamps += [c.recorded or c.onset for c in self.conditions]
        stamps += [d.when for d in self.documents]
        stamps += [a.recorded for a in self.allergies]
        stamps += [s.authored for s in self.service_requests]
        stamps += [s.occurrence for s in self.service_requests if s.status == "draft"]
        known = [s for s in stamps if s is not None]
        return max(known) if known else None
