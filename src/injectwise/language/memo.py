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
    """A least-recently-used map of at most `maxsize` entries (values must not be None)."""

    __slots__ = ("_d", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._d: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        d = self._d
        v = d.get(key)
        if v is not None:
            d.move_to_end(key)
        return v

    def put(self, key: K, value: V) -> None:
        d = self._d
        d[key] = value
        if len(d) > self.maxsize:
            d.popitem(last=False)

    def clear(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


def look_back(patterns: Iterable[re.Pattern[str] | None]) -> int:
    """How many characters before its start position any of `patterns` can read: one for a word boundary
    or line anchor, plus the widest look-behind (widths summed when nested; look-behinds are fixed-width)."""
    reach = 0
    for p in patterns:
        if p is None:
            continue
        reach = max(reach, _behind(list(sre_parse.parse(p.pattern, p.flags))))
    return reach + 1


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


class SentenceMemo:
    """The per-sentence memo `analyze_text` uses: an LRU plus how far back a sentence's patterns look."""

    __slots__ = ("cache", "reach")

    def __init__(self, maxsize: int, reach: int) -> None:
        self.cache: LRU[tuple[Any, ...], tuple[tuple[Any, ...], ...]] = LRU(maxsize)
        self.reach = reach
