"""Computed facts: generic clinical measures over the record (counts, intervals, exposure,
response) that rules combine declaratively. Each fact carries the patient data it rests on."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any

from injectwise.core.dates import fmt_date, period_start
from injectwise.core.record import THERAPY_UNSTATED, Condition
from injectwise.engine.clinical import ClinicalView, Injection, PainScore, says, side_of, sides_compatible
from injectwise.engine.result import Evidence
from injectwise.knowledge.model import Knowledge, Target

NO_RELIEF_TEXT = re.compile(r"\b(no|without|little|minimal) (lasting |durable |meaningful |significant )?"
                            r"(relief|benefit|improvement)|"
                            r"\bnever (?:had|got|felt|noticed) (?:any |much )?(?:relief|benefit|improvement)|"
                            r"did not (help|work)|unsuccessful|ineffective|not effective|"
                            r"relief (for|lasting) (only )?([1-9]|1[0-3]) days?|\b\d+ days? only\b", re.I)
# "80% relief", "helped about 50%", "improvement of 30%": a patient's own global rating of the response, used
# only when there are no pain scores to judge it by; relief "for the first hour" is the anaesthetic phase.
RELIEF_PERCENT_TEXT = re.compile(r"(?:\b(\d{1,3}) ?% (?:relief|better|improve\w*|reduction|less pain)"
                                 r"|(?:relief|improvement|better|helped|improved)(?: by| of)?(?: about| around| ~)? "
                                 r"(\d{1,3}) ?%)(?! (?:for|in|during) (?:the first |an? |\d+ )?(?:hours?|hrs?|minutes?|mins?))",
                                 re.I)
# How long relief lasted before it wore off, in words without scores: "the relief lasted about 3 weeks and then
# wore off", "good relief for a month, then it gradually wore off", "much better for about six weeks and is now
# gradually returning". The stated span is measured like a score series: relief past the durable weeks is a
# response that faded as expected, relief from the judging day on but short of them a short-lived (partial)
# response, relief shorter than the judging window no corticosteroid response.
_FADED = (r"(?=[^.]{0,80}?(?:\b(?:wore off|wearing off|worn off|came back|coming back|returned|returning|recurred|back to|"
          r"faded|fading|gone|went away|worse again|back again|crept back|creeping back)\b|"
          r"\b(?:it|pain|it.s|pain.s|the pain) (?:is |was )?back\b))")
_SPAN_N = (r"(?P<n>\d{1,2}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|a couple of|"
           r"several|a half|one and a half)")
RELIEF_SPAN_TEXT = re.compile(
    r"\b(?:relief|benefit|better|helped|improved|improvement|worked|effect|response|pain[- ]free|settled)\b"
    r"[^.;]{0,30}?\b(?:for|lasted|lasting|of|over)\s+(?:only |just |the first |a good |roughly |about |around |"
    r"approximately |~ ?|nearly |almost |up to |maybe |perhaps )*" + _SPAN_N + r"\s*(?P<u>days?|weeks?|wks?|months?|mos?)\b"
    + _FADED, re.I)
# "she had two good weeks, then the pain returned"
RELIEF_GOOD_SPAN_TEXT = re.compile(r"\b" + _SPAN_N + r"\s+good\s+(?P<u>days|weeks|months)\b" + _FADED, re.I)
_SPAN_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
               "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a few": 3, "a couple of": 2, "several": 3,
               "a half": 0.5, "one and a half": 1.5}
_SPAN_UNIT_DAYS = {"d": 1, "w": 7, "m": 30}


def relief_span_days(text: str) -> tuple[float, str] | None:
    """Days of relief the words state before it wore off, with the words; None when not stated."""
    m = RELIEF_SPAN_TEXT.search(text or "") or RELIEF_GOOD_SPAN_TEXT.search(text or "")
    if not m:
        return None
    n = m.group("n").lower()
    k = float(n) if n.isdigit() else _SPAN_WORDS.get(n)
    if not k:
        return None
    return k * _SPAN_UNIT_DAYS[m.group("u")[0].lower()], m.group(0)


# What the record says of the first hours after an injection given with local anaesthetic, when no pain score
# measures them: the anaesthetic phase is the diagnostic part of the injection (relief shows the injectate reached
# the pain generator; none, after a guided injection, points away from the target). Relief within hours can only
# come from an anaesthetic (a steroid takes days), so told relief counts even where no anaesthetic is recorded;
# told absence of relief counts only where one is.
_FIRST_HOURS = (r"(?:(?:in|during|within|over|for) (?:the )?(?:first|initial) (?:few |couple of )?(?:hours?|hrs?|minutes?|mins?)|"
                r"(?:in|during|within|for) (?:the )?(?:first |initial )?(?:an?|one|two|three|a few|a couple of|several|\d+) "
                r"(?:hours?|hrs?|minutes?|mins?)|immediately(?: after(?:wards)?)?|right after(?:wards)?|"
                r"(?:on )?the (?:same )?day of (?:the )?(?:injection|procedure|shot)|that (?:same )?(?:day|afternoon|evening))")
_ANESTHETIC = (r"(?:local(?: ana?esthetic)?|ana?esthetic|lidocaine|lignocaine|xylocaine|bupivacaine|marcaine|"
               r"ropivacaine|naropin|numbing(?: medicine| medication| agent| part)?)")
ANESTHETIC_NO_RELIEF_TEXT = re.compile(
    r"\b(?:no|without|not any|never (?:had|got|felt) any|never any) (?:\w+ )?(?:relief|benefit|improvement|change|effect)\b"
    r"[^.;]{0,30}?\b(?:not )?(?:even )?" + _FIRST_HOURS +
    r"|\bno (?:immediate|initial|early|short[- ]term|ana?esthetic[- ]phase|diagnostic) (?:pain )?(?:relief|benefit|response|"
    r"improvement|effect)\b"
    r"|\b(?:the )?" + _ANESTHETIC + r" (?:did nothing|did not (?:help|work)|didn.t (?:help|work)|(?:gave|provided|brought) no "
    r"(?:relief|benefit)|had no effect|made no difference)"
    r"|\bpain (?:was )?(?:unchanged|the same|no different) " + _FIRST_HOURS, re.I)
ANESTHETIC_RELIEF_TEXT = re.compile(
    r"(?<!\bno )(?<!\bnot )(?<!\bwithout )(?<!\bany )\b(?:immediate|instant) (?:pain )?(?:relief|benefit|improvement|response)\b"
    r"|(?<!\bno )(?<!\bnot )(?<!\bwithout )(?<!\bany )\b(?:relief|pain[- ]free|numb(?: and (?:pain[- ]free|comfortable))?|"
    r"(?:felt|feels|was|much) (?:great|good|better|fine|wonderful))[^.;]{0,20}?\b(?:for|in|during) (?:the )?(?:first )?"
    r"(?:few |couple of |an? |one |two |three |four |several |\d+ )?(?:hours?|hrs?)\b"
    r"|\b(?:the )?" + _ANESTHETIC + r" (?:helped|worked|gave (?:\w+ )?relief|took the pain away)", re.I)


def anesthetic_phase_told(text: str) -> tuple[str, str] | None:
    """("no-relief" or "relief", the words) when the text tells how the first hours went; no relief is
    looked for first, so "no immediate relief" is never read as relief."""
    m = ANESTHETIC_NO_RELIEF_TEXT.search(text)
    if m:
        return "no-relief", m.group(0)
    m = ANESTHETIC_RELIEF_TEXT.search(text)
    return ("relief", m.group(0)) if m else None


# The notes adapter's rating of an outcome instrument's before/after pair (outcome_measures.yaml)
OUTCOME_MEASURE_TEXT = re.compile(r"\(outcome measure ([^()]*?) (-?\d+(?:\.\d+)?) -> (-?\d+(?:\.\d+)?): (-?\d+)% better, "
                                  r"(-?\d+) points of 100, (important|not important) change\)")
BENEFIT_REPORTED = "(benefit reported)"  # the notes adapter's mark for "good relief", "helped a lot"
SHORTENING_TEXT = re.compile(r"(shorter|diminishing|decreasing|less) (relief|benefit|duration)|"
                             r"relief (is )?(getting |becoming )?shorter|each (injection|time) (helps|lasts) less", re.I)


@dataclass(slots=True)
class Fact:
    value: Any
    evidence: list[Evidence] = field(default_factory=list)
    text: str = ""

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(slots=True)
class Outcome:
    """How one injection worked, from pain scores before and after it."""

    injection: Injection
    response: str  # responder, partial, non-responder, unknown, too-early
    durable: bool | None
    baseline: PainScore | None
    latest: PainScore | None
    best: PainScore | None
    anesthetic_phase: str  # relief, no-relief, unknown, none-given
    anesthetic_score: PainScore | None
    relief_days: float | None
    evidence: list[Evidence]


class Context:
    """Evaluation state: the view, the injection under consideration and the facts computed so far."""

    def __init__(self, view: ClinicalView, kb: Knowledge, mode: str, injection: Injection) -> None:
        self.view = view
        self.kb = kb
        self.mode = mode
        self.injection = injection
        self.findings: list[Any] = []
        self._finding_prefixes: set[str] = set()  # every finding's id and its dotted prefixes
        self._policy = kb.policy
        self.computed: dict[str, Fact] = {}  # facts computed so far, by name
        self._outcomes: dict[str, Outcome] = {}
        self._earlier: list[Injection] | None = None
        self._same_site: list[Injection] | None = None

    def p(self, name: str) -> float:
        return self._policy[name].value  # Knowledge.p, one call less

    def fact(self, name: str) -> Fact:
        f = self.computed.get(name)
        if f is None:
            f = FACTS[name](self)
            self.computed[name] = f
        return f

    def add_finding(self, finding: Any) -> None:
        self.findings.append(finding)
        parts = finding.id.split(".")
        self._finding_prefixes.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))

    def has_finding(self, prefix: str) -> bool:
        """A finding so far is this one or one of its family (`prefix.` and more)."""
        return prefix in self._finding_prefixes

    # ---- injection history ----------------------------------------------------------------
    @property
    def ref_time(self) -> datetime:
        return self.injection.when or self.view.now

    def earlier_injections(self) -> list[Injection]:
        """Steroid injections before the one under consideration (computed once per evaluation)."""
        if self._earlier is None:
            t = self.ref_time
            self._earlier = [i for i in self.view.steroid_injections
                             if i.ref != self.injection.ref and i.when is not None and i.when < t]
        return self._earlier

    def same_site_earlier(self) -> list[Injection]:
        if self._same_site is None:
            self._same_site = [i for i in self.earlier_injections() if i.same_site(self.injection)]
        return self._same_site

    def area(self, inj: Injection) -> str | None:
        if inj.target is None or inj.target.region is None:
            regs = self.view.regions_of_text(f"{inj.text} {inj.notes}") - {"*"}
            reg = next(iter(sorted(regs)), None)
        else:
            reg = inj.target.region
        return self.kb.regions[reg].area if reg else None

    def outcome(self, inj: Injection) -> Outcome:
        o = self._outcomes.get(inj.ref)
        if o is None:
            o = self._classify(inj)
            self._outcomes[inj.ref] = o
        return o

    def judge_after_days(self, inj: Injection) -> float:
        """Days after which the steroid's response can be judged: the drug's own window, else policy."""
        d = inj.steroid.drug if inj.steroid else None
        return d.judge_after_days if d is not None and d.judge_after_days is not None else self.p("judge_after_days")

    def anesthetic_hours(self, inj: Injection) -> float:
        """The anaesthetic phase: the longest-acting anaesthetic's duration plus a margin (policy);
        an anaesthetic of unknown duration uses the policy fallback."""
        spans = [a.drug.duration_hours[1] if a.drug and a.drug.duration_hours else self.p("anesthetic_phase_hours")
                 for a in inj.anesthetics]
        return max(spans, default=self.p("anesthetic_phase_hours")) + self.p("anesthetic_phase_margin_hours")

    def _classify(self, inj: Injection) -> Outcome:
        v = self.view
        assert inj.when is not None
        if inj.date_unknown:  # no day to measure the response from: said as unknown, never guessed
            return Outcome(inj, "unknown", None, None, None, None, "unknown", None, None,
                           [_inj_ev(inj, "reviewed injection (date not stated)")])
        t0 = inj.when
        stop = min(t0 + timedelta(days=self.p("followup_max_days")), v.now)
        nxt = v.next_steroid_injection(t0, inj.ref)  # the follow-up ends at the next injection
        if nxt is not None and nxt < stop:
            stop = nxt
        # pain scores are in time order: each window below is a slice (what filtering every score gave)
        pain, times = v.pain_for(inj.side)
        upto = bisect_right(times, t0)
        # the latest score up to the injection, if recent enough (an older one is older still)
        baseline = pain[upto - 1] if upto and (t0 - times[upto - 1]).days <= self.p("baseline_max_days") else None
        an_end = t0 + timedelta(hours=self.anesthetic_hours(inj))
        an_scores = pain[upto:bisect_right(times, an_end)]
        judge_after = self.judge_after_days(inj)
        # judged from the calendar day the window ends (day 14 counts whatever the hour of the score)
        judge_from = t0.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=judge_after)
        follow = pain[bisect_left(times, judge_from):bisect_right(times, stop)]
        ev: list[Evidence] = []
        if baseline:
            ev.append(Evidence(baseline.ref, "pain before injection", f"{baseline.value:g}/10", baseline.when))
        anesthetic = "none-given" if not inj.anesthetics else "unknown"
        an_score = None
        if inj.anesthetics and baseline and an_scores:
            an_score = min(an_scores, key=lambda s: s.value)
            anesthetic = "relief" if self._important(baseline.value, an_score.value) else "no-relief"
            ev.append(Evidence(an_score.ref, "pain in the anaesthetic phase", f"{an_score.value:g}/10", an_score.when))
        elif inj.notes and anesthetic in ("unknown", "none-given"):
            told = anesthetic_phase_told(inj.notes)
            if told and (told[0] == "relief" or inj.anesthetics):
                anesthetic = told[0]
                ev.append(Evidence(inj.ref, "pain in the anaesthetic phase", f'"{told[1]}" (as told)', inj.when))
        days = (v.now - t0).total_seconds() / 86400
        if inj is self.injection and days < judge_after:
            return Outcome(inj, "too-early", None, baseline, None, None, anesthetic, an_score, None, ev)
        if not baseline or not follow:
            rated = OUTCOME_MEASURE_TEXT.search(inj.notes or "")
            if rated:  # an outcome instrument before and after (OMERACT-OARSI on its 0-100 equivalent)
                pct, points = float(rated.group(4)), float(rated.group(5))
                resp = ("responder" if pct >= self.p("responder_relief_percent")
                        and points >= 10 * self.p("responder_relief_points") else
                        "partial" if rated.group(6) == "important" else "non-responder")
                ev.append(Evidence(inj.ref, f"{rated.group(1)} before -> after",
                                   f"{rated.group(2)} -> {rated.group(3)} ({pct:g}% of the deficit regained)", inj.when))
                return Outcome(inj, resp, None, baseline, None, None, anesthetic, an_score, None, ev)
            span = relief_span_days(inj.notes or "")
            if span is not None:  # relief told by how long it lasted before wearing off
                lasted_days, words = span
                durable_days = self.p("durable_relief_days")
                resp = ("responder" if lasted_days >= durable_days else
                        "partial" if lasted_days >= judge_after else "non-responder")
                ev.append(Evidence(inj.ref, "relief the patient reported, then wore off", words, inj.when))
                return Outcome(inj, resp, lasted_days >= durable_days, baseline, None, None, anesthetic, an_score,
                               lasted_days, ev)
            said = RELIEF_PERCENT_TEXT.search(inj.notes or "")
            if said:  # the patient's own rating, in the record's words, beside the (missing) scores
                pct = float(said.group(1) or said.group(2))
                resp = ("responder" if pct >= self.p("responder_relief_percent") else
                        "partial" if pct >= self.p("important_relief_percent") else "non-responder")
                ev.append(Evidence(inj.ref, "relief the patient reported", f"{pct:g}%", inj.when))
                return Outcome(inj, resp, None, baseline, None, None, anesthetic, an_score, None, ev)
            text_fail = NO_RELIEF_TEXT.search(inj.notes or "")
            told_good = not text_fail and BENEFIT_REPORTED in (inj.notes or "")
            resp = "non-responder" if text_fail else ("responder" if told_good else "unknown")
            return Outcome(inj, resp, False if text_fail else None, baseline, None, None, anesthetic, an_score,
                           None, ev)
        latest = follow[-1]
        best = min(follow, key=lambda s: s.value)
        for s in follow:
            ev.append(Evidence(s.ref, f"pain {(s.when - t0).days} days after injection", f"{s.value:g}/10", s.when))
        b = baseline.value
        relief = [s for s in follow if self._important(b, s.value)]
        relief_days = max(((s.when - t0).total_seconds() / 86400 for s in relief), default=0.0)
        lasted = relief_days >= self.p("durable_relief_days")
        if self._responder(b, latest.value) or (lasted and self._responder(b, best.value)):
            resp = "responder"  # relief at the last score, or relief that lasted the expected weeks then faded
        elif self._important(b, latest.value) or self._important(b, best.value):
            resp = "partial"
        else:
            resp = "non-responder"
        # Durable: relief lasted the expected weeks. Relief still present at the last score of a shorter
        # follow-up is not yet known to be durable or not (None), and is never counted as a failure.
        still = self._important(b, latest.value)
        durable: bool | None = True if lasted else (None if still else False)
        if (durable is False and relief and self._relief_may_have_lasted(t0, b, relief[-1], follow)
                and not NO_RELIEF_TEXT.search(inj.notes or "")):  # unless the record says it did not last
            durable = None  # relief seen before the threshold, its loss only seen well after: unknown
        return Outcome(inj, resp, durable, baseline, latest, best, anesthetic, an_score, relief_days, ev)

    def _relief_may_have_lasted(self, t0: datetime, base: float, last_relief: PainScore,
                                follow: list[PainScore]) -> bool:
        """Whether the scores leave open that relief lasted the durable weeks: the last score with relief
        came before the threshold and the first score without it only after (sparse follow-up, e.g. a
        monthly score then the next visit months later). Relief that faded is not durable only when a
        score inside the threshold shows it gone."""
        after = [s for s in follow if s.when > last_relief.when and not self._important(base, s.value)]
        if not after:
            return False
        return (after[0].when - t0).total_seconds() / 86400 > self.p("durable_relief_days")

    def _responder(self, base: float, score: float) -> bool:
        """OMERACT-OARSI: a relative AND an absolute improvement (>= 50% and >= 20/100, i.e. 2 NRS points)."""
        if base <= 0:
            return False
        drop = base - score
        return (drop / base * 100 >= self.p("responder_relief_percent")
                and drop >= self.p("responder_relief_points"))

    def _important(self, base: float, score: float) -> bool:
        if base <= 0:
            return False
        drop = base - score
        return drop >= self.p("important_relief_points") or drop / base * 100 >= self.p("important_relief_percent")


FACTS: dict[str, Callable[[Context], Fact]] = {}

# Concepts the engine's facts and clinical view look up by name. Loading checks they exist, so a
# knowledge edit that renames one fails loudly instead of silently disabling a safety check.
ENGINE_CONCEPTS = (
    "diabetes", "diabetes-medication", "insulin", "hba1c", "inr", "anticoagulant", "antiplatelet",
    "vitamin-k-antagonist", "advanced-osteoarthritis", "kl-grade", "pain-nrs", "exercise-therapy", "imaging-workup",
    "radiograph",
    "allergy-corticosteroid", "allergy-local-anesthetic", "allergy-contrast", "allergy-antiseptic",
)


def fact(fn: Callable[[Context], Fact]) -> Callable[[Context], Fact]:
    FACTS[fn.__name__] = fn
    return fn


def _inj_ev(inj: Injection, what: str = "corticosteroid injection") -> Evidence:
    tgt = inj.target.label if inj.target else "unknown target"
    side = f"{inj.side} " if inj.side else ""
    dose = inj.steroid.describe() if inj.steroid else "no corticosteroid recorded"
    when = " (date not stated: on or before the note)" if inj.date_unknown else \
        " (date not stated: placed in the stated period)" if inj.date_estimated else ""
    return Evidence(inj.ref, what, f"{side}{tgt}, {inj.guidance}, {dose}{when}", inj.when)


# ---- history, interval and exposure -------------------------------------------------------
@fact
def prior_site_injections(ctx: Context) -> Fact:
    prior = ctx.same_site_earlier()
    return Fact(len(prior), [_inj_ev(i) for i in prior], f"{len(prior)}")


@fact
def days_since_prior_site_injection(ctx: Context) -> Fact:
    prior = ctx.same_site_earlier()
    if not prior:
        return Fact(None, [], "no earlier injection at this site")
    dated = [i for i in prior if not i.date_estimated]
    undated = len(prior) - len(dated)
    days = None
    if dated:
        last = dated[-1]
        assert last.when is not None
        days = (ctx.ref_time.date() - last.when.date()).days  # calendar days, as a clinician counts them
    if undated and (days is None or days >= ctx.p("min_interval_days")):
        # injections counted over a period may be as recent as the note that counts them
        return Fact(None, [], f"unknown ({undated} earlier injection(s) at this site without a stated date)")
    assert days is not None
    return Fact(days, [_inj_ev(last, "last corticosteroid injection at this site")], f"{days}")


def _within(ctx: Context, items: list[Injection], days: int) -> list[Injection]:
    """The injections of the look-back ending on the reference day, that day and its first day counted (365 days is
    the same calendar day a year earlier). An injection with no date at all may or may not fall in it: not counted."""
    start = period_start(ctx.ref_time.date(), days)
    return [i for i in items if i.when is not None and i.when.date() >= start and not i.date_unknown]


def _year(ctx: Context, items: list[Injection]) -> list[Injection]:
    return _within(ctx, items, 365)


def _plus_current(ctx: Context) -> int:
    return 1 if ctx.mode == "assess" or ctx.injection.steroid is not None else 0


@fact
def site_count_year(ctx: Context) -> Fact:
    items = _year(ctx, ctx.same_site_earlier())
    n = len(items) + _plus_current(ctx)
    return Fact(n, [_inj_ev(i) for i in items], f"{n}")


@fact
def region_count_year(ctx: Context) -> Fact:
    area = ctx.area(ctx.injection)
    items = _year(ctx, [i for i in ctx.earlier_injections() if area and ctx.area(i) == area])
    n = len(items) + _plus_current(ctx)
    return Fact(n, [_inj_ev(i) for i in items], f"{n}")


@fact
def long_term_count(ctx: Context) -> Fact:
    """Injections at any site over the multi-year look-back, the current one included: years of injections
    that each stay under the yearly limits still add up ("if you find yourself in a hole, stop digging")."""
    days = int(ctx.p("long_term_window_days"))
    items = _within(ctx, ctx.earlier_injections(), days)
    n = len(items) + _plus_current(ctx)
    return Fact(n, [_inj_ev(i) for i in items], f"{n} in {days / 365.25:.0f} years")


@fact
def cumulative_tae_year(ctx: Context) -> Fact:
    items = _year(ctx, ctx.earlier_injections())
    total = sum(i.tae for i in items) + ctx.injection.tae
    unknown = [i for i in items if i.steroid is not None and i.steroid.tae_mg is None]
    text = f"{total:g} mg {ctx.kb.equivalence_unit.replace('mg ', '')}"
    if unknown:
        text += f" (plus {len(unknown)} injection(s) with no recorded dose)"
    return Fact(total, [_inj_ev(i) for i in items], text)


@fact
def planned_tae(ctx: Context) -> Fact:
    s = ctx.injection.steroid
    if s is None or s.tae_mg is None:
        return Fact(None, [], "unknown")
    ev = [Evidence(s.ref or ctx.injection.ref, "corticosteroid dose", s.describe(), None)]
    return Fact(s.tae_mg, ev, f"{s.tae_mg:g}")


def _dose_vs_range(ctx: Context, above: bool) -> Fact:
    """Planned dose (mg triamcinolone-equivalent) against the target's recommended range."""
    t = ctx.injection.target
    tae = ctx.fact("planned_tae")
    if t is None or tae.value is None:
        return Fact(False)
    s = ctx.injection.steroid
    drug = s.drug if s is not None else None
    converted = drug is not None and drug.equivalent_mg != ctx.kb.equivalence_reference_mg
    margin = ctx.p("dose_conversion_tolerance_pct") / 100 if converted else 0.0  # equivalence is approximate
    if above:
        return Fact(tae.value > t.dose.max * (1 + margin), tae.evidence, f"{tae.value:g} > {t.dose.max:g}")
    return Fact(tae.value < t.dose.min * (1 - margin), tae.evidence, f"{tae.value:g} < {t.dose.min:g}")


