"""ConText: which modifiers (negated, possible, historical, hypothetical, family) reach each mention,
and which side and body site it names. Scopes end at a terminator, a sentence end, a comma that
does not continue a list, or after the configured number of words."""

from __future__ import annotations

import re
from bisect import bisect_left
from itertools import pairwise
from typing import Any

from injectwise.language.matcher import SITE, ConceptMatcher, Hit, split_sites
from injectwise.language.memo import SentenceMemo
from injectwise.language.model import Analysis, Mention, Sentence
from injectwise.language.phrases import Tokens, tokens
from injectwise.language.rules import PSEUDO, LanguageRules
from injectwise.language.sentences import split_sentences

# a numeric date or score ("2024-03-05", "05/03/2024", "7/10", "3.5") is one word of the scope window, not three
_WORD = re.compile(r"\d+(?:[-/.]\d+)+|\w+")
# ... and so is a date in words ("5 March 2024", "March 5th, 2024", "Mar 2024"): how a date is written must not
# move a modifier's scope
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)[a-z]*\.?"
_DATE_PHRASE = re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?(?:\s+\d{{4}})?\b|"
                          rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?\b|\b{_MONTH}\s+\d{{4}}\b", re.I)
_COMMA = re.compile(r",")
SHORT_ASIDE_WORDS = 2  # a comma segment this short ("treated", "2012") is an aside, not a new clause
EXCLUSION_SLACK_CHARS = 20  # how far past a terminator right after a mention its exclusions may look


def analyze_text(text: str, matcher: ConceptMatcher, rules: LanguageRules, memo: SentenceMemo | None = None) -> Analysis:
    """Sentences and mentions of one text; `memo` (optional) reuses what a sentence decides alone, exactly
    (see `language.memo`)."""
    truncated = len(text) > rules.max_text_chars
    if truncated:
        text = text[:rules.max_text_chars]
    sentences = split_sentences(text, rules.abbreviations)
    out = Analysis(text=text, sentences=sentences, truncated=truncated)
    if not sentences:
        return out
    if memo is not None:
        got = _memo_mentions(text, sentences, matcher, rules, memo)
        if got is not None:
            out.mentions = got
            return out
    out.mentions = _plain_mentions(text, sentences, matcher, rules)
    return out


def _plain_mentions(text: str, sentences: list[Sentence], matcher: ConceptMatcher, rules: LanguageRules) -> list[Mention]:
    """The mentions of a text from one whole-text concept pass, sentence by sentence."""
    out: list[Mention] = []
    hits, sites = split_sites(matcher.find(text))
    if not hits:
        return out
    toks = Tokens(text.lower()) if text.isascii() else None  # one tokenising pass for every sentence
    starts = [s.start for s in sentences]
    site_starts = [x[0] for x in sites]
    by_sentence: dict[int, list[Hit]] = {}
    for h in hits:
        i = max(0, bisect_left(starts, h.start + 1) - 1)
        by_sentence.setdefault(i, []).append(h)
    for i, shits in by_sentence.items():
        s = sentences[i]
        lo, hi = bisect_left(site_starts, s.start), bisect_left(site_starts, s.end)
        ssites = [x for x in sites[lo:hi] if x[1] <= s.end]
        out.extend(_sentence_mentions(text, s, i, shits, ssites, matcher, rules, toks))
    return out


def _memo_mentions(text: str, sentences: list[Sentence], matcher: ConceptMatcher, rules: LanguageRules,
                   memo: SentenceMemo) -> list[Mention] | None:
    """The mentions `analyze_text` finds, sentence by sentence through the memos. A sentence's reading is
    keyed on everything it depends on: its text (and any text a hit runs on into), its end, the character
    after, whether the whole text is ASCII (which tokeniser reads it), the characters before it that a
    look-behind or word boundary can see, and its concept and site hits relative to its start. None when
    the text is mostly sentences not seen before (read it the plain way)."""
    mentions: list[Mention] = []
    per = matcher.by_sentence(text, [(s.start, s.end) for s in sentences], memo.hits, memo.door)
    if per is None:
        return None
    ascii_text = text.isascii()
    reach = memo.reach
    for i, rel in enumerate(per):
        if not rel:
            continue
        s = sentences[i]
        a = s.start
        end = max(s.end, a + max(y for _, _, y in rel))  # a hit may run past the sentence: its text is read
        key = (text[max(0, a - reach):a], text[a:end], s.end - a, text[end:end + 1], ascii_text, rel)
        got = memo.cache.get(key)
        if got is None:
            hits = [Hit(c, a + x, a + y) for c, x, y in rel if not c.startswith(SITE)]
            got = ()
            if hits:
                sites = [(a + x, a + y, c[len(SITE):]) for c, x, y in rel if c.startswith(SITE) and a + y <= s.end]
                # only this sentence tokenised (ASCII text only): the same tokens the whole text's have there
                toks = Tokens.window(text, a, s.end) if ascii_text else None
                got = tuple(_relative(m, a) for m in _sentence_mentions(text, s, i, hits, sites, matcher, rules, toks))
            memo.cache.put(key, got)
        mentions += [Mention(r[0], r[1] + a, r[2] + a, i, r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12])
                     for r in got]
    return mentions


