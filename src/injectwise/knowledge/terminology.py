"""Map codes and text to knowledge-base concepts (value sets). Text goes through the language layer
(injectwise.language): ConText modifiers, per-mention side and site, one compiled finder."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from injectwise.core.record import Coded, Coding
from injectwise.language.context import analyze_text
from injectwise.language.matcher import ConceptMatcher, ConceptPatterns
from injectwise.language.memo import SentenceMemo, look_back
from injectwise.language.model import Analysis
from injectwise.language.phrases import same_length_lower
from injectwise.language.rules import LanguageRules

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

# Bounded caches: code displays and site texts recur across records, but unique texts must not grow memory.
TEXT_CACHE_SIZE = 4096
# Sentences recur across notes (templates, copied history): their ConText reading is reused (language.memo).
SENTENCE_CACHE_SIZE = 4096
# What a CodeableConcept (codes, text, extra text) maps to: the same codes recur in every record of a population.
# Only short texts are memoised (code displays, sites), so the memory held stays small whatever the input.
CODED_CACHE_SIZE = 16384
CODED_CACHE_TEXT = 1024


@lru_cache(maxsize=1024)
def system_kind(system: str) -> str | None:
    """The code system's short name (icd10, snomed, ...), or None; memoised (a record names few systems)."""
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

    historical_counts: bool = False  # a past mention is still a present fact (a prosthesis, an allergy)


class Terminology:
    """All concepts, with an index from (system, code) to concepts for fast coded lookups."""

    def __init__(self, concepts: dict[str, Concept], language: LanguageRules,
                 regions: dict[str, tuple[str, ...]] | None = None) -> None:
        self.concepts = concepts
        self.language = language
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
        self.matcher = ConceptMatcher(
            (ConceptPatterns(c.id, tuple(p.pattern for p in c.text), tuple(p.pattern for p in c.exclude),
                             c.historical_counts) for c in concepts.values() if c.text), regions)
        rules = language
        self.sentences = SentenceMemo(SENTENCE_CACHE_SIZE, look_back([
            rules.trigger_patterns, rules.terminator_patterns, rules.side_patterns, rules.list_conjunction,
            *self.matcher.exclusions.values()]))
        self._analyze = lru_cache(maxsize=TEXT_CACHE_SIZE)(self._analyze_uncached)
        self._text_concepts = lru_cache(maxsize=TEXT_CACHE_SIZE)(self._text_concepts_uncached)
        self._concepts_of = lru_cache(maxsize=CODED_CACHE_SIZE)(self._concepts_of_uncached)
        self._code_concepts = lru_cache(maxsize=CODED_CACHE_SIZE)(self._code_concepts_uncached)

    def _analyze_uncached(self, text: str) -> Analysis:
        return analyze_text(text, self.matcher, self.language, self.sentences)

    def clip(self, text: str) -> str:
        """A cache key never longer than the per-field cap (one more character keeps `truncated` true)."""
        cap = self.language.max_text_chars
        text = same_length_lower(text)
        return text if len(text) <= cap else text[:cap + 1]

    def analyze(self, text: str) -> Analysis:
        """The language layer's reading of a text (cached, bounded: treat the result as read-only)."""
        return self._analyze(self.clip(text))

    def _text_concepts_uncached(self, text: str) -> frozenset[str]:
        return self._analyze(text).concepts()  # one analysis per text, shared with `analyze`

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
        """Concepts a text asserts (negated, hypothetical and family mentions never count)."""
        if not text:
            return set()
        hit = self._text_concepts(self.clip(text))
        return set(hit) if only is None else set(hit) & only

    def mention_side(self, text: str, concepts: frozenset[str] | set[str]) -> tuple[bool, str | None]:
        """(any asserted mention of these concepts, the side they name). The side comes from each
        mention's own clause, never from any side word elsewhere in the text; disagreeing sides give
        None (unknown, which safety treats as compatible with any side)."""
        found = [m for m in self.analyze(text).mentions if m.asserted and m.concept in concepts] if text else []
        sides = {m.side for m in found if m.side}
        if "bilateral" in sides:
            return bool(found), "bilateral"
        return bool(found), (sides.pop() if len(sides) == 1 else None)

    def concepts_of(self, coded: Coded, extra_text: str = "") -> frozenset[str]:
        """Codes first; the text always adds what it says (a code rarely says everything). A pure function
        of the codings, the text and the extra text: memoised (bounded) on them."""
        if len(coded.text) + len(extra_text) > CODED_CACHE_TEXT:
            return self._concepts_of_uncached(coded.codings, coded.text, extra_text)
        return self._concepts_of(coded.codings, coded.text, extra_text)

    def code_concepts(self, coded: Coded) -> frozenset[str]:
        """What an observation's code is about: its coded concepts, else what its text names (memoised)."""
        if len(coded.text) > CODED_CACHE_TEXT:
            return self._code_concepts_uncached(coded.codings, coded.text)
        return self._code_concepts(coded.codings, coded.text)

    def _code_concepts_uncached(self, codings: tuple[Coding, ...], text: str) -> frozenset[str]:
        code = Coded(codings, text)
        coded = self.coded_concepts(code)
        if not coded:
            coded = self.text_concepts(code.all_text())
        return frozenset(coded)

    def _concepts_of_uncached(self, codings: tuple[Coding, ...], text_: str, extra_text: str) -> frozenset[str]:
        coded = Coded(codings, text_)
        found = self.coded_concepts(coded)
        text = coded.all_text()
        if extra_text:
            text = f"{text} | {extra_text}" if text else extra_text
        if text:
            found |= self.text_concepts(text)
        # an exclusion in the text (e.g. "topical", "pre-diabetes") vetoes coded matches too
        for cid in [c for c in found if c in self.matcher.exclusions]:
            if text and self.matcher.exclusions[cid].search(text):
                found.discard(cid)
        return frozenset(found)

    def has_code(self, coded: Coded, concept: str) -> bool:
        return concept in self.coded_concepts(coded)
