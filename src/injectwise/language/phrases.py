"""Fast literal-phrase and pattern lookup, so cost does not grow with the size of the vocabularies.

Python's `re` tries every branch of an alternation at every position, so a 400-pattern
alternation costs ~15 us per word. Instead: trigger phrases are token sequences looked up in a
dict by their first token; concept patterns are bucketed by the first characters they can start with
(read from the parsed pattern), so each word start tries only the few patterns that could match."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

TOKEN = re.compile(r"\w+|[^\w\s]")
WORD_START = re.compile(r"\b\w")


def same_length_lower(text: str) -> str:
    """The text with the one character whose lower case is two characters (Turkish dotted capital I, U+0130)
    replaced by "I": every lower-cased scan then keeps the text's offsets (a shifted offset missed cues)."""
    return text.replace("\u0130", "I") if "\u0130" in text else text


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

    def find(self, text: str, start: int, end: int, toks: Tokens | None = None) -> list[tuple[int, int, Any]]:
        """Phrases in text[start:end]; `toks`: the whole text's tokens, when it has them (see `Tokens`)."""
        if toks is not None:
            return self._match(toks.words, toks.starts, toks.ends, *toks.span(start, end))
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
        return self._match(words, [base + m.start() for m in found], [base + m.end() for m in found], 0, len(words))

    def _match(self, words: list[str], starts: list[int], ends: list[int], i: int, n: int) -> list[tuple[int, int, Any]]:
        out = []
        index = self.index
        while i < n:
            cands = index.get(words[i])
            step = 1
            if cands:
                for phrase, k, label in cands:
                    if i + k <= n and (k == 1 or words[i:i + k] == phrase):
                        out.append((starts[i], ends[i + k - 1], label))
                        step = k
                        break
            i += step
        return out