def _relative(m: Mention, a: int) -> tuple[Any, ...]:
    return (m.concept, m.start - a, m.end - a, m.matched, m.negated, m.possible, m.historical, m.hypothetical,
            m.family, m.side, m.site, m.historical_counts, m.triggers)


class _Scope:
    """The trigger, terminator, comma, word and side positions of one sentence."""

    def __init__(self, text: str, s: Sentence, sites: list[tuple[int, int, str]], rules: LanguageRules,
                 toks: Tokens | None = None) -> None:
        self.text = text
        self.s = s
        self.rules = rules
        triggers, self.terms, self.sides = rules.scan(text, s.start, s.end, toks)
        self.triggers = [(a, b, mod, direction) for a, b, (mod, direction) in triggers if mod != PSEUDO]
        self.toks = toks
        self.span = toks.span(s.start, s.end) if toks is not None else (0, 0)
        if toks is not None:  # commas and words are tokens of the whole text (sentences never split a word)
            self.commas = [toks.starts[k] for k in range(*self.span) if toks.words[k] == ","]
        else:
            self.commas = [m.start() for m in _COMMA.finditer(text, s.start, s.end)]
        self._word_starts: list[int] | None = None  # only scopes that weigh a trigger need them
        self.sites = sites
        self.hit_starts: list[int] = []  # where the sentence's concept mentions start (set by the caller)

    @property
    def words(self) -> list[int]:
        if self._word_starts is None:
            toks = self.toks
            if toks is not None:
                self._word_starts = [toks.starts[k] for k in range(*self.span)
                                     if _is_word(toks.words[k][0]) and not _continues_number(toks, k, self.span[0])]
            else:
                self._word_starts = [m.start() for m in _WORD.finditer(self.text, self.s.start, self.s.end)]
            dates = [(m.start(), m.end()) for m in _DATE_PHRASE.finditer(self.text, self.s.start, self.s.end)]
            if dates:  # a date in words is one word: its first
                self._word_starts = [w for w in self._word_starts if not any(a < w < b for a, b in dates)]
        return self._word_starts

    def _ends(self, a: int, b: int) -> bool:
        """A terminator between a and b, other than a whole parenthesis ("septic arthritis (Staph aureus) in 2025,
        resolved" reaches back over it; a trigger inside one never reaches out)."""
        i = bisect_left(self.terms, a)
        depth = 0
        while i < len(self.terms) and self.terms[i] < b:
            ch = self.text[self.terms[i]]
            if ch == "(":
                depth += 1
            elif ch == ")" and depth:
                depth -= 1
            else:
                return True
            i += 1
        return depth != 0

    def _span_words(self, a: int, b: int) -> int:
        """Words between a and b, not counting those inside a whole parenthesis."""
        n = self._words(a, b)
        i = bisect_left(self.terms, a)
        opened = None
        while i < len(self.terms) and self.terms[i] < b:
            p = self.terms[i]
            if self.text[p] == "(" and opened is None:
                opened = p
            elif self.text[p] == ")" and opened is not None:
                n -= self._words(opened, p)
                opened = None
            i += 1
        return n

    def _any(self, points: list[int], a: int, b: int) -> bool:
        i = bisect_left(points, a)
        return i < len(points) and points[i] < b

    def _words(self, a: int, b: int) -> int:
        return bisect_left(self.words, b) - bisect_left(self.words, a)

    def _clause_end(self, pos: int) -> int:
        i = bisect_left(self.terms, pos)
        return self.terms[i] if i < len(self.terms) else self.s.end

    def _clause_start(self, pos: int) -> int:
        i = bisect_left(self.terms, pos)
        return self.terms[i - 1] if i > 0 else self.s.start

    def forward(self, t_end: int, m_start: int, list_trigger: bool = False) -> bool:
        if self._ends(t_end, m_start):
            return False
        i = bisect_left(self.commas, m_start) - 1
        near = self._span_words(t_end, m_start) <= self.rules.window_tokens
        if i < 0 or self.commas[i] < t_end:
            return near
        # a comma between: only a list continues the scope
        if near and self.rules.list_conjunction.search(self.text, self.commas[i], self._clause_end(m_start)):
            return True
        return self._in_list(t_end, m_start, i, list_trigger)

    def _in_list(self, t_end: int, m_start: int, i: int, list_trigger: bool) -> bool:
        """Whether the mention is an item of a list the trigger heads, however long: "Denies fevers, chills,
        night sweats, weight loss, saddle anaesthesia" (a review of systems). Every item up to the mention is
        short and names no side (an item with a side describes a finding: "no trauma, R hip hot and swollen"
        is not negated); the list has a conjunction after the mention's comma, or a trigger that takes a list
        ("denies", "negative for"), or at least `bare_min_items` items of at most `bare_item_words` words
        naming no body site."""
        lr = self.rules.lists
        lo = bisect_left(self.commas, t_end)
        if self._span_words(t_end, self.commas[lo]) > self.rules.window_tokens:
            return False
        end = self._clause_end(m_start)
        cuts = [*self.commas[lo:bisect_left(self.commas, end)], end]
        items = list(pairwise(cuts))
        k = i - lo  # the mention's item
        if k + 1 > lr.max_items:
            return False
        sides = [a for a, _, _ in self.sides]
        for a, b in items[:k + 1]:
            if self._span_words(a, b) > lr.item_words or self._any(sides, a, b):
                return False
        if self._any(sides, t_end, self.commas[lo]):
            return False
        if list_trigger or self.rules.list_conjunction.search(self.text, self.commas[i], end):
            return True
        # a bare list: short items naming no body site ("no trauma, fever, hot swollen hip" may describe the hip)
        return (len(items) + 1 >= lr.bare_min_items and self._words(t_end, self.commas[lo]) <= lr.bare_item_words
                and all(self._words(a, b) <= lr.bare_item_words for a, b in items)
                and not self._any(sorted(a for a, _, _ in self.sites), t_end, end))

    def backward(self, m_end: int, t_start: int) -> bool:
        if self._ends(m_end, t_start):
            return False
        window = self.rules.window_tokens
        i = bisect_left(self.commas, t_start) - 1
        if i >= 0 and self.commas[i] >= m_end:  # "X, resolved" reaches back; "X, Y ruled out" only in a list
            if self._words(self.commas[i], t_start) == 0:
                # "X 2012, treated, in remission", "X, washed out and treated, resolved": asides between commas
                # (short, or naming no other concept) do not break the scope, nor count towards the window
                # ("septic arthritis of the R knee in January 2026, treated, resolved")
                lo = bisect_left(self.commas, m_end)
                marks = [m_end, *self.commas[lo:i + 1]]
                asides = list(pairwise(marks[1:]))
                short = sum(self._words(a, b) for a, b in asides if self._words(a, b) <= SHORT_ASIDE_WORDS)
                if self._span_words(m_end, t_start) - short > window:
                    return False
                return all(self._words(a, b) <= SHORT_ASIDE_WORDS or not self._any(self.hit_starts, a, b)
                           for a, b in asides)
            if self._span_words(m_end, t_start) > window:
                return False
            return self.rules.list_conjunction.search(self.text, m_end, t_start) is not None
        return self._span_words(m_end, t_start) <= window

    def nearest(self, marks: list[tuple[int, int, str]], start: int, end: int) -> str | None:
        """The mark inside the mention, else the nearest in its comma segment, clause, then sentence."""
        if not marks:
            return None
        if len(marks) == 1:  # every mark lies in the sentence, the last range tried: the only one wins
            return marks[0][2]
        clause = (self._clause_start(start), self._clause_end(end))
        ci = bisect_left(self.commas, start)
        seg = (max(clause[0], self.commas[ci - 1] if ci > 0 else clause[0]),
               min(clause[1], self.commas[ci] if ci < len(self.commas) and self.commas[ci] >= end else clause[1]))
        for lo, hi in ((start, end), seg, clause, (self.s.start, self.s.end)):
            inside = [(a - end if a >= end else max(0, start - b), name) for a, b, name in marks if a >= lo and b <= hi]
            if inside:
                return min(inside)[1]
        return None


