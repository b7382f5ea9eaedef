"""Safety facts beyond coded diagnoses: infection evidence in results, bleeding by procedure risk,
local anaesthetic maxima, pregnancy and immunosuppression from the whole record. Registered in the
same fact table the rules use; every fact names the patient data it rests on."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from injectwise.core.dates import fmt_date
from injectwise.core.record import MedicationUse, Observation
from injectwise.engine.clinical import CURRENT_STATUSES, Agent, side_of, sides_compatible
from injectwise.engine.facts import Context, Fact, _inj_ev, fact
from injectwise.engine.result import Evidence
from injectwise.knowledge.model import Antithrombotic
from injectwise.knowledge.terminology import system_kind

GRAM_WORDS = re.compile(r"gram[- ]?(positive|negative|variable)", re.I)
NEGATIVE_RESULT = re.compile(r"\b(no|not|none|nil|absent|sterile|negative|normal|neg)\b|no growth|\bng\b", re.I)
PENDING_RESULT = re.compile(r"pending|preliminary|in progress|to follow|awaited|not yet", re.I)
NOT_PREGNANT = re.compile(r"not pregnant|non-?pregnant|\bnegative\b|\bneg\b|not detected|\bno\b|unknown|\bunk\b", re.I)
PREGNANT = re.compile(r"pregnan|positive|\bpos\b|detected|reactive|\byes\b", re.I)
INJECTED = re.compile(r"inject|intra-?articular|intramuscular|epidural|\bIM\b|\bIA\b|depot", re.I)
# taken by mouth day by day (an oral glucocorticoid, or words of a daily regimen): a depot steroid named in a note
# ("triamcinolone 40 mg") is an injection, not a medicine taken now
ORAL_DAILY = re.compile(r"prednis|deltasone|(?<!depo-)(?<!depo )\bmedrol\b|\b(?:po|p\.o\.|oral|orally|by mouth|"
                        r"tablets?|tabs?|daily|bid|tid|qd|od|once a day|twice a day|every (?:day|morning))\b", re.I)
SHORT_COURSE = re.compile(r"taper|burst|dose ?pa?c?k|\bcourse\b|\bx\s*\d+\s*d(ays?)?\b|for \d+ days", re.I)
PER_SIDE = re.compile(r"\b(each|per) (side|hip|knee|shoulder|joint)\b|\beach\b|\bper side\b", re.I)
ENDED_STATUSES = ("stopped", "completed", "on-hold", "cancelled")


def result_reading(o: Observation) -> str:
    """'positive', 'negative', 'pending' or 'unknown' for a qualitative result (culture, stain, crystals)."""
    text = (o.value_text or "").strip()
    if not text:
        return "unknown"
    t = GRAM_WORDS.sub("gram-stained", text)
    if PENDING_RESULT.search(t):
        return "pending"
    if NEGATIVE_RESULT.search(t):
        return "negative"
    return "positive"  # "positive", "detected", an organism named, crystals described


def _obs_ev(o: Observation, what: str | None = None) -> Evidence:
    value = o.value_text or (f"{o.value:g} {o.unit}".strip() if o.value is not None else None)
    return Evidence(o.ref, what or o.code.label(), value, o.when)


def _in_window(ctx: Context, when: datetime | None, lookback: str = "recent_problem_days") -> bool:
    """Assess: within the policy look-back (acute problems by default). Review: also anything since the
    injection within the infection window."""
    v = ctx.view
    if when is None or when > v.now:
        return False
    if v.days_before_now(when) <= ctx.p(lookback):
        return True
    if ctx.mode == "review" and ctx.injection.when is not None:
        start = ctx.injection.when
        return start.date() <= when.date() and when <= start + timedelta(days=ctx.p("infection_window_days"))
    return False


# ---- infection evidence beyond diagnoses ---------------------------------------------------
@fact
def joint_fluid_infection(ctx: Context) -> Fact:
    """Joint-fluid or microbiology results that speak for infection: a septic-range joint-fluid white
    count, organisms on Gram stain, a positive culture, or crystals (which do not exclude sepsis)."""
    v = ctx.view
    ev: list[Evidence] = []
    for m in v.measurements("synovial-wbc"):
        if _in_window(ctx, m.when) and m.value >= ctx.p("synovial_wbc_septic_per_ul"):
            ev.append(Evidence(m.ref, m.label, f"{m.value:g} /uL{m.note}", m.when))
    for o in v.observations:
        if not _in_window(ctx, o.when):
            continue
        cc = v.observation_concepts(o)
        for concept, what in (("culture", "culture positive"), ("gram-stain", "organisms on Gram stain"),
                              ("synovial-crystals", "crystals in joint fluid")):
            if concept in cc and result_reading(o) == "positive":
                ev.append(_obs_ev(o, f"{o.code.label()}: {what}"))
                break
    return Fact(bool(ev), ev, "; ".join(e.value or e.what for e in ev))


@fact
def inflammatory_markers_raised(ctx: Context) -> Fact:
    """At least two of CRP, white cells and ESR raised (latest of each within the lab window)."""
    v = ctx.view
    ev = []
    for concept, limit in (("crp", "crp_raised_mg_l"), ("wbc", "wbc_raised_10e9_l"), ("esr", "esr_raised_mm_h")):
        hits = [m for m in v.measurements(concept) if _lab_window(ctx, m.when) and m.value > ctx.p(limit)]
        if hits:
            m = hits[-1]
            ev.append(Evidence(m.ref, m.label, f"{m.value:g} {m.unit}{m.note}", m.when))
    return Fact(len(ev) >= 2, ev if len(ev) >= 2 else [], f"{len(ev)} of 3 raised")


def _lab_window(ctx: Context, when: datetime | None) -> bool:
    return _in_window(ctx, when, "labs_lookback_days")


@fact
def prior_septic_arthritis_this_joint(ctx: Context) -> Fact:
    """Septic arthritis of the target joint (now resolved) within the policy window: the joint must be
    shown clear of infection before a corticosteroid goes into it."""
    v = ctx.view
    t = ctx.injection.target
    if t is None or t.region is None:
        return Fact(False)
    limit = ctx.p("prior_septic_arthritis_days")
    ev = []
    for c, _ in v.conditions_with(frozenset(("joint-infection",))):
        if not c.present:
            continue
        if c.clinical_status in CURRENT_STATUSES or c.verification in ("provisional", "differential", "unconfirmed"):
            continue  # a current or suspected infection: contraindication.infection-suspected speaks for it
        regs = v.condition_regions(c)
        if regs and "*" not in regs and t.region not in regs:
            continue
        if not sides_compatible(ctx.injection.side, v.condition_side(c)):
            continue
        # when it happened (onset, abatement); the day it was written down only when neither is known ("septic
        # arthritis in March 2024, resolved" in a 2026 note is not a recent infection)
        dates = [d for d in (c.abated, c.onset) if d is not None and d <= v.now] or \
            [d for d in (c.recorded,) if d is not None and d <= v.now]
        last = max(dates, default=None)
        if last is None or v.days_before_now(last) > limit:
            continue
        ev.append(Evidence(c.ref, c.code.label(), c.clinical_status or None, last))
    return Fact(bool(ev), ev)


@fact
def pain_relapse_after_improvement(ctx: Context) -> Fact:
    """Review: pain that had clearly improved and then rises sharply, back to or above its level before the
    injection, within the infection window. A rise that stays below the pre-injection level is the steroid
    wearing off (relief fades over weeks), not a sign of infection."""
    o = ctx.outcome(ctx.injection)
    inj = ctx.injection
    if o.baseline is None or inj.when is None:
        return Fact(False)
    start = inj.when + timedelta(days=ctx.p("flare_window_days"))
    end = inj.when + timedelta(days=ctx.p("infection_window_days"))
    scores = [s for s in ctx.view.pain_for(inj.side)[0] if start <= s.when <= end]
    rise = ctx.p("infection_relapse_rise_points")
    within = timedelta(days=ctx.p("infection_relapse_within_days"))
    base = o.baseline.value
    for i, low in enumerate(scores):
        if not (base - low.value >= ctx.p("important_relief_points")):
            continue
        for hi in scores[i + 1:]:
            if hi.when - low.when > within:
                break
            if hi.value - low.value >= rise and hi.value >= base:
                ev = [Evidence(o.baseline.ref, "pain before injection", f"{base:g}/10", o.baseline.when),
                      Evidence(low.ref, "pain after improvement", f"{low.value:g}/10", low.when),
                      Evidence(hi.ref, "pain rising sharply", f"{hi.value:g}/10", hi.when)]
                return Fact(True, ev, f"{low.value:g} -> {hi.value:g}/10 within {(hi.when - low.when).days} days")
    return Fact(False)


# ---- bleeding by procedure risk ------------------------------------------------------------
def antithrombotic_of(ctx: Context, m: MedicationUse) -> Antithrombotic | None:
    codes = {c.code for c in m.medication.codings if system_kind(c.system) == "rxnorm"}
    text = m.medication.all_text()
    for a in ctx.kb.antithrombotics.values():
        if codes & a.rxnorm:
            return a
    for a in ctx.kb.antithrombotics.values():
        if any(p.search(text) for p in a.text):
            return a
    return None


def _hold_state(ctx: Context, m: MedicationUse, hold_days: float) -> tuple[bool, str] | None:
    """(held long enough?, words) for one anticoagulant/antiplatelet statement; None if not relevant."""
    v = ctx.view
    if m.status in ("entered-in-error", "not-taken", "draft", "intended") or (m.start is not None and m.start > v.now):
        return None
    if m.status in ENDED_STATUSES:
        if m.end is None:
            if m.status == "on-hold":
                return False, "on hold, since when not documented"
            return None  # stopped at an unknown time long ago: not evidence of current use
        if m.end > v.now:  # stopped only after the as-of day: still taken on it
            return False, f"{m.status} only on {fmt_date(m.end)}, after the procedure day"
        days = (v.as_of - m.end.date()).days  # whole calendar days off the drug before the procedure day
        if days >= hold_days:
            return True, f"held {days:.0f} days (needs {hold_days:g})"
        return False, f"held only {days:.0f} days (needs {hold_days:g})"
    if m.end is not None and m.end <= v.now:
        days = (v.as_of - m.end.date()).days
        if days >= hold_days:
            return True, f"ended {days:.0f} days ago (needs {hold_days:g})"
        return False, f"ended only {days:.0f} days ago (needs {hold_days:g})"
    return False, "current, no hold documented"


@fact
def antithrombotic_without_hold(ctx: Context) -> Fact:
    """Intermediate/high bleeding-risk target and an anticoagulant or P2Y12 inhibitor not held for
    its ASRA hold time. Aspirin alone is usually continued; with a P2Y12 inhibitor it is named as dual
    antiplatelet therapy."""
    t = ctx.injection.target
    if t is None or t.bleeding_risk not in ("intermediate", "high"):
        return Fact(False)
    v = ctx.view
    ev: list[Evidence] = []
    aspirin: list[Evidence] = []
    for m in v.record.medications:
        a = antithrombotic_of(ctx, m)
        concepts = v.med_concepts(m)
        if a is None and not ({"anticoagulant", "antiplatelet"} & concepts):
            continue
        if a is not None and a.hold_days is None:
            state = _hold_state(ctx, m, 0)
            if state is not None and not state[0] and "current" in state[1]:
                aspirin.append(Evidence(m.ref, m.medication.label(), "aspirin, usually continued", m.start))
            continue
        hold = a.hold_days if a is not None else None
        state = _hold_state(ctx, m, hold if hold is not None else 1e9)
        if state is None or state[0]:
            continue
        label = a.label if a else m.medication.label()
        words = state[1] if hold is not None else f"{state[1].split(' (')[0]}; hold time not in the knowledge base"
        ev.append(Evidence(m.ref, label, words, m.end or m.start))
    if ev and aspirin and any("P2Y12" in e.what for e in ev):
        ev += [Evidence(e.resource, e.what, "with a P2Y12 inhibitor: dual antiplatelet therapy", e.when) for e in aspirin]
    return Fact(bool(ev), ev, "; ".join(f"{e.what} ({e.value})" for e in ev))


@fact
def inr_above_risk_limit(ctx: Context) -> Fact:
    """Latest INR above the limit for the target's bleeding-risk class (policy per class)."""
    t = ctx.injection.target
    risk = t.bleeding_risk if t is not None else "low"
    name = {"intermediate": "inr_limit_intermediate_risk", "high": "inr_limit_high_risk"}.get(risk, "inr_upper_limit")
    inr = ctx.fact("inr")
    if inr.value is None:
        return Fact(None, [], inr.text)
    limit = ctx.p(name)
    why = f"limit {limit:g} for a {risk}-risk procedure"
    evidence = list(inr.evidence)
    if name == "inr_upper_limit":  # low risk: in the patient's own documented range is in range
        stated = ctx.view.latest("inr-target-upper")
        if stated is not None and limit < stated.value <= ctx.p("inr_stated_target_max"):
            limit, why = stated.value, f"within the patient's stated target range, upper end {stated.value:g}"
            evidence.append(Evidence(stated.ref, stated.label, f"{stated.value:g}", stated.when))
    return Fact(inr.value > limit, evidence, f"{inr.value:g} ({why})")