class Tokens:
    """The lower-cased tokens of a whole ASCII text, made once: a sentence's tokens are a slice of them
    (sentences never split a word), so each sentence costs no tokenising pass of its own."""

    __slots__ = ("ends", "starts", "words")

    def __init__(self, low: str) -> None:
        found = list(TOKEN.finditer(low))
        self.words = [m.group() for m in found]
        self.starts = [m.start() for m in found]
        self.ends = [m.end() for m in found]

    @classmethod
    def window(cls, text: str, start: int, end: int) -> Tokens:
        """The tokens `Tokens(text.lower())` has inside text[start:end] (ASCII text), tokenising only that
        window: a memo read of a note may read one sentence afresh, and the whole note cost 0.5 ms a note.
        A word run the window's edge cuts is dropped (it is no token of the whole text there)."""
        low = text[start:end].lower()
        found = list(TOKEN.finditer(low))
        if found and start > 0 and _ascii_word(text[start - 1]) and found[0].start() == 0 and _ascii_word(low[0]):
            found.pop(0)
        if found and end < len(text) and _ascii_word(text[end]) and found[-1].end() == len(low) \
                and _ascii_word(low[-1]):
            found.pop()
        out = cls.__new__(cls)
        out.words = [m.group() for m in found]
        out.starts = [m.start() + start for m in found]
        out.ends = [m.end() + start for m in found]
        return out

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Token indexes [i, j) of the tokens inside text[start:end]."""
        return bisect_left(self.starts, start), bisect_left(self.ends, end + 1)


def _ascii_word(ch: str) -> bool:
    """An ASCII character `\\w` matches."""
    return ch.isalnum() or ch == "_"


_MAX_PREFIXES = 256


def prefixes(pattern: str, k: int, ascii_classes: bool = False) -> frozenset[str] | None:
    """Strings of at most `k` characters, one of which every match of `pattern` (compiled without flags)
    starts with; None when a match could start with anything. Over-approximate by design (zero-width
    assertions pass, an unknown character ends the prefix): a word start that begins with none of them
    cannot start a match, so the matcher skips it without running the pattern. With `ascii_classes`,
    \\d and \\s stand for their ASCII members: valid only for ASCII text."""
    try:
        parsed = sre_parse.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:
        return None
    for n in range(k, 0, -1):  # a shorter prefix when the longer one branches too much
        found = _seq(list(parsed), n, ascii_classes)
        if found is not None and len(found[0]) + len(found[1]) <= _MAX_PREFIXES:
            out = found[0] | found[1]
            return None if "" in out else frozenset(out)
    return None


# the ASCII members of \d and \s (as `re` reads them in str patterns)
_ASCII_CLASSES = {name: {chr(i) for i in range(128) if re.match(rx, chr(i))}
                  for name, rx in (("CATEGORY_DIGIT", r"\d"), ("CATEGORY_SPACE", r"\s"))}
_Pre = tuple[set[str], set[str]]  # (closed: the match starts with it; open: the match may go on from it)


def _seq(items: list[Any], k: int, ascii_classes: bool = False) -> _Pre | None:
    closed: set[str] = set()
    opened = {""}
    for op, av in items:
        grown: set[str] = set()
        for s in opened:
            sub = _item(op, av, k - len(s), ascii_classes)
            if sub is None:
                closed.add(s)  # unknown from here: the prefix so far
                continue
            closed |= {s + c for c in sub[0]}
            for o in sub[1]:
                (closed if len(s) + len(o) >= k else grown).add((s + o)[:k])
        opened = grown
        if len(closed) + len(opened) > _MAX_PREFIXES:
            return None
        if not opened:
            break
    return closed, opened


def _item(op: Any, av: Any, k: int, ascii_classes: bool) -> _Pre | None:
    name = str(op)
    if name in ("AT", "ASSERT", "ASSERT_NOT"):
        return set(), {""}  # zero-width: passes
    if name == "LITERAL":
        return set(), {chr(av)}
    if name == "IN":
        chars = set()
        for iop, iav in av:
            iname = str(iop)
            if iname == "LITERAL":
                chars.add(chr(iav))
            elif iname == "RANGE" and iav[1] - iav[0] < 64:
                chars |= {chr(c) for c in range(iav[0], iav[1] + 1)}
            elif iname == "CATEGORY" and ascii_classes and str(iav) in _ASCII_CLASSES:
                chars |= _ASCII_CLASSES[str(iav)]
            else:
                return None
        return set(), chars
    if name == "BRANCH":
        closed: set[str] = set()
        opened: set[str] = set()
        for sub in av[1]:
            f = _seq(list(sub), k, ascii_classes)
            if f is None:
                return None
            closed |= f[0]
            opened |= f[1]
        return closed, opened
    if name == "SUBPATTERN":
        if av[1] & re.IGNORECASE:
            return None
        return _seq(list(av[-1]), k, ascii_classes)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        lo, hi, sub = av
        reps = [list(sub)] * min(hi, max(lo, k))
        closed, opened = set(), set()
        for n in range(lo, len(reps) + 1):  # n repetitions: never more than k characters are read
            f = _seq([x for rep in reps[:n] for x in rep], k, ascii_classes)
            if f is None:
                return None
            closed |= f[0]
            opened |= f[1]
        if hi > len(reps):  # more repetitions than expanded: they go on from the longest
            f = _seq([x for rep in reps for x in rep], k, ascii_classes)
            if f is None:
                return None
            closed |= f[1]  # treat what could go on as a prefix of the match (over-approximation)
        return closed, opened
    return None


class Screen:
    """A cheap necessary condition for one compiled pattern to match: one of a few literal strings, or a
    digit, must be in the text. Checked with one plain scan before the pattern runs, so a text that cannot
    match costs no regex pass. Exact: case-insensitive patterns are screened only on ASCII text (where
    lower-casing and IGNORECASE agree); anything the screen cannot prove runs the pattern.

    On ASCII text a case-insensitive pattern with no upper-case or non-ASCII characters runs as a
    case-sensitive copy on the lower-cased text (several times faster in `re`, same spans); `runner`
    hands out that pair, so callers that read matched text know it may be lower-cased."""

    __slots__ = ("_any", "_low", "digit", "folded", "literals", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.folded = bool(pattern.flags & re.IGNORECASE)
        try:
            items = list(sre_parse.parse(pattern.pattern, pattern.flags))
        except re.error:  # pragma: no cover - the pattern compiled
            items = []
        lits = _required(items, self.folded)
        self.literals = tuple(sorted(lits, key=len, reverse=True)) if lits else None
        # one C-level scan for any of the literals (an alternation of plain strings, no flags)
        self._any = re.compile("|".join(re.escape(x) for x in self.literals)) if self.literals else None
        self.digit = _needs_digit(items)
        self._low = re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE) \
            if self.folded and items and _lower_safe(items) else None

    def runner(self, text: str, low: str | None = None) -> tuple[re.Pattern[str], str] | None:
        """(pattern, string) to run for `text`, or None when the pattern cannot match it. The string is
        `text` or, for a case-insensitive pattern on ASCII text, its lower-cased copy (same offsets)."""
        if not self.could_match(text, low):
            return None
        return self.run(text, low)

    def run(self, text: str, low: str | None = None) -> tuple[re.Pattern[str], str]:
        """`runner` for a text known to pass the screen (see `ScreenGroup`)."""
        if self._low is not None and text.isascii():
            return self._low, (low if low is not None else text.lower())
        return self.pattern, text

    def could_match(self, text: str, low: str | None = None) -> bool:
        """False only when the pattern cannot match `text`; `low` is text.lower() when the caller has it."""
        if self.digit and not _HAS_DIGIT.search(text):
            return False
        if self._any is None:
            return True
        if self.folded:
            if not text.isascii():
                return True
            text = low if low is not None else text.lower()
        return self._any.search(text) is not None

    def found(self, text: str, low: str | None = None) -> bool:
        """Does the pattern match anywhere in `text`?"""
        run = self.runner(text, low)
        return run is not None and run[0].search(run[1]) is not None


_HAS_DIGIT = re.compile(r"\d")


class ScreenGroup:
    """Many screens checked at once: `passing(text)` is `[s.could_match(text) for s in screens]`, exactly,
    from one look for each distinct literal (a plain substring test) instead of one literal scan per screen.
    For the pattern sets run on the same short text (every injection target, every drug name)."""

    __slots__ = ("_base", "_by_folded", "_by_plain", "_digit", "_folded", "screens")

    def __init__(self, screens: Iterable[Screen]) -> None:
        self.screens = tuple(screens)
        self._by_folded: dict[str, list[int]] = {}  # literal -> the screens it lets through
        self._by_plain: dict[str, list[int]] = {}
        for i, s in enumerate(self.screens):
            for lit in s.literals or ():
                (self._by_folded if s.folded else self._by_plain).setdefault(lit, []).append(i)
        self._base = [s.literals is None for s in self.screens]  # passed unless a digit is missing
        self._digit = [s.digit for s in self.screens]
        self._folded = [i for i, s in enumerate(self.screens) if s.folded and s.literals is not None]

    def passing(self, text: str, low: str | None = None) -> list[bool]:
        out = list(self._base)
        if text.isascii():
            low = text.lower() if low is None else low
            for lit, ids in self._by_folded.items():
                if lit in low:
                    for i in ids:
                        out[i] = True
        else:  # case-insensitive literals are proved only on ASCII text
            for i in self._folded:
                out[i] = True
        for lit, ids in self._by_plain.items():
            if lit in text:
                for i in ids:
                    out[i] = True
        if _HAS_DIGIT.search(text) is None:
            out = [ok and not d for ok, d in zip(out, self._digit, strict=True)]
        return out


MAX_BRANCH_SETS = 256  # compiled branch subsets kept per alternation (cleared when full: memory stays bounded)


class ScreenedAlternation:
    """A named-group alternation `(?P<n0>b0)|(?P<n1>b1)|...` that runs, on a text, only the branches whose
    literal screens pass there. A branch that cannot match anywhere in the text never wins at any position,
    so the subset's matches, spans and group names are the whole alternation's; the whole alternation costs
    about twice the few branches a sentence can match (ConText triggers, 0.8 ms a note read afresh)."""

    __slots__ = ("_compiled", "branches", "flags", "group")

    def __init__(self, branches: Iterable[tuple[str, str]], flags: int) -> None:
        self.branches = tuple(branches)
        self.flags = flags
        self.group = ScreenGroup(Screen(re.compile(b, flags)) for _, b in self.branches)
        self._compiled: dict[tuple[int, ...], re.Pattern[str]] = {}

    def pattern(self) -> str:
        """The whole alternation's source."""
        return "|".join(f"(?P<{n}>{b})" for n, b in self.branches)

    def for_text(self, text: str, low: str | None = None) -> re.Pattern[str] | None:
        """The alternation of the branches that could match `text` (None: none can); `low` is text.lower()."""
        key = tuple(i for i, ok in enumerate(self.group.passing(text, low)) if ok)
        if not key:
            return None
        rx = self._compiled.get(key)
        if rx is None:
            if len(self._compiled) >= MAX_BRANCH_SETS:
                self._compiled.clear()
            rx = self._compiled[key] = re.compile("|".join(f"(?P<{n}>{b})" for n, b in (self.branches[i] for i in key)),
                                                  self.flags)
        return rx