@fact
def dose_above_max(ctx: Context) -> Fact:
    return _dose_vs_range(ctx, above=True)


@fact
def dose_below_min(ctx: Context) -> Fact:
    return _dose_vs_range(ctx, above=False)


@fact
def no_steroid(ctx: Context) -> Fact:
    inj = ctx.injection
    # an anaesthetic-only injection: no steroid to give lasting relief. Hyaluronic acid or PRP is another
    # treatment with its own dose, not a corticosteroid injection short of its steroid.
    return Fact(inj.steroid is None and bool(inj.anesthetics) and not inj.others, [_inj_ev(inj, "injection")], "")


@fact
def particulate_steroid(ctx: Context) -> Fact:
    s = ctx.injection.steroid
    ok = s is not None and s.drug is not None and s.drug.particulate
    return Fact(ok, [Evidence(s.ref or ctx.injection.ref, "planned corticosteroid", s.describe())] if ok and s else [])


# ---- response to earlier injections at the site -------------------------------------------
def _prior_outcomes(ctx: Context) -> list[Outcome]:
    return [ctx.outcome(i) for i in ctx.same_site_earlier()]


@fact
def prior_nondurable(ctx: Context) -> Fact:
    outs = [o for o in _prior_outcomes(ctx) if o.durable is False or o.response == "non-responder"]
    ev = [e for o in outs for e in ([_inj_ev(o.injection), *o.evidence])]
    return Fact(len(outs), ev, f"{len(outs)}")


