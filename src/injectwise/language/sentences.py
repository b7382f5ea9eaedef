"""Sentence splitting for clinical text, standard library only.

A full stop ends a sentence only before whitespace and a non-lower-case word, and never after a
listed abbreviation ("Dr.", "e.g.", "vs."); decimals ("38.7") and dates ("9/10/2025") have no
whitespace after the dot so never split. Line breaks split too (notes are lists and headings),
except a wrapped line (lower-case word, digit, comma or bracket; break; lower-case word)."""

from __future__ import annotations

import re
import string

from injectwise.language.model import Sentence

_BOUNDARY = re.compile(r"[.!?]+(?=\s|$)|\n")
_WORD_BEFORE = re.compile(r"([\w.]+)$")
_NEXT = re.compile(r"\s*(\S)")
_BULLET = re.compile(r"[\s\-*•·>]+")
_WRAP_END = re.compile(r"[a-z0-9,)%]$")  # "Pain 5/10\nbefore": a wrapped line too
# a header line ("Date: 04/13/2026") is never wrapped into the prose under it ("six week review after ...")
_HEADER_LINE = re.compile(r"(?:^|\n)[ \t]*(?:date|dos|date of (?:service|visit)|visit date|seen|dob|mrn|time)[ \t]*:[^\n]*$",
                          re.I)
# A question answered in a word ("Is she pregnant? No.", "Fever? None"): one sentence, so the answer reaches
# what was asked
_ANSWER = re.compile(r"\s*(?:no|none|nil|negative|neg|denies|denied|yes|positive)\b[ \t]*(?:[.!;,]|\n|$)", re.I)


def split_sentences(text: str, abbreviations: frozenset[str]) -> list[Sentence]:
    out: list[Sentence] = []
    start = 0
    for m in _BOUNDARY.finditer(text):
        b, f = m.span()
        if text[b] == "\n":
            before = text[start:b].rstrip(" \t\r")
            nxt = _NEXT.match(text, f)
            if before and nxt and _WRAP_END.search(before) and nxt.group(1).islower() \
                    and "\n" not in text[f:nxt.start(1)] and not _HEADER_LINE.search(before):
                continue  # a wrapped line of prose
            end = b
        elif text[b] == "?" and f - b == 1 and _ANSWER.match(text, f):
            continue
        else:
            nxt = _NEXT.match(text, f)
            single_stop = f - b == 1 and text[b] == "."  # only a single full stop can follow an abbreviation
            word = _word_before(text, start, b) if single_stop else None
            if nxt and nxt.group(1).islower():
                # "approx. three", "e.g. knee", "9 a.m. today": an abbreviation's stop. After any other word the
                # sentence ended and the next was typed without its capital ("no trauma. hot swollen knee"): read
                # as one, a negation would reach into the next sentence.
                if not single_stop or (word and _lower_case_follows_abbreviation(word, abbreviations)):
                    continue
            elif word and _abbreviation(word, abbreviations):
                continue
            end = f
        _add(out, text, start, end)
        start = f
    _add(out, text, start, len(text))
    return out


def _word_before(text: str, start: int, end: int) -> str | None:
    """`_WORD_BEFORE.search(text, start, end).group(1)` (the run of word characters and dots just before
    `end`, not before `start`), read backwards character by character; a non-ASCII character on the way is
    left to the pattern (which knows Unicode word characters)."""
    q = end - 1 if end > start and text[end - 1] == "\n" else end  # `$` also matches before a final line break
    p = q
    while p > start:
        ch = text[p - 1]
        if ch in _ASCII_WORD:
            p -= 1
        elif ch.isascii():
            break
        else:
            m = _WORD_BEFORE.search(text, start, end)
            return m.group(1) if m else None
    return text[p:q] if p < q else None


_ASCII_WORD = frozenset(string.ascii_letters + string.digits + "_.")


def _lower_case_follows_abbreviation(word: str, abbreviations: frozenset[str]) -> bool:
    """Before a lower-case word: a listed abbreviation in any case or a dotted one ("a.m", "b.i.d", "e.g").
    A number ("38.7. then"), a word or a capitalised acronym ("PT. then") ends the sentence."""
    bare = word.rstrip(".")
    if bare.lower() in abbreviations:
        return not (len(bare) >= 2 and bare.isalpha() and bare.isupper())
    if "." in bare:
        return all(part.isalpha() for part in bare.split("."))
    return False  # a lone letter is a unit's end ("28 mg/L. suspect ...") as often as an initial


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
