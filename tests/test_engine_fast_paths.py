"""The engine's and reader's speed-ups are exact: each shortcut gives what the plain computation it replaces
gives (the condition index, finding families, memoised concept and drug mappings, shared codings, date
text), on the vignette records and on crafted edge cases. bench/equivalence.py compares whole results."""

from datetime import UTC, datetime, timedelta, timezone
from itertools import chain

import orjson

from injectwise.adapters.fhir import read_bundle
from injectwise.adapters.fhir.reader import _Builder, _codings
from injectwise.core.dates import fmt_date
from injectwise.core.record import Coded, Coding, Condition
from injectwise.engine.clinical import ClinicalView, _drug_of, _drug_of_coded
from injectwise.engine.evaluate import _template, compiled_rules
from injectwise.engine.facts import Context
from injectwise.engine.result import Evidence, Finding
from injectwise.knowledge.terminology import system_kind


def _records(vignette_dir):
    for d in sorted(p for p in vignette_dir.iterdir() if p.is_dir()):
        expected = orjson.loads((d / "expected.json").read_bytes())
        yield read_bundle((d / "bundle.json").read_bytes()), datetime.fromisoformat(expected["as_of"]).date()


def _concept_sets(kb):
    """Every concept set a rule's condition predicate may ask about, plus single concepts."""
    sets = {frozenset((c,)) for c in kb.terminology.concepts}

    def walk(node):
        if isinstance(node, dict):
            for key, arg in node.items():
                if key == "condition" and isinstance(arg, dict):
                    c = arg["concept"]
                    sets.add(frozenset(c if isinstance(c, list) else [c]))
                walk(arg)
        elif isinstance(node, list):
            for x in node:
                walk(x)
    for spec in kb.rules:
        walk(spec.when)
    return sets


def test_condition_index_is_the_plain_loop(kb, vignette_dir):
    sets = _concept_sets(kb)
    for rec, as_of in _records(vignette_dir):
        # duplicate a condition's reference: the index maps it as the plain loop does (first one mapped)
        if rec.conditions:
            c = rec.conditions[0]
            rec.conditions.append(Condition(c.ref, Coded((), "septic arthritis of the right knee"), "active"))
        plain = ClinicalView(rec, kb, as_of)
        fast = ClinicalView(rec, kb, as_of)
        for concepts in sets:
            want = [(c, plain.condition_concepts(c)) for c in plain.conditions
                    if concepts & plain.condition_concepts(c)]
            assert fast.conditions_with(concepts) == want


def test_finding_families(kb, vignette_dir):
    rec, as_of = next(_records(vignette_dir))
    view = ClinicalView(rec, kb, as_of)
    ctx = Context(view, kb, "review", view.injections[-1])
    ids = ["defer.injection-interval", "failure.alternative-pathology.mechanical", ".odd", "a..b", "next"]
    for fid in ids:
        ctx.add_finding(Finding(fid, "info", "", "", "", [], [], {}))
    probes = {p for fid in ids for p in (fid, fid + ".x", fid[:-1], fid.split(".")[0], "")} | {"a.", "a", "failure.alt"}
    for p in probes:
        assert ctx.has_finding(p) == any(f.id == p or f.id.startswith(p + ".") for f in ctx.findings), p


def test_memoised_mappings_are_the_plain_ones(kb, vignette_dir):
    term = kb.terminology
    for rec, _ in _records(vignette_dir):
        codeds = chain((c.code for c in rec.conditions), (o.code for o in rec.observations),
                       (p.code for p in rec.procedures), (m.medication for m in rec.medications),
                       (a.medication for a in rec.administrations))
        for coded in codeds:
            for extra in ("", "right hip", "x" * 2000):
                assert term.concepts_of(coded, extra) == term._concepts_of_uncached(coded.codings, coded.text, extra)
            assert term.code_concepts(coded) == term._code_concepts_uncached(coded.codings, coded.text)
            codes = frozenset(c.code for c in coded.codings if system_kind(c.system) == "rxnorm")
            assert _drug_of_coded(kb, coded.codings, coded.text) is _drug_of(kb, codes, term.clip(coded.all_text()))


def test_coding_lists_read_as_before():
    lists = [
        [{"system": "http://snomed.info/sct", "code": " 123 ", "display": "x"}],
        [{"system": "http://snomed.info/sct", "code": 123}, {"code": True}, {"code": None}, "junk", {"code": "a"}],
        [{"system": 5, "code": "z", "display": 7}],
        "abc",
        {"code": "1"},
        [{"system": "s", "code": "c", "display": "d" * 5000}],
    ]
    for raw in lists:
        got = _Builder.coded({"coding": raw, "text": "t"})
        again = _Builder.coded({"coding": raw, "text": "t"})  # the second read comes from the memo
        assert got.codings == again.codings == _codings(raw)
        assert got == Coded(_codings(raw), "t")
    assert _Builder.coded({"coding": [], "text": 3}) == Coded()