@fact
def prior_durable(ctx: Context) -> Fact:
    outs = [o for o in _prior_outcomes(ctx) if o.durable]
    ev = [e for o in outs for e in ([_inj_ev(o.injection), *o.evidence])]
    return Fact(len(outs), ev, f"{len(outs)}")


@fact
def repeated_nonresponse(ctx: Context) -> Fact:
    """Enough earlier injections at this site, at least one measured failure and no durable success."""
    n = ctx.fact("prior_site_injections")
    fails = ctx.fact("prior_nondurable")
    wins = ctx.fact("prior_durable")
    current = ctx.outcome(ctx.injection) if ctx.mode == "review" else None
    failures = fails.value + (1 if current and current.response in ("non-responder",) else 0)
    total = n.value + (1 if ctx.mode == "review" else 0)
    # relief still present at the last score of a short follow-up is not a failure (durable unknown)
    ongoing = any(o.durable is None and o.response in ("responder", "partial") for o in _prior_outcomes(ctx))
    ok = (total >= ctx.p("repeated_nonresponse_min_injections") and failures >= 1 and wins.value == 0
          and not ongoing)
    if ctx.mode == "review" and current and current.response in ("responder",):
        ok = False
    return Fact(ok, n.evidence + fails.evidence, f"{total} injections at this site, {failures} without benefit")


