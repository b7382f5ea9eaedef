"""Bounded memo of one sentence's ConText reading, keyed on exactly what that reading depends on.

Why: clinical notes repeat their sentences (templates, copied-forward history, plans), and the per-sentence
scope and modifier work is the largest share of `analyze`. A sentence's mentions depend only on its own
text, the concept and site hits in it (found over the whole text, so a hit that runs past the sentence
carries that text into the key), whether the whole text is ASCII (which tokeniser reads it), and the few
characters before it that a look-behind or word boundary can see. The key holds all of these, so a hit
returns the same mentions, modifiers and offsets a fresh reading would. Never keyed on a whole note."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any, Generic, TypeVar

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A least-recently-used map of at most `maxsize` entries (values must not be None). Safe to share
    between threads (the service evaluates in a thread pool): each step is one atomic OrderedDict call, and
    a step that loses a race to another thread is skipped (values are immutable)."""

    __slots__ = ("_d", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        d = self._d
        v = d.get(key)
        if v is not None:
            try:  # noqa: SIM105 - cheaper than contextlib.suppress on this hot path
                d.move_to_end(key)
            except KeyError:  # evicted by another thread in between: the value is still good
                pass
        return v

    def put(self, key: K, value: V) -> None:
        d = self._d
        d[key] = value
        if len(d) > self.maxsize:
            try:  # noqa: SIM105 - cheaper than contextlib.suppress on this hot path
                d.popitem(last=False)
            except KeyError:  # emptied by another thread in between
                pass

    def clear(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


def look_back(patterns: Iterable[re.Pattern[str] | str | None]) -> int:
    """How many characters before its start position any of `patterns` can read: one for a word boundary
    or line anchor, plus the widest look-behind (widths summed when nested; look-behinds are fixed-width).
    A string pattern is read without flags."""
    reach = 0
    for p in patterns:
        if p is None:
            continue
        src, flags = (p, 0) if isinstance(p, str) else (p.pattern, p.flags)
        reach = max(reach, _behind(list(sre_parse.parse(src, flags))))
    return reach + 1


UNBOUNDED = 1 << 30


def look_ahead(pattern: str) -> int:
    """How many characters from its start position a match attempt of `pattern` (no flags) can read, at
    most: its widest match, every look-ahead's reach added, plus one for a boundary or anchor tested at the
    end. UNBOUNDED when a repeat has no upper limit or the pattern refers back to a group."""
    return min(UNBOUNDED, _ahead(list(sre_parse.parse(pattern))) + 1)


def _ahead(items: list[Any]) -> int:
    total = 0
    for op, av in items:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL", "IN", "ANY", "CATEGORY", "RANGE"):
            total += 1
        elif name == "AT":
            continue  # reads the character at the current position: the final +1 covers it
        elif name in ("ASSERT", "ASSERT_NOT"):
            total += _ahead(list(av[1])) + 1  # (look-behinds are over-counted: harmless)
        elif name == "SUBPATTERN":
            total += _ahead(list(av[-1]))
        elif name == "ATOMIC_GROUP":
            total += _ahead(list(av))
        elif name == "BRANCH":
            total += max(_ahead(list(b)) for b in av[1])
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _lo, hi, sub = av
            if hi >= UNBOUNDED or str(hi) == "MAXREPEAT":
                return UNBOUNDED
            total += hi * _ahead(list(sub))
        else:
            return UNBOUNDED
        if total >= UNBOUNDED:
            return UNBOUNDED
    return total


def _behind(items: list[Any]) -> int:
    best = 0
    for op, av in items:
        name = str(op)
        if name in ("ASSERT", "ASSERT_NOT"):
            direction, sub = av
            inner = _behind(list(sub))
            best = max(best, (sub.getwidth()[1] if direction < 0 else 0) + inner)
        elif name == "SUBPATTERN":
            best = max(best, _behind(list(av[-1])))
        elif name == "BRANCH":
            best = max([best, *(_behind(list(b)) for b in av[1])])
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            best = max(best, _behind(list(av[2])))
        elif name == "ATOMIC_GROUP":
            best = max(best, _behind(list(av)))
        elif name in ("GROUPREF_EXISTS",):
            best = max(best, _behind(list(av[1])), _behind(list(av[2])) if av[2] is not None else 0)
    return best


def never_consumed(pattern: str, chars: Iterable[str]) -> frozenset[str]:
    """The characters of `chars` that no match attempt of `pattern` (no flags) can consume, look-arounds
    included: an attempt cannot read past such a character. Conservative: anything unsure counts as
    consumable (negated classes, back-references)."""
    items = list(sre_parse.parse(pattern))
    return frozenset(c for c in chars if not _consumes(items, c))


_CATEGORY = {"CATEGORY_DIGIT": re.compile(r"\d"), "CATEGORY_WORD": re.compile(r"\w"), "CATEGORY_SPACE": re.compile(r"\s")}


def _consumes(items: list[Any], c: str) -> bool:
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            if chr(av) == c:
                return True
        elif name == "NOT_LITERAL":
            if chr(av) != c:
                return True
        elif name == "ANY":
            if c != "\n":
                return True
        elif name == "IN":
            if _in_class(av, c):
                return True
        elif name == "AT":
            continue
        elif name in ("ASSERT", "ASSERT_NOT"):
            if _consumes(list(av[1]), c):
                return True
        elif name == "SUBPATTERN":
            if _consumes(list(av[-1]), c):
                return True
        elif name == "ATOMIC_GROUP":
            if _consumes(list(av), c):
                return True
        elif name == "BRANCH":
            if any(_consumes(list(b), c) for b in av[1]):
                return True
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if _consumes(list(av[2]), c):
                return True
        else:
            return True
    return False


def _in_class(members: list[Any], c: str) -> bool:
    for op, av in members:
        name = str(op)
        if name == "LITERAL" and chr(av) == c:
            return True
        if name == "RANGE" and av[0] <= ord(c) <= av[1]:
            return True
        if name == "CATEGORY":
            rx = _CATEGORY.get(str(av))
            if rx is None or rx.match(c):
                return True
        elif name not in ("LITERAL", "RANGE"):
            return True  # NEGATE and anything else: unsure
    return False


class Doorkeeper:
    """Sentences are memoised from their second sighting: a text whose sentences are mostly new is read the
    plain way (whole-text passes, no memo upkeep), and its new sentences are remembered as seen. So text
    that never repeats costs what it did without memos, and text that does repeat is soon memoised."""

    __slots__ = ("seen",)

    def __init__(self, maxsize: int) -> None:
        self.seen: LRU[Hashable, bool] = LRU(maxsize)

    def plain(self, keys: list[Any], entries: list[Any]) -> bool:
        """Should this text be read the plain way? (More than half its sentences unmemoised and unseen.)"""
        new = [k for k, e in zip(keys, entries, strict=True) if e is None and self.seen.get(k) is None]
        if 2 * len(new) <= len(keys):
            return False
        for k in new:
            self.seen.put(k, True)
        return True

    def clear(self) -> None:
        self.seen.clear()


class SentenceMemo:
    """The per-sentence memos `analyze_text` uses: concept hits a sentence decides alone (`ConceptMatcher.
    by_sentence`) and ConText readings, plus how far back a sentence's ConText patterns look."""

    __slots__ = ("cache", "door", "hits", "reach")

    def __init__(self, maxsize: int, reach: int) -> None:
        self.cache: LRU[tuple[Any, ...], tuple[tuple[Any, ...], ...]] = LRU(maxsize)
        self.hits: LRU[tuple[str, str], tuple[tuple[int, Any], ...]] = LRU(maxsize)
        self.door = Doorkeeper(maxsize)
        self.reach = reach

    def clear(self) -> None:
        self.cache.clear()
        self.hits.clear()
        self.door.clear()
