"""Compile the ConText trigger data (knowledge/data/language.yaml) into a few regular expressions.

Every trigger category becomes part of ONE alternation (longest phrase first, pseudo-triggers
included) so a sentence is scanned once for all triggers; terminators and side words likewise."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from injectwise.core.errors import KnowledgeError

MODIFIERS = ("negated", "possible", "historical", "hypothetical", "family")
DIRECTIONS = ("forward", "backward", "bidirectional")
SIDES = ("bilateral", "right", "left")
PSEUDO = "pseudo"


@dataclass(slots=True, frozen=True)
class LanguageRules:
    version: str
    window_tokens: int
    max_text_chars: int
    triggers: re.Pattern[str]  # named groups t0..tn; `kinds[name]` says (modifier, direction)
    kinds: dict[str, tuple[str, str]]
    terminators: re.Pattern[str]
    list_conjunction: re.Pattern[str]
    sides: re.Pattern[str]  # named groups s0..sn; `side_names[name]` says which side
    side_names: dict[str, str]
    abbreviations: frozenset[str]


def phrase_regex(phrase: str) -> str:
    """A literal phrase, whitespace-tolerant, on word boundaries where it starts/ends with a word character."""
    words = [re.escape(w) for w in phrase.split()]
    body = r"\s+".join(words)
    if phrase[:1].isalnum():
        body = r"(?<![\w/])" + body
    if phrase[-1:].isalnum():
        body = body + r"(?![\w/])"
    return body


def _strings(where: str, v: Any) -> list[str]:
    if v is None:
        return []
    if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
        raise KnowledgeError(f"{where}: must be a list of non-empty strings (quote YAML words such as \"no\")")
    return [str(x) for x in v]


def _checked(where: str, pattern: str, flags: int = re.IGNORECASE) -> str:
    try:
        re.compile(pattern, flags)
    except re.error as e:
        raise KnowledgeError(f"{where}: bad pattern {pattern!r} ({e})") from None
    return pattern


def _alternatives(where: str, entry: dict[str, Any]) -> list[str]:
    unknown = set(entry) - {"phrases", "patterns", "direction"}
    if unknown:
        raise KnowledgeError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    alts = [phrase_regex(p) for p in _strings(f"{where}: phrases", entry.get("phrases"))]
    alts += [_checked(where, p) for p in _strings(f"{where}: patterns", entry.get("patterns"))]
    if not alts:
        raise KnowledgeError(f"{where}: needs phrases or patterns")
    return alts


def compile_language(doc: Any, where: str = "language.yaml") -> LanguageRules:
    if not isinstance(doc, dict):
        raise KnowledgeError(f"{where}: must be a mapping")
    known = {"version", "window_tokens", "comma_list_conjunctions", "max_text_chars", "terminators", "modifiers",
             "pseudo", "sides", "abbreviations"}
    unknown = set(doc) - known
    if unknown:
        raise KnowledgeError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    window = doc.get("window_tokens")
    cap = doc.get("max_text_chars")
    if not isinstance(window, int) or window < 1:
        raise KnowledgeError(f"{where}: window_tokens must be a positive integer")
    if not isinstance(cap, int) or cap < 100:
        raise KnowledgeError(f"{where}: max_text_chars must be an integer >= 100")

    # (regex, group kind) pairs; sorted longest first so "not ruled out" wins over "not"
    entries: list[tuple[str, tuple[str, str]]] = []
    mods = doc.get("modifiers") or {}
    if not isinstance(mods, dict) or set(mods) - set(MODIFIERS):
        raise KnowledgeError(f"{where}: modifiers must be among {', '.join(MODIFIERS)}")
    for mod, items in mods.items():
        if not isinstance(items, list):
            raise KnowledgeError(f"{where}: modifiers.{mod} must be a list")
        for i, entry in enumerate(items):
            w = f"{where}: modifiers.{mod}[{i}]"
            if not isinstance(entry, dict) or entry.get("direction") not in DIRECTIONS:
                raise KnowledgeError(f"{w}: direction must be one of {', '.join(DIRECTIONS)}")
            for alt in _alternatives(w, entry):
                entries.append((alt, (mod, entry["direction"])))
    pseudo = doc.get("pseudo") or {}
    for alt in _alternatives(f"{where}: pseudo", {**pseudo}):
        entries.append((alt, (PSEUDO, "none")))
    # the same words as forward and backward trigger of one modifier ("?", "in 2009") are bidirectional
    merged: dict[tuple[str, str], str] = {}
    for alt, (mod, direction) in entries:
        seen = merged.get((alt, mod))
        merged[(alt, mod)] = direction if seen in (None, direction) else "bidirectional"
    entries = sorted(((alt, (mod, d)) for (alt, mod), d in merged.items()), key=lambda e: -len(e[0]))
    kinds = {f"t{i}": kind for i, (_, kind) in enumerate(entries)}
    triggers = re.compile("|".join(f"(?P<t{i}>{alt})" for i, (alt, _) in enumerate(entries)), re.IGNORECASE)

    term = doc.get("terminators") or {}
    term_alts = _alternatives(f"{where}: terminators", {**term})
    terminators = re.compile("|".join(sorted(term_alts, key=len, reverse=True)), re.IGNORECASE)
    conj = _strings(f"{where}: comma_list_conjunctions", doc.get("comma_list_conjunctions"))
    list_conjunction = re.compile("|".join(phrase_regex(c) for c in conj) or r"(?!)", re.IGNORECASE)

    # side words: phrases are case-insensitive; patterns are case-sensitive (a capital R/L is a side,
    # a lower-case l may be litres)
    side_entries: list[tuple[str, str]] = []
    sides = doc.get("sides") or {}
    if not isinstance(sides, dict) or set(sides) - set(SIDES):
        raise KnowledgeError(f"{where}: sides must be among {', '.join(SIDES)}")
    for side, entry in sides.items():
        w = f"{where}: sides.{side}"
        for p in _strings(f"{w}: phrases", entry.get("phrases")):
            side_entries.append(("(?i:" + phrase_regex(p) + ")", side))
        for p in _strings(f"{w}: patterns", entry.get("patterns")):
            side_entries.append((_checked(w, p, 0), side))
    side_entries.sort(key=lambda e: -len(e[0]))
    side_names = {f"s{i}": side for i, (_, side) in enumerate(side_entries)}
    side_rx = re.compile("|".join(f"(?P<s{i}>{alt})" for i, (alt, _) in enumerate(side_entries)) or r"(?!)")
    abbreviations = frozenset(a.lower().rstrip(".") for a in _strings(f"{where}: abbreviations",
                                                                      doc.get("abbreviations")))
    return LanguageRules(version=str(doc.get("version", "0")), window_tokens=window, max_text_chars=cap,
                         triggers=triggers, kinds=kinds, terminators=terminators, list_conjunction=list_conjunction,
                         sides=side_rx, side_names=side_names, abbreviations=abbreviations)