def _takes_list(trigger: str, rules: LanguageRules) -> bool:
    """A trigger that heads a list of items ("denies", "negative for"), from language.yaml `lists`."""
    return " ".join(tokens(trigger)) in rules.lists.triggers


def _continues_number(toks: Tokens, k: int, first: int) -> bool:
    """Token k is the digits after a "-", "/" or "." that joins them, unspaced, to digits before: a later part
    of one date or score ("2024-03-05" is one word, as `_WORD` reads it on non-ASCII text)."""
    w, starts, ends = toks.words, toks.starts, toks.ends
    return (k - 2 >= first and w[k].isdigit() and w[k - 1] in ("-", "/", ".") and w[k - 2].isdigit()
            and ends[k - 2] == starts[k - 1] and ends[k - 1] == starts[k])


def _is_word(ch: str) -> bool:
    """An ASCII token's first character is a word character (the token is a \\w+ run)."""
    return ch.isalnum() or ch == "_"


def _sentence_mentions(text: str, s: Sentence, index: int, hits: list[Hit], sites: list[tuple[int, int, str]],
                       matcher: ConceptMatcher, rules: LanguageRules, toks: Tokens | None = None) -> list[Mention]:
    sc = _Scope(text, s, sites, rules, toks)
    sc.hit_starts = sorted(h.start for h in hits)
    # a trigger word inside any concept mention is part of that concept ("absent pulses"), not a modifier;
    # one that only overlaps a mention's start ("no history of" + "history of cancer") still leads it
    sc.triggers = [t for t in sc.triggers if not any(t[0] >= h.start and t[1] <= h.end for h in hits)]
    if len(sc.triggers) > 1:  # the longest trigger wins: the "?" of "pregnant? No" is part of an answer, not a query
        sc.triggers = [t for t in sc.triggers if not any(u[0] <= t[0] and t[1] <= u[1] and u[1] - u[0] > t[1] - t[0]
                                                         for u in sc.triggers)]
    out = []
    for h in hits:
        # the clause, plus a few words past a terminator that follows the mention at once ("Pt reports ...":
        # "reports" ends the clause, yet it is what makes "Pt" the patient)
        ex_end = sc._clause_end(h.end)
        if ex_end < s.end and not text[h.end:ex_end].strip():
            ex_end = min(s.end, ex_end + EXCLUSION_SLACK_CHARS)
        if h.concept in matcher.exclusions and matcher.excluded(h.concept, text, sc._clause_start(h.start), ex_end):
            continue
        m = Mention(concept=h.concept, start=h.start, end=h.end, sentence=index, matched=text[h.start:h.end],
                    historical_counts=matcher.historical_counts.get(h.concept, False))
        found: list[str] = []
        for ts, te, mod, direction in sc.triggers:
            if ts < h.start and direction == "section":
                applies = True  # a heading ("Family history:") reaches every item after it in its sentence
            elif ts < h.start and direction == "clause":
                # a subject that is someone else ("her husband ... and had a fever") reaches the clause's end
                applies = not sc._ends(min(te, h.start), h.start)
            elif ts < h.start and direction in ("forward", "bidirectional"):
                applies = sc.forward(min(te, h.start), h.start, _takes_list(text[ts:te], rules))
            elif ts >= h.end and direction in ("backward", "bidirectional"):
                applies = sc.backward(h.end, ts)
            else:
                applies = False
            if applies:
                setattr(m, mod, True)
                found.append(text[ts:te])
        if m.possible:
            m.negated = False  # "not ruled out", "r/o": suspected counts as present (safety first)
        m.triggers = tuple(found)
        m.side = sc.nearest(sc.sides, h.start, h.end)
        m.site = sc.nearest(sc.sites, h.start, h.end)
        out.append(m)
    return out
