"""Compile the ConText trigger data (knowledge/data/language.yaml) into phrase indexes.

Trigger, terminator and side phrases are token sequences in one dict each (longest first,
pseudo-triggers included), so a sentence is tokenised once per kind and each token costs one dict
lookup; the few triggers that need a regular expression share one small alternation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from injectwise.core.errors import KnowledgeError
from injectwise.language.phrases import PhraseIndex, Screen, ScreenedAlternation, Tokens, tokens

MODIFIERS = ("negated", "possible", "historical", "hypothetical", "family")
DIRECTIONS = ("forward", "backward", "bidirectional", "section", "clause")
SIDES = ("bilateral", "right", "left")
PSEUDO = "pseudo"


Span = tuple[int, int, Any]


@dataclass(slots=True, frozen=True)
class ListRules:
    """How far a forward scope reaches across the comma items of a list (language.yaml `lists`)."""

    item_words: int  # longest item (words) a scope crosses into
    max_items: int  # most items one trigger reaches
    bare_min_items: int  # a list with no conjunction and no list trigger: at least this many items ...
    bare_item_words: int  # ... each at most this many words
    triggers: frozenset[str]  # triggers that take a list ("denies fever, chills, saddle anaesthesia")


@dataclass(slots=True, frozen=True)
class LanguageRules:
    version: str
    window_tokens: int
    max_text_chars: int
    phrases: PhraseIndex  # trigger ("t", (modifier, direction)), terminator ("x", None), side ("s", side)
    trigger_patterns: re.Pattern[str] | None  # named groups t0..tn; `kinds[name]` says (modifier, direction)
    kinds: dict[str, tuple[str, str]]
    terminator_patterns: re.Pattern[str] | None
    list_conjunction: re.Pattern[str]
    side_patterns: re.Pattern[str] | None  # case-sensitive; named groups s0..sn
    side_names: dict[str, str]
    abbreviations: frozenset[str]
    lists: ListRules
    # the trigger, terminator and side patterns behind literal screens: most sentences run none of them
    screens: tuple[Screen | None, Screen | None, Screen | None] = (None, None, None)
    # `trigger_patterns` branch by branch: a sentence runs only the branches it could match
    trigger_branches: ScreenedAlternation | None = None

    def scan(self, text: str, start: int, end: int, toks: Tokens | None = None) -> tuple[list[Span], list[int], list[Span]]:
        """(triggers, terminator positions, side words) of text[start:end], tokenised once (or read from
        the whole text's `toks`)."""
        triggers: list[Span] = []
        terms: list[int] = []
        sides: list[Span] = []
        for a, b, (kind, label) in self.phrases.find(text, start, end, toks):
            if kind == "t":
                triggers.append((a, b, label))
            elif kind == "x":
                terms.append(a)
            else:
                sides.append((a, b, label))
        part = text[start:end]
        low = part.lower()
        trig, term, side = self.screens
        if self.trigger_branches is not None:
            rx = self.trigger_branches.for_text(part, low)
            if rx is not None:
                triggers += [(m.start(), m.end(), self.kinds[m.lastgroup or ""])
                             for m in rx.finditer(text, start, end) if m.lastgroup]
        elif self.trigger_patterns is not None and (trig is None or trig.could_match(part, low)):
            triggers += [(m.start(), m.end(), self.kinds[m.lastgroup or ""])
                         for m in self.trigger_patterns.finditer(text, start, end) if m.lastgroup]
        if self.terminator_patterns is not None and (term is None or term.could_match(part, low)):
            terms += [m.start() for m in self.terminator_patterns.finditer(text, start, end)]
            terms.sort()
        if self.side_patterns is not None and (side is None or side.could_match(part, low)):
            sides += [(m.start(), m.end(), self.side_names[m.lastgroup or ""])
                      for m in self.side_patterns.finditer(text, start, end) if m.lastgroup]
        return triggers, terms, sides


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


def _entry(where: str, entry: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(phrases, checked patterns) of one data entry."""
    unknown = set(entry) - {"phrases", "patterns", "direction"}
    if unknown:
        raise KnowledgeError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    phrases = _strings(f"{where}: phrases", entry.get("phrases"))
    patterns = [_checked(where, p) for p in _strings(f"{where}: patterns", entry.get("patterns"))]
    if not phrases and not patterns:
        raise KnowledgeError(f"{where}: needs phrases or patterns")
    for p in phrases:
        if not tokens(p):
            raise KnowledgeError(f"{where}: phrase {p!r} has no words or symbols")
    return phrases, patterns


def _named(prefix: str, alts: list[tuple[str, Any]], flags: int) -> tuple[re.Pattern[str] | None, dict[str, Any]]:
    rx, names, _ = _branches(prefix, alts, flags)
    return rx, names


def _branches(prefix: str, alts: list[tuple[str, Any]], flags: int) -> tuple[re.Pattern[str] | None, dict[str, Any],
                                                                             ScreenedAlternation | None]:
    """(the alternation, group name -> label, the same alternation screened branch by branch), longest first."""
    alts = sorted(alts, key=lambda e: -len(e[0]))
    if not alts:
        return None, {}, None
    branches = ScreenedAlternation([(f"{prefix}{i}", a) for i, (a, _) in enumerate(alts)], flags)
    rx = re.compile(branches.pattern(), flags)
    return rx, {f"{prefix}{i}": label for i, (_, label) in enumerate(alts)}, branches


def _lists(doc: Any, where: str) -> ListRules:
    if not isinstance(doc, dict) or set(doc) != {"item_words", "max_items", "bare_min_items", "bare_item_words", "triggers"}:
        raise KnowledgeError(f"{where}: lists needs item_words, max_items, bare_min_items, bare_item_words and triggers")
    nums = {k: doc[k] for k in ("item_words", "max_items", "bare_min_items", "bare_item_words")}
    bad = next((k for k, v in nums.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1), None)
    if bad:
        raise KnowledgeError(f"{where}: lists.{bad} must be a positive integer")
    trig = frozenset(" ".join(tokens(t)).lower() for t in _strings(f"{where}: lists.triggers", doc["triggers"]))
    return ListRules(triggers=trig, **nums)


def compile_language(doc: Any, where: str = "language.yaml") -> LanguageRules:
    if not isinstance(doc, dict):
        raise KnowledgeError(f"{where}: must be a mapping")
    known = {"version", "window_tokens", "comma_list_conjunctions", "max_text_chars", "terminators", "modifiers",
             "pseudo", "sides", "abbreviations", "lists"}
    unknown = set(doc) - known
    if unknown:
        raise KnowledgeError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    window = doc.get("window_tokens")
    cap = doc.get("max_text_chars")
    if not isinstance(window, int) or window < 1:
        raise KnowledgeError(f"{where}: window_tokens must be a positive integer")
    if not isinstance(cap, int) or cap < 100:
        raise KnowledgeError(f"{where}: max_text_chars must be an integer >= 100")

    # the same words as forward and backward trigger of one modifier ("?", "in 2009") are bidirectional
    phrase_dirs: dict[tuple[tuple[str, ...], str], str] = {}
    pattern_dirs: dict[tuple[str, str], str] = {}
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
            phrases, patterns = _entry(w, entry)
            d = entry["direction"]
            for key, store in [((tokens(p), mod), phrase_dirs) for p in phrases] + \
                              [((p, mod), pattern_dirs) for p in patterns]:
                seen = store.get(key)  # type: ignore[call-overload]
                store[key] = d if seen in (None, d) else "bidirectional"  # type: ignore[index]
    pseudo_phrases, pseudo_patterns = _entry(f"{where}: pseudo", {**(doc.get("pseudo") or {})})
    trigger_phrases = [(" ".join(t), ("t", (m, d))) for (t, m), d in phrase_dirs.items()] \
        + [(p, ("t", (PSEUDO, "none"))) for p in pseudo_phrases]
    trigger_patterns, kinds, trigger_branches = _branches("t", [(p, (m, d)) for (p, m), d in pattern_dirs.items()]
                                                          + [(p, (PSEUDO, "none")) for p in pseudo_patterns], re.IGNORECASE)

    term_phrases, term_patterns = _entry(f"{where}: terminators", {**(doc.get("terminators") or {})})
    terminator_patterns = re.compile("|".join(term_patterns), re.IGNORECASE) if term_patterns else None
    conj = _strings(f"{where}: comma_list_conjunctions", doc.get("comma_list_conjunctions"))
    list_conjunction = re.compile("|".join(phrase_regex(c) for c in conj) or r"(?!)", re.IGNORECASE)

    # side words: phrases are case-insensitive; patterns are case-sensitive (a capital R/L is a side,
    # a lower-case l may be litres)
    side_phrases: list[tuple[str, str]] = []
    side_alts: list[tuple[str, Any]] = []
    sides = doc.get("sides") or {}
    if not isinstance(sides, dict) or set(sides) - set(SIDES):
        raise KnowledgeError(f"{where}: sides must be among {', '.join(SIDES)}")
    for side, entry in sides.items():
        w = f"{where}: sides.{side}"
        side_phrases += [(p, side) for p in _strings(f"{w}: phrases", entry.get("phrases"))]
        side_alts += [(_checked(w, p, 0), side) for p in _strings(f"{w}: patterns", entry.get("patterns"))]
    side_patterns, side_names = _named("s", side_alts, 0)
    abbreviations = frozenset(a.lower().rstrip(".") for a in _strings(f"{where}: abbreviations",
                                                                      doc.get("abbreviations")))
    return LanguageRules(
        version=str(doc.get("version", "0")), window_tokens=window, max_text_chars=cap, lists=_lists(doc.get("lists"), where),
        phrases=PhraseIndex(trigger_phrases + [(p, ("x", None)) for p in term_phrases]
                            + [(p, ("s", side)) for p, side in side_phrases]),
        trigger_patterns=trigger_patterns, kinds=kinds, terminator_patterns=terminator_patterns,
        list_conjunction=list_conjunction, side_patterns=side_patterns,
        side_names=side_names, abbreviations=abbreviations, trigger_branches=trigger_branches,
        screens=tuple(Screen(p) if p is not None else None  # type: ignore[arg-type]
                      for p in (trigger_patterns, terminator_patterns, side_patterns)))