def _required(items: list[Any], folded: bool) -> set[str] | None:
    """Literal strings one of which every match contains (the most selective choice), or None."""
    choices: list[set[str]] = []
    run = ""
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            run += chr(av)
            continue
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue  # zero-width: the literals either side are still adjacent
        if run:
            choices.append({run})
            run = ""
        sub: set[str] | None = None
        if name == "SUBPATTERN" and not av[1] and not av[2]:
            sub = _required(list(av[-1]), folded)
        elif name == "BRANCH":
            alts = [_required(list(a), folded) for a in av[1]]
            if all(alts):
                sub = set().union(*alts)  # type: ignore[arg-type]
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
            sub = _required(list(av[2]), folded)
        if sub:
            choices.append(sub)
    if run:
        choices.append({run})
    if folded:
        choices = [{s.lower() for s in c} for c in choices if all(s.isascii() for s in c)]
    choices = [c for c in choices if all(c)]
    if not choices:
        return None
    return max(choices, key=lambda c: (min(len(s) for s in c), -len(c)))


def _needs_digit(items: list[Any]) -> bool:
    """Does every match contain a digit (a required \\d, or a required class of digits only)?"""
    for op, av in items:
        name = str(op)
        if name == "IN" and _digits_only(av):
            return True
        if name == "SUBPATTERN" and _needs_digit(list(av[-1])):
            return True
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1 and _needs_digit(list(av[2])):
            return True
        if name == "BRANCH" and all(_needs_digit(list(a)) for a in av[1]):
            return True
        if name == "LITERAL" and chr(av).isdigit() and chr(av) in "0123456789":
            return True
    return False


