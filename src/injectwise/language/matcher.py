"""Concept matching: every concept's text patterns compiled once, bucketed by first character.

Matches start on a word boundary ("septic" never matches inside "aseptic"). One C-level pass finds
the word starts; each word start tries only the concepts whose patterns can begin with its first
letter. Cost is linear in the text and nearly flat in the number of concepts; never one regex per
pattern per text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from injectwise.language.phrases import WORD_START, first_chars


@dataclass(slots=True, frozen=True)
class ConceptPatterns:
    id: str
    patterns: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    historical_counts: bool = False


@dataclass(slots=True, frozen=True)
class Hit:
    concept: str
    start: int
    end: int


class ConceptMatcher:
    """Compiled once per knowledge base; `find` returns every (concept, span) in a text."""

    def __init__(self, concepts: Iterable[ConceptPatterns], regions: dict[str, tuple[str, ...]] | None = None) -> None:
        self.concepts = [c for c in concepts if c.patterns]
        self.historical_counts = {c.id: c.historical_counts for c in self.concepts}
        # patterns run on lower-cased text without IGNORECASE: `re` then skips branches by their first
        # literal character, which makes a bucket's prefilter nearly free on words that match nothing
        self._each = [(c.id, _compile([_strip_boundary(p) for p in c.patterns])) for c in self.concepts]
        self._buckets, self._anywhere = _buckets(self.concepts, self._each)
        self.exclusions = {c.id: re.compile("|".join(f"(?:{p})" for p in c.exclude), re.IGNORECASE)
                           for c in self.concepts if c.exclude}
        self._regions = ConceptMatcher([ConceptPatterns(rid, pats) for rid, pats in regions.items() if pats]) \
            if regions else None

    def find(self, text: str, start: int = 0, end: int | None = None) -> list[Hit]:
        out: list[Hit] = []
        low = _lower(text if start == 0 and end is None else text[start:end])  # only the part asked for
        buckets, anywhere = self._buckets, self._anywhere
        for m in WORD_START.finditer(low):
            pos = m.start()
            pre, each = buckets.get(low[pos], anywhere)
            if pre is None or not pre.match(low, pos):
                continue
            for cid, rx in each:
                hit = rx.match(low, pos)
                if hit and hit.end() > pos:
                    out.append(Hit(cid, start + pos, start + hit.end()))
        return out

    def sites(self, text: str, start: int, end: int) -> list[tuple[int, int, str]]:
        """Body regions named in text[start:end] as (start, end, region id)."""
        if self._regions is None:
            return []
        return [(h.start, h.end, h.concept) for h in self._regions.find(text, start, end) ]


Bucket = tuple[re.Pattern[str] | None, list[tuple[str, re.Pattern[str]]]]


def _compile(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns) or "(?!)")


def _strip_boundary(p: str) -> str:
    """Matching only starts at word starts, where a leading \\b always holds."""
    return p[2:] if p.startswith("\\b") else p


def _lower(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)  # keep offsets (e.g. dotted I)


def _buckets(concepts: list[ConceptPatterns], compiled: list[tuple[str, re.Pattern[str]]]
             ) -> tuple[dict[str, Bucket], Bucket]:
    """first character -> (prefilter over its concepts' patterns, those concepts); concepts that could
    start anywhere are in every bucket."""
    anywhere: list[int] = []
    by_char: dict[str, list[int]] = {}
    for i, c in enumerate(concepts):
        chars: set[str] = set()
        for p in c.patterns:
            f = first_chars(p)
            if f is None:
                anywhere.append(i)
                break
            chars |= f
        else:
            for ch in chars:
                by_char.setdefault(ch, []).append(i)

    def bucket(ids: list[int]) -> Bucket:
        if not ids:
            return None, []
        pats = [_strip_boundary(p) for i in ids for p in concepts[i].patterns]
        return _compile(pats), [compiled[i] for i in ids]

    return ({ch: bucket(sorted(set(ids) | set(anywhere))) for ch, ids in by_char.items()}, bucket(anywhere))