@fact
def platelets_low(ctx: Context) -> Fact:
    m = ctx.view.latest("platelets", ctx.p("platelets_lookback_days"))
    if m is None:
        return Fact(None, [], f"no platelet count in the last {ctx.p('platelets_lookback_days'):g} days")
    low = m.value < ctx.p("platelets_min_10e9_l")
    return Fact(low, [Evidence(m.ref, m.label, f"{m.value:g} {m.unit}{m.note}", m.when)], f"{m.value:g} x10^9/L")


# ---- local anaesthetic maximum dose --------------------------------------------------------
def _same_day_anesthetics(ctx: Context) -> list[tuple[Agent, str]]:
    """The planned anaesthetics, every other draft anaesthetic order and those given earlier the same day."""
    v = ctx.view
    inj = ctx.injection
    texts = {m.ref: m.dose_text for m in v.record.draft_medications}
    out: list[tuple[Agent, str]] = []
    for a in inj.anesthetics:
        if inj.side == "bilateral" and a.dose_mg is not None and PER_SIDE.search(texts.get(a.ref or "", "")):
            out.append((Agent(a.drug, a.label, a.dose_mg * 2, None, a.ref), "planned, per side on both sides"))
        else:
            out.append((a, "planned"))
    seen = {a.ref for a in inj.anesthetics if a.ref}
    for m in v.record.draft_medications:
        if m.ref in seen:
            continue
        ag = v.agent(m.medication, m.dose_value, m.dose_unit, m.ref, m.dose_text)
        if ag.kind == "anesthetic":
            out.append((ag, "planned (another order)"))
    day = v.as_of
    for done in v.injections:
        if done.ref != inj.ref and done.when is not None and done.when.date() == day:
            out += [(a, f"given earlier today ({done.ref})") for a in done.anesthetics]
    return out


