"""The speed-ups of the language layer and notes adapter are exact: prefix buckets, literal screens,
case-blind runs on lower-cased ASCII text and candidate-position scans give what the plain patterns
give, for every pattern in the knowledge base (so a new pattern the analysis misreads fails here)."""

import re

import pytest
import yaml
from conftest import SHARED

from injectwise.adapters.notes import when
from injectwise.adapters.notes.cues import load_cues
from injectwise.adapters.notes.extract import POST_INJECTION_DAY, NoteExtractor, unwrap
from injectwise.engine.facts import RELIEF_GOOD_SPAN_TEXT, RELIEF_PERCENT_TEXT, RELIEF_SPAN_TEXT
from injectwise.language.matcher import WORD_START, _lower, _strip_boundary
from injectwise.language.phrases import Screen, prefixes

SENTENCES = [
    "73 yo M s/p R THA (2017). Fluoroscopy-guided R iliopsoas bursa injection 9/10/2025 (triamcinolone 40 mg).",
    "Pain 6/10 before, 5/10 at 6 weeks; no fever. Temp 38.7 C, CRP 45 mg/L, WBC 12.3, INR 2.4 on 9/10/2025.",
    "Hives after Kenalog in 2019. Denies saddle numbness; no bladder change. L subacromial injection elsewhere.",
    "Plan: US-guided R hip IA triamcinolone 40 mg + lidocaine; R TKA booked in 6 weeks; on apixaban, held 3 days.",
    "Synovial fluid: WBC 62,000, Gram stain shows gram-positive cocci; culture pending. Depo-Medrol 80mg x2.",
    "History of septic arthritis of the left knee, resolved; her mother had rheumatoid arthritis. PT x 6 weeks.",
]


def _texts() -> list[str]:
    texts = list(SENTENCES)
    vignettes = SHARED / "examples" / "vignettes"
    if vignettes.is_dir():
        texts += [yaml.safe_load(p.read_text())["note"] for p in sorted(vignettes.glob("*.yaml"))]
    variants = []
    for t in texts:  # capitals, and characters whose case folding is not plain ASCII lower-casing
        variants += [t.upper(), t.replace("s", "ſ").replace("k", "\u212a"), t.replace("i", "İ", 2), t.replace(" ", "\u00a0", 3)]
    return texts + variants


TEXTS = _texts()


def _patterns(kb) -> list[re.Pattern[str]]:
    cues = load_cues()
    pats = [p for p in cues.joined.values() if p is not None]
    pats += [p for d in kb.drugs.values() for p in d.text] + [p for t in kb.targets.values() for p in t.text]
    pats += [p for _, p in when.PATTERNS] + [p for _, ps in cues.labs for p in ps]
    pats += [p for c in kb.terminology.concepts.values() for p in c.text]
    rules = kb.terminology.language
    pats += [p for p in (rules.trigger_patterns, rules.terminator_patterns, rules.side_patterns) if p is not None]
    pats += [re.compile(b, rules.trigger_branches.flags) for _, b in rules.trigger_branches.branches]
    pats += [POST_INJECTION_DAY, RELIEF_PERCENT_TEXT, RELIEF_SPAN_TEXT, RELIEF_GOOD_SPAN_TEXT]  # screened in the adapter
    pats += list(kb.terminology.matcher.exclusions.values())  # screened per clause
    return pats


def test_screens_never_rule_out_a_match_and_case_blind_runs_find_the_same_spans(kb):
    for pat in _patterns(kb):
        scr = Screen(pat)
        for text in TEXTS:
            found = [m.span() for m in pat.finditer(text)]
            run = scr.runner(text)
            assert ([m.span() for m in run[0].finditer(run[1])] if run else []) == found, (pat.pattern, text)


def test_trigger_branches_a_sentence_runs_find_what_the_whole_alternation_finds(kb):
    rules = kb.terminology.language
    for text in TEXTS:
        whole = [(m.span(), m.lastgroup) for m in rules.trigger_patterns.finditer(text)]
        rx = rules.trigger_branches.for_text(text, text.lower())
        assert ([(m.span(), m.lastgroup) for m in rx.finditer(text)] if rx is not None else []) == whole, text


def test_scanners_find_what_the_pattern_finds(kb):
    for scanner in NoteExtractor(kb).prefilters.values():
        for text in TEXTS:
            low = unwrap(text).lower()
            assert [m.span() for m in scanner.finditer(low)] == [m.span() for m in scanner.pattern.finditer(low)]


def test_prefix_buckets_find_what_every_concept_pattern_finds_at_every_word_start(kb):
    matcher = kb.terminology.matcher
    plain = [(c.id, re.compile("|".join(f"(?:{_strip_boundary(p)})" for p in c.patterns))) for c in matcher.concepts]
    for text in TEXTS:
        low = _lower(text)
        expected = [(cid, m.start(), hit.end()) for m in WORD_START.finditer(low) for cid, rx in plain
                    if (hit := rx.match(low, m.start())) is not None and hit.end() > m.start()]
        assert [(h.concept, h.start, h.end) for h in matcher.find(text)] == expected, text


@pytest.mark.parametrize(("pattern", "expected"), [
    (r"rigors?\b", {"rig"}), (r"t[12] ?dm\b", {"t1 ", "t1d", "t2 ", "t2d"}), (r"a*b", {"aaa", "aab", "ab", "b"}),
    (r"\bpt\b(?!/)", {"pt"}), (r".abc", None), (r"(?i)abc", None), (r"o?a", {"a", "oa"}),
])
def test_prefixes_of_a_pattern(pattern, expected):
    assert prefixes(pattern, 3) == (frozenset(expected) if expected is not None else None)


def test_cue_checks_agree_with_the_cue_patterns():
    cues = load_cues()
    for name, pat in cues.joined.items():
        if pat is None:
            continue
        for text in TEXTS:
            for part in re.split(r"(?<=[.;])", text):
                assert cues.has(name, part) == (pat.search(part) is not None), (name, part)
