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
from bisect import bisect_left, bisect_right

from injectwise.language.memo import LRU, Doorkeeper, look_ahead, look_back, never_consumed
from injectwise.language.phrases import Scanner, prefixes

_GAP = frozenset(" \t\n\r\f\v-*•·>")  # what the sentence splitter leaves between sentences (white space, bullets)
_Entry = tuple[frozenset[str] | None, tuple[tuple[int, tuple[tuple[int, int | None], ...], bool], ...]]


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
        self._tails: dict[str, frozenset[int]] = {}
        self.door = Doorkeeper(memo_size)  # mostly new sentences: the plain whole-text scans

    def near(self, low: str, spans: list[tuple[int, int]]) -> list[frozenset[str]]:
        if not self.usable or not low.isascii():
            return self._whole(low, spans)
        out: list[frozenset[str]] = []
        ends = [0] * len(self.ones)  # each pattern's last match end (matches do not overlap)
        carry = 0
        memo, behind, ones, k = self.memo, self.behind, self.ones, self.k
        keys = [(low[max(0, a - behind):a], low[a:e]) for a, e in spans]
        entries = [memo.get(key) for key in keys]
        if self.door.plain(keys, entries):
            return self._whole(low, spans)
        missing = entries.count(None)
        # the candidates of the sentences read afresh: from one scan of the whole text when many are
        whole = self._candidates(low) if missing * 4 > len(spans) else None
        for (a, e), key, entry in zip(spans, keys, entries, strict=True):
            if entry is None:
                entry = self._local(low, a, e, whole or self._candidates(low, a, e))
                memo.put(key, entry)
            fast, per = entry
            if fast is not None and carry <= a:
                out.append(fast)  # its matches end inside it: nothing carries on
                continue
            names = []
            for i, cands, tail in per:
                one = ones[i]
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
                    for pos in range(max(a, e - k + 1), e):  # the last characters: read live
                        if pos >= end and one.starts.match(low, pos) and (m := one.match(low, pos)) is not None:
                            hit, end = True, m.end()
                ends[i] = end
                if hit:
                    names.append(one.name)
            carry = max(ends)
            out.append(frozenset(names))
        return out

    def _candidates(self, low: str, a: int = 0, e: int | None = None) -> tuple[list[int], list[int]]:
        """Every pattern's candidate positions in low[a:e] (the whole text by default; a candidate test
        looks ahead, so only those before e's last k - 1 characters are sure), in order, and whose each is."""
        end = len(low) if e is None else e
        pairs = sorted((c.start(), i) for i, one in enumerate(self.ones) for c in one.starts.finditer(low, a, end))
        return [p for p, _ in pairs], [i for _, i in pairs]

    def _local(self, low: str, a: int, e: int, found: tuple[list[int], list[int]]) -> _Entry:
        """What sentence low[a:e] decides alone: for each pattern with something there, (its index, its
        candidates but in the last k - 1 characters as (position, match end) relative to a, end -1 for no
        match and None for a candidate that may read past the sentence (matched live), whether a candidate
        may begin in those last characters). With every candidate decided and none possible at the end,
        also the names with a match (no match running in from before). `found`: `_candidates` of the
        whole text (a candidate test reads at most k characters, so those before the end are the same)."""
        positions, owners = found
        cands: dict[int, list[tuple[int, int | None]]] = {}
        decided = True
        safe_end = low[e - 1]
        last = e - self.k
        for j in range(bisect_left(positions, a), len(positions)):
            pos = positions[j]
            if pos > last:
                break
            i = owners[j]
            one = self.ones[i]
            if pos + one.reach > e and safe_end not in one.stops:
                cands.setdefault(i, []).append((pos - a, None))
                decided = False
                continue
            m = one.match(low, pos)  # reads inside the sentence (and before it): the same anywhere
            cands.setdefault(i, []).append((pos - a, m.end() - a if m is not None else -1))
        tails = self._tail(low[max(a, e - self.k + 1):e])
        decided = decided and not tails
        per = tuple((i, tuple(cands.get(i, ())), i in tails) for i in sorted(set(cands) | tails))
        names = frozenset(self.ones[i].name for i, cs, _ in per if any(res is not None and res >= 0 for _, res in cs))
        return (names if decided else None), per

    def _tail(self, u: str) -> frozenset[int]:
        """The patterns a candidate may begin for in a sentence's last characters `u` (text unknown after)."""
        got = self._tails.get(u)
        if got is None:
            got = frozenset(i for i, one in enumerate(self.ones) for j in range(len(u)) if one.may_start(u[j:]))
            if len(self._tails) < 65536:
                self._tails[u] = got
        return got

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