@fact
def prior_landmark_failure(ctx: Context) -> Fact:
    outs = [o for o in _prior_outcomes(ctx) if not o.injection.guided and o.response != "responder" and not o.durable]
    return Fact(len(outs) > 0, [_inj_ev(o.injection) for o in outs], f"{len(outs)}")


@fact
def relief_shortening(ctx: Context) -> Fact:
    seq = [o for o in _prior_outcomes(ctx) + ([ctx.outcome(ctx.injection)] if ctx.mode == "review" else [])
           if o.relief_days is not None]
    texts = [ctx.injection.notes, *(i.notes for i in ctx.same_site_earlier())]
    for c in ctx.view.conditions:
        texts.append(c.code.all_text() + " " + c.notes)
    text_ev = [t for t in texts if t and says(SHORTENING_TEXT, t)]
    days = [o.relief_days for o in seq if o.relief_days is not None]
    shortening = len(days) >= 2 and days[-1] < days[0] and all(a >= b for a, b in pairwise(days))
    ev = [Evidence(o.injection.ref, "relief after injection", f"{o.relief_days:.0f} days", o.injection.when)
          for o in seq]
    return Fact(shortening or bool(text_ev), ev, ", ".join(f"{o.relief_days:.0f}" for o in seq))


# ---- the injection under review -----------------------------------------------------------
@fact
def response(ctx: Context) -> Fact:
    o = ctx.outcome(ctx.injection)
    return Fact(o.response, o.evidence, o.response)


