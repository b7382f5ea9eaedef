"""Typed, validated view of the knowledge files. Plain data: no rule logic lives here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from injectwise.knowledge.icd10_sites import Icd10Sites
from injectwise.knowledge.terminology import Terminology

_GENERIC_TARGET_WORDS = frozenset({"joint", "injection", "inj", "block", "bursa", "intra", "articular", "ia", "steroid",
                                   "corticosteroid", "cortisone", "the", "a", "of", "space", "left", "right", "l", "r",
                                   "shoulder", "elbow", "wrist", "hand", "hip", "knee", "ankle", "foot", "neck", "back"})


@dataclass(slots=True, frozen=True)
class Citation:
    id: str
    label: str
    reference: str
    confidence: str
    doi: str | None = None
    url: str | None = None
    basis: str = ""

    def as_json(self) -> dict[str, str]:
        out = {"id": self.id, "label": self.label, "confidence": self.confidence}
        if self.basis:
            out["basis"] = self.basis
        if self.doi:
            out["doi"] = self.doi
        if self.url:
            out["url"] = self.url
        return out


@dataclass(slots=True)
class PolicyValue:
    name: str
    value: float
    unit: str
    doc: str
    basis: str
    citations: tuple[str, ...]
    overridden: bool = False


@dataclass(slots=True, frozen=True)
class DoseRange:
    min: float
    usual: float
    max: float


@dataclass(slots=True)
class Target:
    id: str
    label: str
    aliases: tuple[str, ...]
    region: str | None
    joint: str | None
    kind: str
    depth: str
    guidance: str
    guidance_note: str
    landmark_accuracy_percent: float | None
    accuracy_citations: tuple[str, ...]
    dose: DoseRange
    dose_citations: tuple[str, ...]
    bleeding_risk: str
    avoid_particulate: bool
    cpt: frozenset[str]
    text: tuple[re.Pattern[str], ...]
    indications: tuple[str, ...]
    competing: tuple[str, ...]
    particulate_contraindicated: bool = False
    conservative_care_first: bool = True


@dataclass(frozen=True, slots=True)
class NonSteroidSite:
    """A block clinicians name like a target but give without corticosteroid (e.g. a sympathetic block): named
    so a plan there is refused with its reason, not as an unrecognised target."""
    id: str
    label: str
    aliases: tuple[str, ...]
    text: tuple[re.Pattern[str], ...]
    reason: str
    citations: tuple[str, ...]

    def named_in(self, text: str) -> bool:
        return any(p.search(text) for p in self.text)


@dataclass(slots=True)
class Drug:
    id: str
    kind: str  # corticosteroid, anesthetic, other
    label: str
    rxnorm: frozenset[str]
    text: tuple[re.Pattern[str], ...]
    citations: tuple[str, ...]
    equivalent_mg: float | None = None
    particulate: bool = False
    duration_hours: tuple[float, float] | None = None
    onset_days: tuple[float, float] | None = None
    judge_after_days: float | None = None  # None: the policy default applies
    max_mg: float | None = None  # local anaesthetic: absolute maximum single-session dose
    max_mg_per_kg: float | None = None  # local anaesthetic: weight-based maximum
    excipients: frozenset[str] = frozenset()  # allergy concepts of excipients in the usual products
    # products sold in one strength only (mg/mL): a volume of them is a dose ("Celestone Soluspan 2 mL" = 12 mg)
    products: tuple[tuple[re.Pattern[str], float], ...] = ()


@dataclass(slots=True, frozen=True)
class Antithrombotic:
    """An anticoagulant or antiplatelet with the hold time ASRA asks before higher-risk procedures."""

    id: str
    label: str
    drug_class: str  # vka, doac, lmwh, heparin, other-anticoagulant, p2y12, aspirin, other-antiplatelet
    hold_days: float | None  # None: usually continued (e.g. aspirin alone)
    rxnorm: frozenset[str]
    text: tuple[re.Pattern[str], ...]
    citations: tuple[str, ...]


@dataclass(slots=True)
class Region:
    id: str
    area: str
    text: tuple[re.Pattern[str], ...]
    refers_to: tuple[str, ...] = ()


@dataclass(slots=True)
class RuleSpec:
    """A rule as written in its file; the engine compiles `when` and `likelihood`."""

    id: str
    version: str
    mode: str
    stage: int
    severity: str
    title: str
    rationale: str
    advice: str
    citations: tuple[str, ...]
    when: Any
    likelihood: list[dict[str, Any]]
    source: str
    suggestion: dict[str, Any] | None = None


@dataclass(slots=True, eq=False)
class Knowledge:
    version: str
    name: str
    scope: str
    disclaimer: str
    citations: dict[str, Citation]
    policy: dict[str, PolicyValue]
    terminology: Terminology
    regions: dict[str, Region]
    targets: dict[str, Target]
    target_order: tuple[str, ...]
    drugs: dict[str, Drug]
    equivalence_unit: str
    equivalence_reference_mg: float
    units: dict[str, dict[str, tuple[float, float]]]
    vocabulary: dict[str, str]
    rules: list[RuleSpec] = field(default_factory=list)
    icd10_sites: Icd10Sites = field(default_factory=Icd10Sites)
    antithrombotics: dict[str, Antithrombotic] = field(default_factory=dict)
    non_steroid_sites: tuple[NonSteroidSite, ...] = ()

    def p(self, name: str) -> float:
        return self.policy[name].value

    def drug_named(self, name: str, kind: str) -> Drug | None:
        """The drug of this kind a planned-agent name means: its id ("triamcinolone"), else the first whose
        name patterns match it, so a brand or product ("Kenalog-40", "Depo-Medrol", "Celestone Soluspan",
        "Marcaine 0.5%") resolves as it does in a record."""
        k = name.strip().lower()
        d = self.drugs.get(k)
        if d is not None:
            return d if d.kind == kind else None
        for d in self.drugs.values():
            if d.kind == kind and any(p.search(name) for p in d.text):
                return d
        return None

    def non_steroid_site(self, text: str) -> NonSteroidSite | None:
        """The non-steroid block a plan's text or a target name means, if any ("stellate ganglion block")."""
        k = text.strip().lower()
        words = re.sub(r"[-_]+", " ", k)
        for site in self.non_steroid_sites:
            if k == site.id or k in site.aliases or site.named_in(words):
                return site
        return None

    def target(self, key: str) -> Target | None:
        """A target by id or alias; else the first (match order) whose text patterns match the name read as words
        ("glenohumeral-joint", "cervical_transforaminal", "Carpal tunnel injection")."""
        k = key.strip().lower()
        if k in self.targets:
            return self.targets[k]
        for t in self.targets.values():
            if k in t.aliases:
                return t
        words = re.sub(r"[-_]+", " ", k).strip()
        if not words:
            return None
        for tid in self.target_order:
            t = self.targets[tid]
            if words in t.aliases:
                return t
            for p in t.text:
                m = p.search(words)
                # the name is the target's words and nothing else but generic ones ("elbow-of-doom" is no target)
                if m and {w.group() for w in re.finditer(r"\S+", words)
                          if w.end() <= m.start() or w.start() >= m.end()} <= _GENERIC_TARGET_WORDS:
                    return t
        return None
