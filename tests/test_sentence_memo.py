"""The per-sentence memos of the language layer and notes adapter are exact: concept hits, ConText readings,
prefilter checks and note facts come out the same whether a sentence is read afresh or from a memo, and
the same as the whole-text passes they replace (including matches that run on past a sentence's end)."""

import random
import re
from datetime import date

from test_fast_paths import _texts

from injectwise.adapters.notes.extract import NoteExtractor, NoteInput, unwrap
from injectwise.core.record import Patient, PatientRecord
from injectwise.language.context import analyze_text
from injectwise.language.memo import LRU, UNBOUNDED, SentenceMemo, look_ahead, look_back, never_consumed
from injectwise.language.sentence_scan import SentenceScreens
from injectwise.language.sentences import _WORD_BEFORE, _word_before, split_sentences

EDGES = [
    "R HIP\nPAIN 7/10 today", "History of\nCANCER of the breast", "On prednisone\n40 mg daily since May",
    "WBC 60k.\nJoint fluid cloudy", "Allergic to\n- penicillin. Injection given", "Temp 38.\n5 C today",
    "no steroid.\n\ninjection next week", "Septic arthritis? Ruled out. Dr. Smith saw her", "hip. Pain", "R",
    "pt. seen", "e.g. hip", "L hip inj 1/2026 -> no relief; plan: block", "Known AVN\nof the R hip",
]


def _corpus() -> list[str]:
    base = _texts() + EDGES
    rng = random.Random(5)
    parts = [p for t in base for p in re.split(r"(?<=[.;])\s+|\n", t) if p.strip()]
    seps = [" ", ". ", ".\n", "\n", "\n- ", "\n\n", ";\n", ", "]
    mixed = ["".join(rng.choice(parts) + rng.choice(seps) for _ in range(rng.randint(1, 8))) for _ in range(250)]
    return base + mixed + [t.upper() for t in mixed[:40]]


CORPUS = _corpus()


def _spans(text: str, rules) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in split_sentences(text, rules.abbreviations)]


def test_concept_hits_sentence_by_sentence_are_the_whole_text_hits(kb):
    matcher, rules = kb.terminology.matcher, kb.terminology.language
    memo: LRU = LRU(100_000)
    for _ in range(3):  # afresh, then every sentence from the memo
        for text in CORPUS:
            text = text[:rules.max_text_chars]
            spans = _spans(text, rules)
            if spans:
                assert matcher.find_sentences(text, spans, memo) == matcher.find(text), text


def test_a_hit_running_past_its_sentence_is_found(kb):
    matcher, rules = kb.terminology.matcher, kb.terminology.language
    text = "WBC 60k.\nJoint fluid cloudy"  # joint-fluid white cells: one pattern over both sentences
    spans = _spans(text, rules)
    assert len(spans) == 2
    assert any(h.end > spans[0][1] for h in matcher.find(text) if h.start < spans[0][1])
    memo: LRU = LRU(10)
    for _ in range(3):  # plain (new sentences), memoised afresh (seen once), from the memo
        assert matcher.find_sentences(text, spans, memo) == matcher.find(text)


def test_memoised_analysis_is_the_plain_analysis(kb):
    term = kb.terminology
    memo = SentenceMemo(100_000, term.sentences.reach)
    for _ in range(3):  # plain (new sentences), memoised afresh (seen once), from the memo
        for text in CORPUS:
            assert analyze_text(text, term.matcher, term.language, memo) == analyze_text(text, term.matcher, term.language)


def test_sentence_screens_agree_with_whole_note_scans(kb):
    ex = NoteExtractor(kb)
    screens = SentenceScreens(ex.prefilters)
    assert screens.usable
    rules = kb.terminology.language
    for _ in range(3):  # plain (new sentences), memoised afresh (seen once), from the memo
        for text in CORPUS:
            text = unwrap(text)
            spans = _spans(text[:rules.max_text_chars], rules)
            low = text.lower()
            assert screens.near(low, spans) == screens._whole(low, spans), text


def test_notes_read_the_same_afresh_and_from_the_memos(kb):
    def read(ex: NoteExtractor, text: str) -> str:
        rec = PatientRecord(Patient("Patient/m"))
        st = ex.add(rec, NoteInput(text, "note:m", date(2026, 6, 1)))
        return repr((rec, st.added, st.therapy_stated))

    notes = CORPUS[:120]
    kb.terminology.sentences.cache.clear()
    kb.terminology.sentences.hits.clear()
    first = [read(NoteExtractor(kb), n) for n in notes]  # a new extractor per note: its own memos start empty
    warm = NoteExtractor(kb)
    for n in notes:
        read(warm, n)
    assert [read(warm, n) for n in notes] == first


def test_word_before_a_full_stop_is_the_pattern_s():
    rng = random.Random(11)
    alphabet = [*"abXY09_. \n\t-é漢İ", "Dr", "e.g", "vs", "PT", "mg"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        start = rng.randint(0, len(text))
        m = _WORD_BEFORE.search(text, start, len(text))
        assert _word_before(text, start, len(text)) == (m.group(1) if m else None), (text, start)


def test_how_far_a_pattern_can_read():
    assert look_ahead("abc") == 4
    assert look_ahead(r"hip\b") == 4
    assert look_ahead(r"x\s{1,3}y") == 6
    assert look_ahead(r"a(?=bc)") == 5
    assert look_ahead(r"x\s+y") == UNBOUNDED
    assert look_ahead(r"(a)\1") == UNBOUNDED
    assert look_back([r"\bhip", None]) == 1
    assert look_back([re.compile(r"(?<![\w/])no")]) == 2
    assert never_consumed(r"r/o", ".!?/") == frozenset(".!?")
    assert never_consumed(r"hip\.", ".!") == frozenset("!")
    assert never_consumed(r"a[^b]c", ".") == frozenset()
    assert never_consumed(r"x\W", ".") == frozenset()


def test_memos_are_bounded():
    lru: LRU[int, int] = LRU(3)
    for i in range(10):
        lru.put(i, i)
    assert len(lru) == 3 and lru.get(0) is None and lru.get(9) == 9
    lru.get(7)
    lru.put(10, 10)
    assert lru.get(7) == 7 and lru.get(8) is None


def test_screen_groups_pass_what_each_screen_passes(kb):
    ex = NoteExtractor(kb)
    for group in (ex._target_group, ex._agent_group, ex._steroid_group):
        for text in CORPUS[:300]:
            for part in (text, text[:40], text.upper()):
                assert group.passing(part) == [s.could_match(part) for s in group.screens], part
