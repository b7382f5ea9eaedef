"""Concept matching: every concept's text patterns compiled once into one finder.

One regex scan finds the positions where any concept pattern starts (on a word boundary: "septic"
never matches inside "aseptic"); only those few positions are then tried per concept. Cost is one
linear pass per text plus a small constant per hit, never one regex per pattern per text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


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
        alts = [p for c in self.concepts for p in c.patterns]
        self._finder = re.compile(r"(?<!\w)(?=" + ("|".join(f"(?:{p})" for p in alts) or "(?!)") + ")", re.IGNORECASE)
        self._each = [(c.id, re.compile("|".join(f"(?:{p})" for p in c.patterns), re.IGNORECASE))
                      for c in self.concepts]
        self.exclusions = {c.id: re.compile("|".join(f"(?:{p})" for p in c.exclude), re.IGNORECASE)
                           for c in self.concepts if c.exclude}
        regions = regions or {}
        self._region_names = {f"r{i}": rid for i, rid in enumerate(regions)}
        self._regions = re.compile("|".join(
            f"(?P<r{i}>{'|'.join(f'(?:{p})' for p in pats)})" for i, pats in enumerate(regions.values()) if pats)
            or r"(?!)", re.IGNORECASE)

    def find(self, text: str) -> list[Hit]:
        out: list[Hit] = []
        for m in self._finder.finditer(text):
            pos = m.start()
            for cid, rx in self._each:
                hit = rx.match(text, pos)
                if hit and hit.end() > pos:
                    out.append(Hit(cid, pos, hit.end()))
        return out

    def sites(self, text: str, start: int, end: int) -> list[tuple[int, int, str]]:
        """Body regions named in text[start:end] as (start, end, region id)."""
        return [(m.start(), m.end(), self._region_names[m.lastgroup or ""])
                for m in self._regions.finditer(text, start, end) if m.lastgroup]