@fact
def days_since_injection(ctx: Context) -> Fact:
    inj = ctx.injection
    assert inj.when is not None
    if inj.date_unknown:
        return Fact(None, [_inj_ev(inj, "reviewed injection")], "unknown (the injection's date is not stated)")
    d = (ctx.view.now - inj.when).total_seconds() / 86400
    return Fact(d, [_inj_ev(inj, "reviewed injection")], f"{int(d)}")


@fact
def anesthetic_phase(ctx: Context) -> Fact:
    o = ctx.outcome(ctx.injection)
    ev = [e for e in o.evidence if e.what in ("pain before injection", "pain in the anaesthetic phase")]
    return Fact(o.anesthetic_phase, ev, o.anesthetic_phase)


@fact
def anesthetic_relief(ctx: Context) -> Fact:
    f = ctx.fact("anesthetic_phase")
    return Fact(f.value == "relief", f.evidence)


@fact
def anesthetic_no_relief(ctx: Context) -> Fact:
    f = ctx.fact("anesthetic_phase")
    return Fact(f.value == "no-relief", f.evidence)


@fact
def guided(ctx: Context) -> Fact:
    inj = ctx.injection
    return Fact(inj.guided, [Evidence(inj.ref, "guidance", f"{inj.guidance} ({inj.guidance_basis})", inj.when)])