@fact
def body_weight(ctx: Context) -> Fact:
    m = ctx.view.latest("body-weight")
    if m is None:
        return Fact(None, [], "no body weight recorded")
    return Fact(m.value, [Evidence(m.ref, m.label, f"{m.value:g} kg{m.note}", m.when)], f"{m.value:g} kg")


@fact
def anesthetic_above_maximum(ctx: Context) -> Fact:
    """Same-day local anaesthetic above its maximum (absolute, or mg/kg with the latest weight); the
    fractions of each drug's maximum add up (systemic toxicity is additive)."""
    items = _same_day_anesthetics(ctx)
    if not items:
        return Fact(False)
    weight = ctx.fact("body_weight")
    totals: dict[str, float] = {}
    ev: list[Evidence] = []
    unknown = []
    for ag, how in items:
        d = ag.drug
        if d is None or (d.max_mg is None and d.max_mg_per_kg is None):
            continue
        if ag.dose_mg is None:
            unknown.append(ag.label)
            continue
        totals[d.id] = totals.get(d.id, 0.0) + ag.dose_mg
        ev.append(Evidence(ag.ref or ctx.injection.ref, f"{ag.label}, {how}", f"{ag.dose_mg:g} mg", None))
    fraction = 0.0
    parts = []
    for did, total in totals.items():
        d = ctx.kb.drugs[did]
        limits = [x for x in (d.max_mg,) if x is not None]
        basis = f"{d.max_mg:g} mg" if d.max_mg is not None else ""
        if weight.value is not None and d.max_mg_per_kg is not None:
            limits.append(d.max_mg_per_kg * weight.value)
            basis = f"{min(limits):g} mg (the lower of {d.max_mg:g} mg and {d.max_mg_per_kg:g} mg/kg x {weight.value:g} kg)"
        limit = min(limits)
        fraction += total / limit
        parts.append(f"{d.label} {total:g} mg against a maximum of {basis}")
    text = "; ".join(parts)
    if len(totals) > 1:
        text += f"; together {fraction * 100:.0f}% of the maximum"
    if unknown:
        text += f" (dose not recorded for {', '.join(unknown)})"
    if weight.value is None:
        text += " (no body weight recorded: absolute maxima used)"
    over = fraction > 1.0 + 1e-9
    return Fact(over, ev + (weight.evidence if over else []), text)