def _digits_only(members: list[Any]) -> bool:
    if not members:
        return False
    for op, av in members:
        name = str(op)
        if name == "CATEGORY" and str(av) == "CATEGORY_DIGIT":
            continue
        if name == "LITERAL" and chr(av) in "0123456789":
            continue
        if name == "RANGE" and 48 <= av[0] <= av[1] <= 57:
            continue
        return False
    return True


def _lower_safe(items: list[Any]) -> bool:
    """No upper-case or non-ASCII character anywhere, no inline flags: IGNORECASE changes nothing on
    lower-cased ASCII text."""
    for op, av in items:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL"):
            if not _low_char(av):
                return False
        elif name == "IN":
            for iop, iav in av:
                iname = str(iop)
                if iname == "LITERAL" and not _low_char(iav):
                    return False
                if iname == "RANGE" and not (iav[1] < 128 and (iav[1] < 65 or iav[0] > 90)):
                    return False
                if iname not in ("LITERAL", "RANGE", "CATEGORY", "NEGATE"):
                    return False
        elif name == "SUBPATTERN":
            if av[1] or av[2] or not _lower_safe(list(av[-1])):
                return False
        elif name == "BRANCH":
            if not all(_lower_safe(list(a)) for a in av[1]):
                return False
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if not _lower_safe(list(av[2])):
                return False
        elif name in ("ASSERT", "ASSERT_NOT"):
            if not _lower_safe(list(av[1])):
                return False
        elif name not in ("AT", "ANY", "CATEGORY", "GROUPREF"):
            return False
    return True


def _low_char(code: int) -> bool:
    return code < 128 and not chr(code).isupper()


class Scanner:
    """`pattern.finditer(text)`, exactly, but the pattern runs only where a match can begin: one C-level
    pass finds the positions that start with one of the pattern's possible prefixes (read from the
    parsed pattern), on ASCII text; other text, or a pattern that could begin anywhere, is scanned as is."""

    __slots__ = ("_starts", "pattern")

    def __init__(self, pattern: re.Pattern[str], k: int = 3) -> None:
        self.pattern = pattern
        keys = None if pattern.flags & re.IGNORECASE else prefixes(pattern.pattern, k, ascii_classes=True)
        self._starts = re.compile(_first_char_trie(keys)) if keys else None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self._starts is None or not text.isascii():
            yield from self.pattern.finditer(text)
            return
        end = 0
        match = self.pattern.match
        for c in self._starts.finditer(text):
            pos = c.start()
            if pos < end:
                continue
            m = match(text, pos)  # never empty: every match begins with a non-empty prefix
            if m is not None:
                yield m
                end = m.end()


def _first_char_trie(keys: Iterable[str]) -> str:
    """One character of a prefix consumed, the rest looked ahead: `re` skips other characters fast, and
    consecutive candidates are all found."""
    trie: dict[str, Any] = {}
    for key in sorted(keys, key=len):
        node = trie
        for ch in key:
            if "" in node:
                break
            node = node.setdefault(ch, {})
        else:
            node[""] = {}
    return "|".join(re.escape(ch) + (f"(?={rest})" if (rest := _trie(sub)) else "") for ch, sub in sorted(trie.items()))


def _trie(node: dict[str, Any]) -> str:
    if "" in node:
        return ""
    alts = [re.escape(ch) + _trie(sub) for ch, sub in sorted(node.items())]
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
