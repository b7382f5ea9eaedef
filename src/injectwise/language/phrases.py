"""Fast literal-phrase and pattern lookup, so cost does not grow with the size of the vocabularies.

Python's `re` tries every branch of an alternation at every position, so a 400-pattern
alternation costs ~15 us per word. Instead: trigger phrases are token sequences looked up in a
dict by their first token; concept patterns are bucketed by the characters they can start with
(read from the compiled pattern), so each word start tries only the few patterns that could match."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

TOKEN = re.compile(r"\w+|[^\w\s]")
WORD_START = re.compile(r"\b\w")


def tokens(phrase: str) -> tuple[str, ...]:
    return tuple(t.lower() for t in TOKEN.findall(phrase))


class PhraseIndex:
    """Longest-first, non-overlapping matching of token phrases, each carrying a label."""

    def __init__(self, phrases: Iterable[tuple[str, Any]]) -> None:
        index: dict[str, list[tuple[list[str], int, Any]]] = {}
        for phrase, label in phrases:
            toks = tokens(phrase)
            if toks:
                index.setdefault(toks[0], []).append((list(toks), len(toks), label))
        for v in index.values():
            v.sort(key=lambda e: -e[1])
        self.index = index

    def find(self, text: str, start: int, end: int) -> list[tuple[int, int, Any]]:
        part = text[start:end]
        low = part.lower()
        if len(low) == len(part):  # one lower-casing per call, offsets unchanged
            found = list(TOKEN.finditer(low))
            words = [m.group() for m in found]
            base = start
        else:  # a character whose lower case is longer (dotted I): tokens of the original text
            found = list(TOKEN.finditer(text, start, end))
            words = [m.group().lower() for m in found]
            base = 0
        out = []
        index = self.index
        i, n = 0, len(words)
        while i < n:
            cands = index.get(words[i])
            step = 1
            if cands:
                for phrase, k, label in cands:
                    if k == 1 or words[i:i + k] == phrase:
                        out.append((base + found[i].start(), base + found[i + k - 1].end(), label))
                        step = k
                        break
            i += step
        return out


def first_chars(pattern: str) -> frozenset[str] | None:
    """Lower-case characters a (case-insensitive) pattern can start with; None when it could start anywhere."""
    try:
        parsed = sre_parse.parse(pattern, re.IGNORECASE)
    except re.error:
        return None
    return _first(list(parsed))


def _first(items: list[Any]) -> frozenset[str] | None:
    out: set[str] = set()
    for op, av in items:
        name = str(op)
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero-width
        if name == "LITERAL":
            return frozenset(out | {chr(av).lower()})
        if name == "IN":
            chars = set()
            for iop, iav in av:
                iname = str(iop)
                if iname == "LITERAL":
                    chars.add(chr(iav).lower())
                elif iname == "RANGE" and iav[1] - iav[0] < 64:
                    chars |= {chr(c).lower() for c in range(iav[0], iav[1] + 1)}
                else:
                    return None
            return frozenset(out | chars)
        if name == "BRANCH":
            for sub in av[1]:
                f = _first(list(sub))
                if f is None:
                    return None
                out |= f
            return frozenset(out)
        if name == "SUBPATTERN":
            f = _first(list(av[-1]))
            if f is None:
                return None
            return frozenset(out | f)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, _, sub = av
            f = _first(list(sub))
            if f is None:
                return None
            out |= f
            if lo > 0:
                return frozenset(out)
            continue
        return None
    return None  # everything optional: could match anywhere