# ---- pregnancy, immunosuppression ----------------------------------------------------------
def _pregnancy_reading(ctx: Context, o: Observation, cc: frozenset[str]) -> str | None:
    if "pregnancy-status" in cc:
        t = o.value_text
        if not t:
            return None
        return "no" if NOT_PREGNANT.search(t) else ("yes" if PREGNANT.search(t) else None)
    if o.value is not None:
        factor = ctx.kb.units.get("IU/L", {}).get(o.unit.strip(), (1.0, 0.0))[0] if o.unit else 1.0
        return "yes" if o.value * factor >= ctx.p("hcg_positive_iu_l") else "no"
    r = (o.value_text or "").strip()
    if not r:
        return None
    if NOT_PREGNANT.search(r):
        return "no"
    return "yes" if PREGNANT.search(r) else None


@fact
def pregnant(ctx: Context) -> Fact:
    """Pregnant now: an active pregnancy diagnosis, or the latest pregnancy status / hCG result positive
    within the look-back (a later negative test cancels it)."""
    v = ctx.view
    if v.record.patient.sex == "male":
        return Fact(False)
    lookback = ctx.p("pregnancy_lookback_days")
    ev = [v.condition_evidence(c) for c, _ in v.conditions_with(frozenset(("pregnancy",))) if v.condition_active(c)
          and c.when is not None and v.days_before_now(c.when) <= lookback]
    readings = []
    for o in v.observations:
        cc = v.observation_concepts(o)
        if not ({"pregnancy-status", "pregnancy-test"} & cc) or o.when is None:
            continue
        if v.days_before_now(o.when) > lookback:
            continue
        r = _pregnancy_reading(ctx, o, cc)
        if r is not None:
            readings.append((o.when, r, o))
    if readings:
        readings.sort(key=lambda x: x[0])
        when, r, o = readings[-1]
        if r == "yes":
            ev.append(_obs_ev(o))
        elif not any(e.when is not None and e.when > when for e in ev):
            ev = []  # the latest test is negative and no diagnosis is newer
    return Fact(bool(ev), ev)


