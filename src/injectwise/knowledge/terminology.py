"""Map codes and text to knowledge-base concepts (value sets), with simple negation on text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from injectwise.core.record import Coded

SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10-cm": "icd10",
    "http://hl7.org/fhir/sid/icd-10": "icd10",
    "urn:oid:2.16.840.1.113883.6.90": "icd10",
    "http://snomed.info/sct": "snomed",
    "urn:oid:2.16.840.1.113883.6.96": "snomed",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "rxnorm",
    "urn:oid:2.16.840.1.113883.6.88": "rxnorm",
    "http://loinc.org": "loinc",
    "urn:oid:2.16.840.1.113883.6.1": "loinc",
    "http://www.ama-assn.org/go/cpt": "cpt",
    "urn:oid:2.16.840.1.113883.6.12": "cpt",
    "http://www.cms.gov/medicare/coding/hcpcsreleasecodesets": "cpt",
    "urn:oid:2.16.840.1.113883.6.285": "cpt",
}
CODE_SYSTEMS = ("icd10", "snomed", "rxnorm", "loinc", "cpt")
# Items read from free text carry the knowledge-base concept the language layer recognised as a coding
# in this system, so the engine needs no second pass over the text.
CONCEPT_SYSTEM = "https://injectwise.org/CodeSystem/concept"

_NEGATION = re.compile(
    r"\b(no|not|denies|denied|deny|without|negative for|absent|free of|ruled out|r/o|never|resolved)\b[^.;:]*$",
    re.IGNORECASE,
)


def system_kind(system: str) -> str | None:
    return SYSTEMS.get(system.strip().lower().rstrip("/")) or SYSTEMS.get(system.strip())


def norm_icd(code: str) -> str:
    return code.replace(".", "").strip().upper()


@dataclass(slots=True)
class Concept:
    id: str
    region: str | None = None
    unit: str | None = None
    codes: dict[str, frozenset[str]] = field(default_factory=dict)
    text: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()

    def text_match(self, text: str) -> bool:
        """True when a pattern matches un-negated text and no exclusion applies."""
        if not text or not self.text:
            return False
        if self.exclude and any(x.search(text) for x in self.exclude):
            return False
        for pat in self.text:
            for m in pat.finditer(text):
                window = text[max(0, m.start() - 48):m.start()]
                if not _NEGATION.search(window):
                    return True
        return False


class Terminology:
    """All concepts, with an index from (system, code) to concepts for fast coded lookups."""

    def __init__(self, concepts: dict[str, Concept]) -> None:
        self.concepts = concepts
        self._exact: dict[tuple[str, str], set[str]] = {}
        self._icd: dict[str, set[str]] = {}
        for c in concepts.values():
            for system, codes in c.codes.items():
                for code in codes:
                    if system == "icd10":
                        self._icd.setdefault(norm_icd(code), set()).add(c.id)
                    else:
                        self._exact.setdefault((system, code), set()).add(c.id)
        self._icd_lengths = sorted({len(k) for k in self._icd})
        self._text_concepts = [c for c in concepts.values() if c.text]
        self._text_cache: dict[str, frozenset[str]] = {}

    def coded_concepts(self, coded: Coded) -> set[str]:
        out: set[str] = set()
        for cd in coded.codings:
            kind = system_kind(cd.system) if cd.system else None
            if kind == "icd10":
                code = norm_icd(cd.code)
                for n in self._icd_lengths:
                    if n > len(code):
                        break
                    hit = self._icd.get(code[:n])
                    if hit:
                        out |= hit
            elif kind is not None:
                hit = self._exact.get((kind, cd.code))
                if hit:
                    out |= hit
            elif cd.system == CONCEPT_SYSTEM and cd.code in self.concepts:
                out.add(cd.code)
        return out

    def text_concepts(self, text: str, only: set[str] | None = None) -> set[str]:
        """Concepts a text mentions; cached by text because code displays recur across records."""
        hit = self._text_cache.get(text)
        if hit is None:
            hit = frozenset(c.id for c in self._text_concepts if c.text_match(text))
            if len(self._text_cache) > 50_000:
                self._text_cache.clear()
            self._text_cache[text] = hit
        return set(hit) if only is None else set(hit) & only

    def concepts_of(self, coded: Coded, extra_text: str = "") -> frozenset[str]:
        """Codes first; the text always adds what it says (a code rarely says everything)."""
        found = self.coded_concepts(coded)
        text = coded.all_text()
        if extra_text:
            text = f"{text} | {extra_text}" if text else extra_text
        if text:
            found |= self.text_concepts(text)
        # an exclusion in the text (e.g. "topical", "pre-diabetes") vetoes coded matches too
        for cid in [c for c in found if self.concepts[c].exclude]:
            if text and any(x.search(text) for x in self.concepts[cid].exclude):
                found.discard(cid)
        return frozenset(found)

    def has_code(self, coded: Coded, concept: str) -> bool:
        return concept in self.coded_concepts(coded)
