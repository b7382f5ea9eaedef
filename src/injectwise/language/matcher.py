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

SITE = "site:"


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
        # body regions ride in the same pass as concepts, under a prefixed id (see `split_sites`)
        self.concepts += [ConceptPatterns(SITE + rid, pats) for rid, pats in (regions or {}).items() if pats]
        # patterns run on lower-cased text without IGNORECASE: `re` then skips branches by their first
        # literal character, so a bucket costs little on words that match nothing
        self._buckets, self._anywhere = _buckets(self.concepts)
        self.exclusions = {c.id: re.compile("|".join(f"(?:{p})" for p in c.exclude), re.IGNORECASE)
                           for c in self.concepts if c.exclude}

    def find(self, text: str, start: int = 0, end: int | None = None) -> list[Hit]:
        out: list[Hit] = []
        low = _lower(text if start == 0 and end is None else text[start:end])  # only the part asked for
        buckets, anywhere = self._buckets, self._anywhere
        for m in WORD_START.finditer(low):
            pos = m.start()
            b = buckets.get(low[pos], anywhere)
            k = 0
            while k < len(b.ids):  # one match call per concept found, plus one
                hit = b.rx(k).match(low, pos)
                if hit is None:
                    break
                j = int((hit.lastgroup or "g0")[1:])
                if hit.end() > pos:
                    out.append(Hit(b.ids[j], start + pos, start + hit.end()))
                k = j + 1
        return out


def split_sites(hits: list[Hit]) -> tuple[list[Hit], list[tuple[int, int, str]]]:
    """(concept hits, body-site marks as (start, end, region id)) of one `find`."""
    concepts = [h for h in hits if not h.concept.startswith(SITE)]
    sites = [(h.start, h.end, h.concept[len(SITE):]) for h in hits if h.concept.startswith(SITE)]
    return concepts, sites


class _Bucket:
    """The concepts one first character can start; `rx(k)` is the alternation of concepts k.. (one
    named group each), compiled on first use: a match names the first concept found, and the search
    resumes after it."""

    __slots__ = ("_rx", "alts", "ids")

    def __init__(self, items: list[ConceptPatterns]) -> None:
        self.ids = [c.id for c in items]
        self.alts = ["|".join(f"(?:{_strip_boundary(p)})" for p in c.patterns) for c in items]
        self._rx: dict[int, re.Pattern[str]] = {}

    def rx(self, k: int) -> re.Pattern[str]:
        r = self._rx.get(k)
        if r is None:
            r = self._rx[k] = re.compile("|".join(f"(?P<g{j}>{self.alts[j]})" for j in range(k, len(self.alts))))
        return r


def _strip_boundary(p: str) -> str:
    """Matching only starts at word starts, where a leading \\b always holds."""
    return p[2:] if p.startswith("\\b") else p


def _lower(text: str) -> str:
    low = text.lower()
    if len(low) == len(text):
        return low
    return "".join(ch if len(ch.lower()) != 1 else ch.lower() for ch in text)  # keep offsets (e.g. dotted I)


def _buckets(concepts: list[ConceptPatterns]) -> tuple[dict[str, _Bucket], _Bucket]:
    """first character -> its bucket; concepts that could start anywhere are in every bucket."""
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
    buckets = {ch: _Bucket([concepts[i] for i in sorted(set(ids) | set(anywhere))]) for ch, ids in by_char.items()}
    return buckets, _Bucket([concepts[i] for i in anywhere])