def test_all_text_follows_changes():
    c = Coded((Coding("s", "1", "one"),), "text")
    assert c.all_text() == "text | one"
    c.text = "changed"  # the notes adapter rewrites a superseded condition's text
    assert c.all_text() == "changed | one"
    c.codings = ()
    assert c.all_text() == "changed"


def test_fmt_date_is_strftime():
    start = datetime(2024, 2, 28, 0, 0, 0)
    days = [start + timedelta(hours=h, minutes=7 * h, seconds=h % 3) for h in range(0, 200, 7)]
    days += [datetime(999, 5, 1, 10, 30), datetime(1, 1, 1, 0, 0, 1), datetime(2026, 1, 1, 23, 59, 59, 999999)]
    days += [datetime(2026, 3, 1, 10, 0, tzinfo=UTC), datetime(2026, 3, 1, 11, 0, tzinfo=timezone(timedelta(hours=1)))]
    for dt in days:
        want = dt.date().isoformat() if (dt.hour, dt.minute, dt.second) == (0, 0, 0) else dt.strftime("%Y-%m-%dT%H:%M")
        assert fmt_date(dt) == want
    assert fmt_date(None) is None


def test_evidence_sentence():
    when = datetime(2025, 9, 10, 14, 5)
    for value in (None, "", "6/10"):
        for quote in (None, "", "said so"):
            e = Evidence("Observation/1", "pain", value, when, quote)
            bits = ["pain", *([value] if value is not None else []), "2025-09-10T14:05"]
            said = f' "{quote}"' if quote else ""
            assert e.sentence() == f"Observation/1 ({', '.join(bits)}){said}"


def test_templates_split_at_placeholders(kb):
    for rule in compiled_rules(kb):
        for text in (rule.spec.rationale, rule.spec.title, rule.spec.advice):
            parts = _template(text)
            assert len(parts) % 3 == 1
            rebuilt = parts[0] + "".join(f"{{{parts[i]}.{parts[i + 1]}}}{parts[i + 2]}" for i in range(1, len(parts), 3))
            assert rebuilt == text


def test_pain_windows_and_next_injection(kb, vignette_dir):
    from bisect import bisect_left, bisect_right
    for rec, as_of in _records(vignette_dir):
        view = ClinicalView(rec, kb, as_of)
        pain, times = view.pain, view.pain_times
        stamps = sorted({s.when + timedelta(minutes=m) for s in pain for m in (-1, 0, 1)}
                        | {i.when + timedelta(days=d) for i in view.steroid_injections for d in (-1, 0, 14)})
        for t in stamps:
            for i in view.steroid_injections:
                later = [j.when for j in view.steroid_injections if j.when is not None and j.when > t and j.ref != i.ref]
                assert view.next_steroid_injection(t, i.ref) == (min(later) if later else None)
            for u in stamps:
                assert pain[bisect_left(times, t):bisect_right(times, u)] == [s for s in pain if t <= s.when <= u]
                assert pain[bisect_right(times, t):bisect_right(times, u)] == [s for s in pain if t < s.when <= u]
            for max_days in (-1, 0, 7, 30):
                base = [s for s in pain if s.when <= t and (t - s.when).days <= max_days]
                k = bisect_right(times, t)
                assert (pain[k - 1] if k and (t - times[k - 1]).days <= max_days else None) == (base[-1] if base else None)


def test_label_is_coded_label():
    values = [None, 5, "x", {}, {"text": "knee"}, {"text": ""}, {"text": 3, "coding": []},
              {"text": "knee", "coding": 5}, {"coding": [{"code": "1", "display": "one"}]},
              {"coding": [{"code": " 2 "}]}, {"text": "t", "coding": "abc"}, {"coding": {"code": "1"}}]
    for v in values:
        try:
            want = _Builder.coded(v).label()
        except TypeError:
            want = TypeError
        try:
            got = _Builder.label(v)
        except TypeError:
            got = TypeError
        assert got == want, v


def test_coding_memo_only_for_plain_json():
    import enum
    import uuid

    class Code(enum.IntEnum):
        FIVE = 5

    plain = [{"system": "s", "code": "5"}]
    assert _Builder.coded({"coding": plain}).codings == _codings(plain)
    # values JSON would write alike are not memoised alike: each list reads as itself
    for odd in ([{"system": "s", "code": Code.FIVE}], [{"system": "s", "code": uuid.UUID(int=5)}],
                [{"system": float("nan"), "code": "5"}], [{"system": "s", "code": 5}], [{1: "x", "code": "5"}]):
        assert _Builder.coded({"coding": odd}).codings == _codings(odd), odd
