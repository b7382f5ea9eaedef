"""Concept matching: every concept's text patterns compiled once, bucketed by how they can begin.

Matches start on a word boundary ("septic" never matches inside "aseptic"). Each pattern's possible
first characters (up to PREFIX_CHARS) are read from the compiled pattern; one C-level pass finds the
word starts that begin with any of them, and each such word start tries only the concepts whose
patterns can begin that way. Most words begin no concept and cost no Python work. Cost is linear in
the text and nearly flat in the number of concepts; never one regex per pattern per text."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from injectwise.language.memo import LRU, UNBOUNDED, look_ahead, look_back
from injectwise.language.phrases import WORD_START, prefixes

SITE = "site:"
PREFIX_CHARS = 3  # `find` looks up 3, 2, then 1 characters; 3 already leaves most words without a candidate


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
        self._buckets, self._anywhere, self._starts = _buckets(self.concepts)
        # how far before / after a word start any concept pattern can read (for `find_sentences`)
        self.behind = look_back(_strip_boundary(p) for c in self.concepts for p in c.patterns)
        self.exclusions = {c.id: re.compile("|".join(f"(?:{p})" for p in c.exclude), re.IGNORECASE)
                           for c in self.concepts if c.exclude}

    def find(self, text: str, start: int = 0, end: int | None = None) -> list[Hit]:
        out: list[Hit] = []
        low = _lower(text if start == 0 and end is None else text[start:end])  # only the part asked for
        buckets, anywhere = self._buckets, self._anywhere
        starts = self._starts if not anywhere.ids else WORD_START
        for m in starts.finditer(low):
            pos = m.start()
            # the longest known prefix (PREFIX_CHARS = 3) names the bucket
            b = buckets.get(low[pos:pos + 3]) or buckets.get(low[pos:pos + 2]) or buckets.get(low[pos], anywhere)
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

    def find_sentences(self, text: str, spans: list[tuple[int, int]], memo: LRU[tuple[str, str], Any]) -> list[Hit]:
        """`find(text)`, exactly, given the text's sentence spans (every word start lies in one), reusing
        what a sentence decides alone. A word start whose match attempts read only inside its sentence
        (and the few characters before it, which the memo key holds) gives the same hits wherever the
        sentence appears; a word start that may read past the sentence's end (a pattern with no upper
        length, or one within reach of the end) is matched against the whole text every time."""
        out: list[Hit] = []
        low = _lower(text)
        starts = self._starts if not self._anywhere.ids else WORD_START
        behind = self.behind
        for a, e in spans:
            lo = max(0, a - behind)
            key = (low[lo:a], low[a:e])
            entry = memo.get(key)
            if entry is None:
                entry = self._local(low[lo:e], a - lo, e - lo, starts)
                memo.put(key, entry)
            for rel, found in entry:
                pos = a + rel
                if found is None:
                    self._match_at(low, pos, out)
                else:
                    out += [Hit(c, pos, pos + n) for c, n in found]
            for m in starts.finditer(low, max(a, e - PREFIX_CHARS + 1)):  # the last word starts: read live
                pos = m.start()
                if pos >= e:
                    break
                self._match_at(low, pos, out)
        return out

    def _bucket(self, low: str, pos: int) -> _Bucket:
        """The bucket of the longest known prefix (PREFIX_CHARS = 3) at `pos`."""
        buckets = self._buckets
        return buckets.get(low[pos:pos + 3]) or buckets.get(low[pos:pos + 2]) or buckets.get(low[pos], self._anywhere)

    def _match_at(self, low: str, pos: int, out: list[Hit]) -> None:
        b = self._bucket(low, pos)
        k = 0
        while k < len(b.ids):
            hit = b.rx(k).match(low, pos)
            if hit is None:
                break
            j = int((hit.lastgroup or "g0")[1:])
            if hit.end() > pos:
                out.append(Hit(b.ids[j], pos, hit.end()))
            k = j + 1

    def _local(self, w: str, a: int, e: int, starts: re.Pattern[str]) -> tuple[tuple[int, Any], ...]:
        """Per word start in w[a:e] before its last PREFIX_CHARS - 1 characters, relative to a: the hits as
        (concept, length) when every attempt there reads inside w[:e], else None (match it live)."""
        entry: list[tuple[int, Any]] = []
        for m in starts.finditer(w, a):
            pos = m.start()
            if pos + PREFIX_CHARS > e:
                break  # the candidate test itself may read past the sentence: left to the live pass
            b = self._bucket(w, pos)
            if pos + b.reach > e:
                entry.append((pos - a, None))
                continue
            found: list[Hit] = []
            self._match_at(w, pos, found)
            if found:
                entry.append((pos - a, tuple((h.concept, h.end - pos) for h in found)))
        return tuple(entry)


def split_sites(hits: list[Hit]) -> tuple[list[Hit], list[tuple[int, int, str]]]:
    """(concept hits, body-site marks as (start, end, region id)) of one `find`."""
    concepts = [h for h in hits if not h.concept.startswith(SITE)]
    sites = [(h.start, h.end, h.concept[len(SITE):]) for h in hits if h.concept.startswith(SITE)]
    return concepts, sites


class _Bucket:
    """The concepts one first character can start; `rx(k)` is the alternation of concepts k.. (one
    named group each), compiled on first use: a match names the first concept found, and the search
    resumes after it."""

    __slots__ = ("_rx", "alts", "ids", "reach")

    def __init__(self, items: list[ConceptPatterns], reach: int = UNBOUNDED) -> None:
        self.reach = max(reach, PREFIX_CHARS)  # characters from a word start its attempts may read
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


def _buckets(concepts: list[ConceptPatterns]) -> tuple[dict[str, _Bucket], _Bucket, re.Pattern[str]]:
    """(prefix -> its bucket, the bucket of concepts that could start anywhere, the word starts worth
    trying). A word start tries the bucket of the longest prefix it begins with: the concepts with a
    pattern beginning with that prefix or a shorter one, plus those that could start anywhere."""
    anywhere: list[int] = []
    by_prefix: dict[str, set[int]] = {}
    for i, c in enumerate(concepts):
        keys: set[str] = set()
        for p in c.patterns:
            f = prefixes(_strip_boundary(p), PREFIX_CHARS)
            if f is None:
                anywhere.append(i)
                break
            keys |= f
        else:
            for key in keys:
                by_prefix.setdefault(key, set()).add(i)
    reach = [max(look_ahead(_strip_boundary(p)) for p in c.patterns) for c in concepts]
    shared: dict[tuple[int, ...], _Bucket] = {}  # one bucket (and its compiled patterns) per set of concepts
    buckets = {}
    for key in by_prefix:
        ids = set(anywhere).union(*(by_prefix.get(key[:n], ()) for n in range(1, len(key) + 1)))
        order = tuple(sorted(ids))
        if order not in shared:
            shared[order] = _Bucket([concepts[i] for i in order], max((reach[i] for i in order), default=0))
        buckets[key] = shared[order]
    return buckets, _Bucket([concepts[i] for i in anywhere], max((reach[i] for i in anywhere), default=0)), \
        _word_starts(by_prefix)


def _word_starts(keys: Iterable[str]) -> re.Pattern[str]:
    """A word start followed by one of the prefixes, as one trie-shaped pattern (one C-level pass)."""
    trie: dict[str, Any] = {}
    for key in sorted(keys, key=len):
        node = trie
        for ch in key:
            if "" in node:
                break  # a shorter prefix already admits this one
            node = node.setdefault(ch, {})
        else:
            node[""] = {}
    body = _trie_regex(trie)
    return re.compile(rf"\b(?=\w)(?={body})" if body else r"(?!)")


def _trie_regex(node: dict[str, Any]) -> str:
    if "" in node:
        return ""
    alts = [re.escape(ch) + _trie_regex(sub) for ch, sub in sorted(node.items())]
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