@fact
def immunosuppressed(ctx: Context) -> Fact:
    """Transplant drugs, methotrexate, biologics, JAK inhibitors, a long systemic glucocorticoid course (or
    one taken now with no start recorded and not written as a short course) or a recorded immunodeficiency
    (whatever its onset while active)."""
    v = ctx.view
    ev = [Evidence(m.ref, m.medication.label(), m.status, m.start) for m in v.current_medications("immunosuppressant")]
    ev += [v.condition_evidence(c) for c, _ in v.conditions_with(frozenset(("immunosuppressed",))) if v.condition_active(c)]
    long_days = ctx.p("long_term_glucocorticoid_days")
    for m in v.current_medications("systemic-corticosteroid"):
        text = f"{m.medication.all_text()} {m.dose_text}"
        if INJECTED.search(text):
            continue
        if m.start is None:
            # taken now, since when unknown: a maintenance dose until shown to be a short course
            if ORAL_DAILY.search(text) and not SHORT_COURSE.search(text):
                ev.append(Evidence(m.ref, m.medication.label(),
                                   "systemic glucocorticoid taken now; start not recorded, duration unknown", None))
            continue
        days = v.days_before_now(m.start)
        if days >= long_days:
            ev.append(Evidence(m.ref, m.medication.label(), f"systemic glucocorticoid for {days:.0f} days", m.start))
    return Fact(bool(ev), ev)