@fact
def landmark_miss_likely(ctx: Context) -> Fact:
    inj = ctx.injection
    t = inj.target
    if inj.guided or t is None:
        return Fact(False)
    acc = t.landmark_accuracy_percent
    miss = None if acc is None else 100 - acc
    likely = (miss is not None and miss >= ctx.p("large_landmark_miss_percent")) or (acc is None and t.guidance == "required")
    text = f"about {miss:g}%" if miss is not None else "not known (guidance is standard)"
    return Fact(likely, [Evidence(inj.ref, "guidance", f"{inj.guidance} ({inj.guidance_basis})", inj.when)], text)


@fact
def pt_after_injection(ctx: Context) -> Fact:
    t = ctx.ref_time
    items = [th for th in ctx.view.therapies if th.start is not None and th.start >= t - timedelta(days=1)]
    return Fact(bool(items), [Evidence(th.ref, th.label, th.status, th.start) for th in items])


# ---- conservative care --------------------------------------------------------------------
def _same_area(kb: Knowledge, region: str, regions: frozenset[str]) -> bool:
    """Therapy with no stated region, or in the same body area as the target, counts for it."""
    if not regions or region in regions or "*" in regions:
        return True
    return kb.regions[region].area in {kb.regions[r].area for r in regions if r in kb.regions}


@fact
def conservative_care(ctx: Context) -> Fact:
    """'tried', 'too-short' (a course under way for less than the minimum) or 'none'."""
    v = ctx.view
    region = ctx.injection.target.region if ctx.injection.target else None
    look = ctx.p("conservative_care_lookback_days")
    items = []
    for th in v.therapies:
        if region and not _same_area(ctx.kb, region, th.regions):
            continue
        when = th.end or th.start
        if when is not None and v.days_before_now(when) > look:
            continue
        items.append(th)
    if not items:
        if any(u.startswith("physical therapy") for u in v.record.unavailable):
            return Fact("unknown", [], "not known (the source does not say)")
        return Fact("none", [], f"none found in the last {look:g} days")
    ev = [Evidence(th.ref, th.label, th.status, th.start) for th in items]
    least = ctx.p("min_conservative_trial_days")
    # the courses and sessions together: a completed week of home exercise is not an adequate trial, a series
    # of one-day sessions over two months is
    dated_all = all(th.start is not None and th.end is not None for th in items)  # how long is known
    span = (max(th.end for th in items) - min(th.start for th in items)).days if dated_all else None
    for th in items:
        if th.status == "completed" and not (dated_all and span is not None and span < least):
            return Fact("tried", ev, "completed")
        if th.start is not None and v.days_before_now(th.start) >= least:
            return Fact("tried", ev, "under way long enough")
    if span is not None and dated_all and all(th.status == "completed" for th in items):
        return Fact("too-short", ev, f"completed, but only {span} days in all")
    return Fact("too-short", ev, "started recently")


# ---- patient state ------------------------------------------------------------------------
def _cond_ev(ctx: Context, concept: str, active: bool = True, recent_days: float | None = None) -> list[Evidence]:
    v = ctx.view
    out = []
    for c, _ in v.conditions_with(_one(concept)):
        if active and not v.condition_active(c):
            continue
        if recent_days is not None and not (c.when and v.days_before_now(c.when) <= recent_days):
            continue
        out.append(v.condition_evidence(c))
    return out


@lru_cache(maxsize=1024)
def _one(concept: str) -> frozenset[str]:
    return frozenset((concept,))


def _med_ev(ctx: Context, concept: str) -> list[Evidence]:
    return [Evidence(m.ref, m.medication.label(), m.status, m.start) for m in ctx.view.current_medications(concept)]


def _meds_fact(ctx: Context, *concepts: str) -> Fact:
    ev = [e for c in concepts for e in _med_ev(ctx, c)]
    return Fact(bool(ev), ev)


def _latest_fact(ctx: Context, concept: str, lookback: str, label: str, unit: str = "") -> Fact:
    """The latest value within a policy look-back; unknown (None, said in words) when there is none."""
    m = ctx.view.latest(concept, ctx.p(lookback))
    if m is None:
        return Fact(None, [], f"no {label} in the last {ctx.p(lookback):g} days")
    return Fact(m.value, [Evidence(m.ref, m.label, f"{m.value:g}{unit}{m.note}", m.when)], f"{m.value:g}{unit}")


