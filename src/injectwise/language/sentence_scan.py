"""Which of several prefilter patterns begin a match inside each sentence of a text, exactly as scanning the
whole text with each pattern would say, with what a sentence decides alone memoised by its text.

Why: a note runs a handful of whole-note prefilters (allergy, injection, lab words...) only to learn which
sentences to read closely; sentences recur across notes, and most of them decide every prefilter on their
own. A candidate position (a prefix of the pattern begins there, see `phrases.Scanner`) is decided by the
sentence alone when its attempt cannot read past the sentence: its pattern is short enough, or the sentence
ends in punctuation the pattern can never consume. Candidates within a prefix's length of the end, and
candidates that may read on, are matched against the whole text every time. Matches do not overlap, as in
`finditer`: one that runs on into the next sentence hides the candidates it covers, so the scan carries
each pattern's last match end from sentence to sentence."""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from typing import Any

from injectwise.language.memo import LRU, look_ahead, look_back, never_consumed
from injectwise.language.phrases import Scanner, prefixes

_GAP = frozenset(" \t\n\r\f\v-*•·>")  # what the sentence splitter leaves between sentences (white space, bullets)
_Entry = tuple[frozenset[str] | None, tuple[Any, ...]]


class _One:
    """One prefilter: its pattern, candidate test and what its attempts can read."""

    __slots__ = ("keys", "match", "name", "part_keys", "reach", "starts", "stops")

    def __init__(self, name: str, scanner: Scanner, k: int) -> None:
        p = scanner.pattern
        self.name = name
        self.match = p.match
        self.starts: re.Pattern[str] = scanner._starts  # type: ignore[assignment]
        keys = prefixes(p.pattern, k, ascii_classes=True) or frozenset()
        self.keys = keys
        self.part_keys = frozenset(key[:j] for key in keys for j in range(1, len(key) + 1))
        self.reach = look_ahead(p.pattern)
        self.stops = never_consumed(p.pattern, string.punctuation)

    def may_start(self, u: str) -> bool:
        """Could a candidate begin at a position followed by `u` and then unknown text?"""
        return u in self.part_keys or any(u[:j] in self.keys for j in range(1, len(u)))


class SentenceScreens:
    """`near(low, spans)`: per sentence span, the names of the prefilters with a match starting inside it,
    as `[m.start() for m in scanner.finditer(low)]` placed into the spans would give."""

    def __init__(self, scanners: dict[str, Scanner], k: int = 3, memo_size: int = 4096) -> None:
        self.scanners = scanners
        self.k = k
        usable = all(s._starts is not None for s in scanners.values())
        self.ones = [_One(n, s, k) for n, s in scanners.items()] if usable else []
        # sentence by sentence only when no candidate can begin between sentences
        self.usable = usable and not any(key[0] in _GAP or key[0].isspace() for o in self.ones for key in o.keys)
        self.behind = look_back([s.pattern for s in scanners.values()]) if self.usable else 0
        self.memo: LRU[tuple[str, str], _Entry] = LRU(memo_size)

    def near(self, low: str, spans: list[tuple[int, int]]) -> list[frozenset[str]]:
        if not self.usable or not low.isascii():
            return self._whole(low, spans)
        out: list[frozenset[str]] = []
        ends = [0] * len(self.ones)  # each pattern's last match end (matches do not overlap)
        carry = 0
        memo, behind = self.memo, self.behind
        for a, e in spans:
            lo = max(0, a - behind)
            key = (low[lo:a], low[a:e])
            entry = memo.get(key)
            if entry is None:
                entry = self._local(low[lo:e], a - lo, e - lo)
                memo.put(key, entry)
            fast, per = entry
            if fast is not None and carry <= a:
                out.append(fast)  # its matches end inside it: nothing carries on
                continue
            names = []
            for i, (one, (cands, tail)) in enumerate(zip(self.ones, per, strict=True)):
                end, hit = ends[i], False
                for rel, res in cands:
                    pos = a + rel
                    if pos < end:
                        continue
                    if res is None:
                        m = one.match(low, pos)
                        if m is not None:
                            hit, end = True, m.end()
                    elif res >= 0:
                        hit, end = True, a + res
                if tail:
                    for pos in range(max(a, e - self.k + 1), e):  # the last characters: read live
                        if pos >= end and one.starts.match(low, pos) and (m := one.match(low, pos)) is not None:
                            hit, end = True, m.end()
                ends[i] = end
                if hit:
                    names.append(one.name)
            carry = max(ends)
            out.append(frozenset(names))
        return out

    def _local(self, w: str, a: int, e: int) -> _Entry:
        """Per prefilter: its candidates in w[a:e] (but the last k - 1 characters) as (position, match end),
        relative to a (end -1: no match; None: may read past the sentence, match live), and whether a
        candidate may begin in those last characters. With every candidate decided here and none possible
        at the end, also the names with a match (assuming no match runs in from before)."""
        per = []
        names = []
        decided = True
        safe_end = w[e - 1]
        for one in self.ones:
            cands: list[tuple[int, int | None]] = []
            for c in one.starts.finditer(w, a):
                pos = c.start()
                if pos + self.k > e:
                    break
                if pos + one.reach > e and safe_end not in one.stops:
                    cands.append((pos - a, None))
                    decided = False
                    continue
                m = one.match(w, pos)
                cands.append((pos - a, m.end() - a if m is not None else -1))
            tail = any(one.may_start(w[pos:e]) for pos in range(max(a, e - self.k + 1), e))
            decided = decided and not tail
            per.append((tuple(cands), tail))
            end = 0
            for rel, res in cands:
                if rel >= end and res is not None and res >= 0:
                    end = res
                    names.append(one.name)
                    break
        return (frozenset(names) if decided else None), tuple(per)

    def _whole(self, low: str, spans: list[tuple[int, int]]) -> list[frozenset[str]]:
        """The plain way: each pattern over the whole text, each match start placed in its sentence."""
        starts = [a for a, _ in spans]
        sets: list[set[str]] = [set() for _ in spans]
        for name, scanner in self.scanners.items():
            for m in scanner.finditer(low):
                i = bisect_right(starts, m.start()) - 1
                if i >= 0 and m.start() < spans[i][1]:
                    sets[i].add(name)
        return [frozenset(s) for s in sets]