# ---- diabetes control: an old HbA1c is old -------------------------------------------------
@fact
def hba1c_old(ctx: Context) -> Fact:
    """The latest HbA1c when it is older than the look-back: reported as old, never as current."""
    ms = ctx.view.measurements("hba1c")
    if not ms or ctx.fact("hba1c").value is not None:
        return Fact(None)
    m = ms[-1]
    assert m.when is not None
    days = ctx.view.days_before_now(m.when)
    text = (f"latest HbA1c {m.value:g} % on {m.when.date().isoformat()} is {days:.0f} days old (older than "
            f"{ctx.p('hba1c_lookback_days'):g} days): current diabetes control unknown")
    return Fact(m.value, [Evidence(m.ref, m.label, f"{m.value:g} % (old result)", m.when)], text)


# ---- review: arthroplasty booked soon after an intra-articular injection -------------------
@fact
def arthroplasty_soon_after_injection(ctx: Context) -> Fact:
    """Arthroplasty of the injected joint booked (or done) within the pre-arthroplasty window after
    the intra-articular injection under review."""
    inj = ctx.injection
    t = inj.target
    if t is None or t.joint is None or t.kind != "intra-articular" or inj.when is None:
        return Fact(False)
    concept = f"{t.joint}-arthroplasty-procedure"
    v = ctx.view
    if concept not in ctx.kb.terminology.concepts:
        return Fact(False)
    window = ctx.p("pre_arthroplasty_window_days")
    ev = []
    candidates = [(s.ref, s.code, s.notes, s.body_site, s.occurrence, s.status) for s in v.record.service_requests
                  if s.status in ("active", "on-hold", "completed")]
    candidates += [(p.ref, p.code, p.notes, p.body_site, p.start, p.status) for p in v.record.procedures
                   if p.status in ("preparation", "in-progress", "completed")]
    for ref, code, notes, site, when, status in candidates:
        if when is None or concept not in v.concepts(ref, code, notes):
            continue
        if not sides_compatible(inj.side, side_of(code.all_text() + " " + site)):
            continue
        gap = (when - inj.when).total_seconds() / 86400
        if 0 < gap <= window:
            ev.append(Evidence(ref, code.label(), f"{status}, {gap:.0f} days after the injection", when))
    if ev:
        ev.insert(0, _inj_ev(inj, "intra-articular corticosteroid injection"))
    return Fact(bool(ev), ev)


@fact
def pregnancy_not_excluded(ctx: Context) -> Fact:
    """Ionising guidance planned for a woman of child-bearing age with no recent pregnancy status or test:
    said as unknown, never read as 'not pregnant'."""
    v = ctx.view
    p = v.record.patient
    if ctx.mode != "assess" or ctx.injection.guidance not in ("fluoroscopy", "ct") or p.sex != "female":
        return Fact(False)
    if v.age is None or not 12 <= v.age <= 55 or ctx.fact("pregnant"):
        return Fact(False)
    recent = ctx.p("pregnancy_test_recent_days")
    tested = [o for o in v.observations if {"pregnancy-status", "pregnancy-test"} & v.observation_concepts(o)
              and o.when is not None and v.days_before_now(o.when) <= recent]
    text = (f"no pregnancy status or test in the last {recent:g} days: pregnancy not excluded before "
            f"{ctx.injection.guidance} guidance")
    return Fact(not tested, [], text)