@fact
def diabetic(ctx: Context) -> Fact:
    """A diagnosis, a diabetes medicine, or a recent HbA1c at the diagnostic threshold (policy): an
    undiagnosed diabetic's glucose rises after a corticosteroid as much as a coded one's."""
    ev = _cond_ev(ctx, "diabetes") + _med_ev(ctx, "diabetes-medication")
    a1c = ctx.fact("hba1c")
    if a1c.value is not None and a1c.value >= ctx.p("hba1c_diabetes_percent"):
        ev += a1c.evidence
    return Fact(bool(ev), ev)


@fact
def insulin(ctx: Context) -> Fact:
    return _meds_fact(ctx, "insulin")


@fact
def hba1c(ctx: Context) -> Fact:
    return _latest_fact(ctx, "hba1c", "hba1c_lookback_days", "HbA1c", " %")


@fact
def anticoagulated(ctx: Context) -> Fact:
    return _meds_fact(ctx, "anticoagulant", "antiplatelet")


@fact
def vka(ctx: Context) -> Fact:
    return _meds_fact(ctx, "vitamin-k-antagonist")


@fact
def inr(ctx: Context) -> Fact:
    return _latest_fact(ctx, "inr", "inr_lookback_days", "INR")


@fact
def scheduled_arthroplasty(ctx: Context) -> Fact:
    v = ctx.view
    joint = _target_joint(ctx)
    if joint is None:
        return Fact(False)
    concept = f"{joint}-arthroplasty-procedure"
    if concept not in ctx.kb.terminology.concepts:
        return Fact(False)
    window = ctx.p("pre_arthroplasty_window_days")
    ev = []
    for s in v.record.service_requests:
        if s.status not in ("active", "on-hold", "draft") or (s.status == "draft" and s.intent == "proposal"):
            continue
        if concept not in v.concepts(s.ref, s.code, s.notes):
            continue
        if not sides_compatible(ctx.injection.side, side_of(s.code.all_text() + " " + s.body_site)):
            continue
        if s.occurrence is not None:
            days_ahead = (s.occurrence.date() - v.as_of).days  # calendar days, as the booking says
            if days_ahead < 0 or days_ahead > window:
                continue
            ev.append(Evidence(s.ref, s.code.label(), f"scheduled in {max(days_ahead, 0):.0f} days", s.occurrence))
        else:
            ev.append(Evidence(s.ref, s.code.label(), "scheduled, date not recorded", s.authored))
    return Fact(bool(ev), ev)


def _target_joint(ctx: Context) -> str | None:
    """The joint the injection targets (or sits next to), if any."""
    t = ctx.injection.target
    return t.joint if t is not None else None


def _site_conditions(ctx: Context, concepts: set[str], active: bool) -> list[Evidence]:
    """Conditions with one of the concepts on a side compatible with the injection's."""
    v = ctx.view
    ev = []
    for c, _ in v.conditions_with(frozenset(concepts)):
        ok = v.condition_active(c) if active else c.present
        if ok and sides_compatible(ctx.injection.side, v.condition_side(c)):
            ev.append(Evidence(c.ref, c.code.label(), None, c.when))
    return ev


@fact
def prosthesis_at_target(ctx: Context) -> Fact:
    v = ctx.view
    joint = _target_joint(ctx)
    if joint is None:
        return Fact(False)
    concepts = {c for c in (f"prosthetic-{joint}", f"{joint}-arthroplasty-procedure")
                if c in ctx.kb.terminology.concepts}
    ev = _site_conditions(ctx, concepts, active=False)
    for p in v.record.procedures:
        if p.status != "completed" or (p.start is not None and p.start > v.now):
            continue
        side = side_of(p.code.all_text() + " " + p.body_site)
        if concepts & v.concepts(p.ref, p.code, p.notes) and sides_compatible(ctx.injection.side, side):
            ev.append(Evidence(p.ref, p.code.label(), "completed", p.start))
    return Fact(bool(ev), ev)


@fact
def indication_present(ctx: Context) -> Fact:
    t = ctx.injection.target
    ev = _site_conditions(ctx, set(t.indications), active=True) if t else []
    return Fact(bool(ev), ev)


def _competing_conditions(ctx: Context) -> list[tuple[Condition, frozenset[str]]]:
    """Other pain generators that could explain pain at this target: current (clinical status, not onset
    date), on a compatible side, and in the target's region, its wider area (lumbar spine and sacroiliac
    refer to the hip) or a region that refers pain to it (hip to knee). No recorded location counts."""
    v = ctx.view
    t = ctx.injection.target
    if t is None:
        return []
    competing = set(t.competing) - set(t.indications)
    out = []
    for c, cc in v.conditions_with(frozenset(competing)):
        hit = competing & cc
        if not v.condition_active(c):
            continue
        if not sides_compatible(ctx.injection.side, v.condition_side(c)):
            continue
        if t.region and not _refers_here(ctx.kb, v.condition_regions(c) - {"*"}, t.region):
            continue
        out.append((c, frozenset(hit)))
    return out


def _refers_here(kb: Knowledge, regions: frozenset[str], target_region: str) -> bool:
    if not regions:
        return True
    area = kb.regions[target_region].area
    return any(r in kb.regions and (kb.regions[r].area == area or target_region in kb.regions[r].refers_to)
               for r in regions)


@fact
def competing_generator(ctx: Context) -> Fact:
    """Another current pain generator on this side, in or referring to the target's region."""
    ev = [ctx.view.condition_evidence(c) for c, _ in _competing_conditions(ctx)]
    return Fact(bool(ev), ev)


