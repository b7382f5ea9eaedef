"""Concept matching: every concept's text patterns compiled once, bucketed by how they can begin.

Matches start on a word boundary ("septic" never matches inside "aseptic"). Each pattern's possible
first characters (up to PREFIX_CHARS) are read from the compiled pattern; one C-level pass finds the
word starts that begin with any of them, and each such word start tries only the concepts whose
patterns can begin that way. Most words begin no concept and cost no Python work. Cost is linear in
the text and nearly flat in the number of concepts; never one regex per pattern per text."""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from injectwise.language.memo import LRU, UNBOUNDED, Doorkeeper, look_ahead, look_back, never_consumed
from injectwise.language.phrases import WORD_START, Screen, prefixes

SITE = "site:"
_START = itemgetter(1)
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
        # each behind its literal screen: a clause holding none of an exclusion's words runs no search
        self._exclusion_screens = {cid: Screen(rx) for cid, rx in self.exclusions.items()}

    def excluded(self, concept: str, text: str, start: int, end: int) -> bool:
        """Does the concept's exclusion match in text[start:end] (`exclusions[concept].search(text, start, end)`)?"""
        rx = self.exclusions.get(concept)
        if rx is None:
            return False
        if not self._exclusion_screens[concept].could_match(text[start:end]):
            return False  # the words any match consumes are not there (look-arounds need none of them)
        return rx.search(text, start, end) is not None

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
        """`find(text)`, exactly, by way of `by_sentence`."""
        per = self.by_sentence(text, spans, memo)
        assert per is not None  # no doorkeeper: always by sentence
        return [Hit(c, a + x, a + y) for (a, _), rel in zip(spans, per, strict=True) for c, x, y in rel]

    def by_sentence(self, text: str, spans: list[tuple[int, int]], memo: LRU[tuple[str, str], Any],
                    door: Doorkeeper | None = None) -> list[tuple[tuple[str, int, int], ...]] | None:
        """The hits of `find(text)` per sentence span, as (concept, start, end) relative to the span's start
        (every word start lies in one span; spans are in order). Reuses what a sentence decides alone: a
        word start whose match attempts read only inside its sentence (and the few characters before it,
        which the memo key holds) gives the same hits wherever the sentence appears; a word start that
        may read past the sentence's end is matched against the whole text every time. With a `door`:
        None when the text is mostly new sentences (read it the plain way, `find`)."""
        out: list[tuple[tuple[str, int, int], ...]] = []
        low = _lower(text)
        starts = self._starts if not self._anywhere.ids else WORD_START
        behind = self.behind
        tail = PREFIX_CHARS - 1
        keys = [(low[max(0, a - behind):a], low[a:e]) for a, e in spans]
        entries = [memo.get(key) for key in keys]
        if door is not None and door.plain(keys, entries):
            return None
        for (a, e), key, entry in zip(spans, keys, entries, strict=True):
            if entry is None:
                lo = max(0, a - behind)
                entry = self._local(low[lo:e], a - lo, e - lo, starts)
                memo.put(key, entry)
            rel, live = entry
            extra: list[Hit] = []
            for pos in live:
                self._match_at(low, a + pos, extra)
            for m in starts.finditer(low, max(a, e - tail)):  # the last word starts: read live
                if m.start() >= e:
                    break
                self._match_at(low, m.start(), extra)
            if extra:  # hits are in word-start order: a live word start's hits go in at their place
                rel = tuple(sorted(rel + tuple((h.concept, h.start - a, h.end - a) for h in extra), key=_START))
            out.append(rel)
        return out

    def _bucket(self, low: str, pos: int) -> _Bucket:
        """The bucket of the longest known prefix (PREFIX_CHARS = 3) at `pos`."""
        buckets = self._buckets
        return buckets.get(low[pos:pos + 3]) or buckets.get(low[pos:pos + 2]) or buckets.get(low[pos], self._anywhere)

    def _match_at(self, low: str, pos: int, out: list[Hit], b: _Bucket | None = None) -> None:
        if b is None:
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

    def _local(self, w: str, a: int, e: int, starts: re.Pattern[str]) -> tuple[tuple[tuple[str, int, int], ...],
                                                                                tuple[int, ...]]:
        """For the word starts in w[a:e] but its last PREFIX_CHARS - 1 characters: (the hits of those whose
        every attempt reads inside w[:e], as (concept, start, end) relative to a; the positions, relative
        to a, of the others, to be matched live)."""
        hits: list[tuple[str, int, int]] = []
        live: list[int] = []
        for m in starts.finditer(w, a):
            pos = m.start()
            if pos + PREFIX_CHARS > e:
                break  # the candidate test itself may read past the sentence: left to the live pass
            b = self._bucket(w, pos)
            if pos + b.reach > e and w[e - 1] not in b.stops:
                live.append(pos - a)
                continue
            found: list[Hit] = []
            self._match_at(w, pos, found, b)
            hits += [(h.concept, h.start - a, h.end - a) for h in found]
        return tuple(hits), tuple(live)


def split_sites(hits: list[Hit]) -> tuple[list[Hit], list[tuple[int, int, str]]]:
    """(concept hits, body-site marks as (start, end, region id)) of one `find`."""
    concepts = [h for h in hits if not h.concept.startswith(SITE)]
    sites = [(h.start, h.end, h.concept[len(SITE):]) for h in hits if h.concept.startswith(SITE)]
    return concepts, sites


class _Bucket:
    """The concepts one first character can start; `rx(k)` is the alternation of concepts k.. (one
    named group each), compiled on first use: a match names the first concept found, and the search
    resumes after it."""

    __slots__ = ("_rx", "alts", "ids", "reach", "stops")

    def __init__(self, items: list[ConceptPatterns], reach: int = UNBOUNDED, stops: frozenset[str] = frozenset()) -> None:
        self.reach = max(reach, PREFIX_CHARS)  # characters from a word start its attempts may read
        self.stops = stops  # punctuation no attempt can consume: a sentence ending in one is never read past
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
    stops = [frozenset.intersection(*(never_consumed(_strip_boundary(p), string.punctuation) for p in c.patterns))
             for c in concepts]

    def bucket(order: tuple[int, ...]) -> _Bucket:
        return _Bucket([concepts[i] for i in order], max((reach[i] for i in order), default=0),
                       frozenset(string.punctuation).intersection(*(stops[i] for i in order)))

    shared: dict[tuple[int, ...], _Bucket] = {}  # one bucket (and its compiled patterns) per set of concepts
    buckets = {}
    for key in by_prefix:
        ids = set(anywhere).union(*(by_prefix.get(key[:n], ()) for n in range(1, len(key) + 1)))
        order = tuple(sorted(ids))
        if order not in shared:
            shared[order] = bucket(order)
        buckets[key] = shared[order]
    return buckets, bucket(tuple(anywhere)), _word_starts(by_prefix)


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
