"""Sentence splitting for clinical text, standard library only.

A full stop ends a sentence only before whitespace and a non-lower-case word, and never after a
listed abbreviation ("Dr.", "e.g.", "vs."); decimals ("38.7") and dates ("9/10/2025") have no
whitespace after the dot so never split. Line breaks split too (notes are lists and headings),
except a wrapped line (lower-case word, break, lower-case word)."""

from __future__ import annotations

import re

from injectwise.language.model import Sentence

_BOUNDARY = re.compile(r"[.!?]+(?=\s|$)|\n")
_WORD_BEFORE = re.compile(r"([\w.]+)$")
_NEXT = re.compile(r"\s*(\S)")
_BULLET = re.compile(r"[\s\-*•·>]+")
_WRAP_END = re.compile(r"[a-z,]$")


def split_sentences(text: str, abbreviations: frozenset[str]) -> list[Sentence]:
    out: list[Sentence] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        if m.group() == "\n":
            before = text[start:m.start()].rstrip(" \t\r")
            nxt = _NEXT.match(text, m.end())
            if before and nxt and _WRAP_END.search(before) and nxt.group(1).islower() \
                    and "\n" not in text[m.end():nxt.start(1)]:
                continue  # a wrapped line of prose
            end = m.start()
        else:
            word = _word_before(text, start, m.start())
            if word and m.group() == "." and _abbreviation(word.group(1), abbreviations):
                continue
            nxt = _NEXT.match(text, m.end())
            if nxt and nxt.group(1).islower():
                continue
            end = m.end()
        _add(out, text, start, end)
        start = m.end()
    _add(out, text, start, len(text))
    return out


def _word_before(text: str, start: int, end: int) -> re.Match[str] | None:
    """`_WORD_BEFORE.search(text, start, end)`, looking back only a short window first (the search tries
    every position of the sentence); a run that reaches the window's edge is searched in full."""
    lo = max(start, end - _LOOK_BACK)
    word = _WORD_BEFORE.search(text, lo, end)
    if word is not None and word.start() == lo and lo > start:
        return _WORD_BEFORE.search(text, start, end)
    return word


_LOOK_BACK = 40


def _abbreviation(word: str, abbreviations: frozenset[str]) -> bool:
    """'Pt.' or 'Dr.' does not end a sentence; 'PT.' in capitals is physical therapy ending one."""
    bare = word.rstrip(".")
    return bare.lower() in abbreviations and not (len(bare) >= 2 and bare.isalpha() and bare.isupper())


def _add(out: list[Sentence], text: str, start: int, end: int) -> None:
    lead = _BULLET.match(text, start, end)
    if lead:
        start = lead.end()
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append(Sentence(start, end, text[start:end]))