@fact
def planned_diagnostic_injection(ctx: Context) -> Fact:
    """The plan is itself a diagnostic test: image-guided, with local anaesthetic, and no earlier guided
    anaesthetic injection at this site has already answered the question."""
    inj = ctx.injection
    if ctx.mode != "assess" or not inj.guided or not inj.anesthetics:
        return Fact(False)
    done = [i for i in ctx.same_site_earlier() if i.guided and i.anesthetics]
    if done:
        return Fact(False, [_inj_ev(i, "earlier guided injection with anaesthetic") for i in done])
    return Fact(True, [Evidence(inj.ref, "planned injection", f"{inj.guidance}-guided with "
                                + ", ".join(a.label for a in inj.anesthetics), None)])


@fact
def other_source_to_block(ctx: Context) -> Fact:
    """Targets whose diagnostic block would test another suspected pain generator (data: the targets
    whose indications include a current competing diagnosis)."""
    cur = ctx.injection.target
    found: dict[str, Target] = {}
    ev = []
    for c, concepts in _competing_conditions(ctx):
        blocks = [t for t in ctx.kb.targets.values()
                  if cur is not None and t.id != cur.id and concepts & set(t.indications) and t.kind != "muscle"]
        for t in blocks:
            found.setdefault(t.id, t)
        if blocks:
            ev.append(Evidence(c.ref, c.code.label(), "suspected source: " + ", ".join(t.label for t in blocks), c.when))
    return Fact(bool(found), ev, "; ".join(t.label for t in found.values()) or "none")


@fact
def advanced_disease(ctx: Context) -> Fact:
    v = ctx.view
    ev = []
    m = v.latest("kl-grade")
    if m is not None and m.value >= ctx.p("advanced_kl_grade"):
        ev.append(Evidence(m.ref, m.label, f"grade {m.value:g}", m.when))
    ev += _cond_ev(ctx, "advanced-osteoarthritis")
    return Fact(bool(ev), ev)


@fact
def imaging_on_record(ctx: Context) -> Fact:
    v = ctx.view
    ev = [Evidence(p.ref, p.code.label(), None, p.start) for p in v.record.procedures
          if (p.start is None or p.start <= v.now) and "imaging-workup" in v.concepts(p.ref, p.code, p.notes)]
    ev += [Evidence(o.ref, o.code.label(), o.value_text or (f"{o.value:g}" if o.value is not None else None), o.when)
           for o in v.observations if {"imaging-workup", "kl-grade"} & v.observation_concepts(o)]
    return Fact(bool(ev), ev)


@fact
def radiographs_on_record(ctx: Context) -> Fact:
    """Plain radiographs done (a radiograph procedure or report, or a Kellgren-Lawrence grade read from one)."""
    v = ctx.view
    ev = [Evidence(p.ref, p.code.label(), None, p.start) for p in v.record.procedures
          if p.status not in ("not-done", "entered-in-error") and (p.start is None or p.start <= v.now)
          and "radiograph" in v.concepts(p.ref, p.code, p.notes)]
    ev += [Evidence(o.ref, o.code.label(), o.value_text or (f"{o.value:g}" if o.value is not None else None), o.when)
           for o in v.observations if {"radiograph", "kl-grade"} & v.observation_concepts(o)]
    return Fact(bool(ev), ev)


@fact
def pediatric(ctx: Context) -> Fact:
    age = ctx.view.age
    ok = age is not None and age < ctx.p("pediatric_age_years")
    return Fact(ok, [Evidence(ctx.view.record.patient.ref, "age", f"{age} years")] if ok else [])


@fact
def post_injection_flare(ctx: Context) -> Fact:
    o = ctx.outcome(ctx.injection)
    inj = ctx.injection
    if o.baseline is None or inj.when is None:
        return Fact(False)
    start = inj.when + timedelta(hours=ctx.anesthetic_hours(inj) / 4)
    end = inj.when + timedelta(days=ctx.p("flare_window_days"))
    hits = [s for s in ctx.view.pain_for(inj.side)[0]
            if start < s.when <= end and s.value - o.baseline.value >= ctx.p("flare_rise_points")]
    ev = [Evidence(s.ref, "pain after injection", f"{s.value:g}/10 (baseline {o.baseline.value:g})", s.when) for s in hits]
    return Fact(bool(hits), ev)


@fact
def next_site_injection_date(ctx: Context) -> Fact:
    """Earliest date policy allows another corticosteroid injection at this site."""
    inj = ctx.injection
    if inj.when is None or inj.steroid is None:
        return Fact(None, text="unknown (injection date or corticosteroid not recorded)")
    due = inj.when + timedelta(days=ctx.p("min_interval_days"))
    return Fact(due, [_inj_ev(inj)], due.date().isoformat())


@fact
def unavailable_data(ctx: Context) -> Fact:
    """Kinds of data the source said it could not supply; absent data must not read as "none"."""
    missing = ctx.view.record.unavailable
    t = ctx.injection.target
    if ctx.mode == "assess" and t is not None and not t.conservative_care_first:
        # therapy is read only where it comes first (targets.yaml): unstated, it leaves nothing unchecked here
        missing = tuple(m for m in missing if m != THERAPY_UNSTATED)
    if not missing:
        return Fact(False, text="nothing")
    listed = ", ".join(missing)
    return Fact(True, [Evidence(ctx.view.record.source or "input", "not received", listed)], listed)


def describe_date(d: datetime | None) -> str:
    return fmt_date(d) or "date unknown"


@fact
def relief_lasted_expected(ctx: Context) -> Fact:
    """Relief lasted the expected weeks (then faded): the expected course, not a failed diagnosis."""
    o = ctx.outcome(ctx.injection)
    ok = o.durable is True
    ev = [Evidence(ctx.injection.ref, "relief after injection", f"{o.relief_days:.0f} days", ctx.injection.when)] \
        if ok and o.relief_days is not None else []
    return Fact(ok, ev, f"{o.relief_days:.0f} days" if o.relief_days is not None else "unknown")


# Safety facts live in their own module and register into FACTS on import.
from injectwise.engine import safety as _safety  # noqa: E402,F401
