"""Run the rules: `assess` a planned injection or `review` a completed one, as of a given date."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from injectwise.core.dates import fmt_date
from injectwise.core.errors import InputError, KnowledgeError, NotApplicable
from injectwise.core.record import PatientRecord
from injectwise.engine.clinical import Agent, ClinicalView, Injection
from injectwise.engine.dsl import Compiler, Pred
from injectwise.engine.facts import ENGINE_CONCEPTS, FACTS, Context
from injectwise.engine.result import LIKELIHOOD_ORDER, SEVERITY_ORDER, Evidence, Finding, Result
from injectwise.knowledge.model import Knowledge, RuleSpec, Target

VERDICTS = ("do-not-inject", "defer", "proceed-with-caution", "proceed")
PLACEHOLDER = re.compile(r"\{([a-z_]+)\.([a-z_0-9]+)\}")
TARGET_ATTRS = {"label", "guidance_note", "landmark_accuracy", "dose_max", "dose_usual", "bleeding_risk", "kind"}
INJECTION_ATTRS = {"describe", "date", "guidance", "side", "target", "steroid", "reassess_date", "age_days",
                   "judge_after_days"}


@dataclass(slots=True)
class CompiledRule:
    spec: RuleSpec
    when: Pred
    likelihood: list[tuple[Pred | None, str]]


@dataclass(slots=True)
class PlanOverrides:
    target: str | None = None
    side: str | None = None
    guidance: str | None = None
    steroid: str | None = None
    dose: float | None = None
    anesthetic: str | None = None
    anesthetic_dose: float | None = None


@lru_cache(maxsize=8)
def compiled_rules(kb: Knowledge) -> tuple[CompiledRule, ...]:
    """Compile every rule once per knowledge base; validates names used in templates too."""
    for name in ENGINE_CONCEPTS:
        if name not in kb.terminology.concepts:
            raise KnowledgeError(f"valuesets.yaml: concept {name!r} is required by the engine but missing")
    out = []
    for spec in kb.rules:
        c = Compiler(kb, f"rules/{spec.source}")
        lik = []
        for entry in spec.likelihood:
            if not isinstance(entry, dict) or entry.get("level") not in LIKELIHOOD_ORDER:
                raise c.err("likelihood entries need level high, moderate or low")
            lik.append((c.compile(entry["when"]) if "when" in entry else None, entry["level"]))
        if spec.id.startswith("failure.") and not lik:
            raise c.err("a failure rule needs a likelihood")
        for text in (spec.rationale, spec.advice, spec.title):
            for kind, name in PLACEHOLDER.findall(text):
                ok = ((kind == "fact" and name in FACTS) or (kind == "policy" and name in kb.policy)
                      or (kind == "target" and name in TARGET_ATTRS) or (kind == "injection" and name in INJECTION_ATTRS))
                if not ok:
                    raise KnowledgeError(f"rules/{spec.source}: unknown placeholder {{{kind}.{name}}}")
        out.append(CompiledRule(spec, c.compile(spec.when), lik))
    return tuple(out)


@lru_cache(maxsize=8)
def _unit_concepts(kb: Knowledge) -> tuple[str, ...]:
    """Concepts measured in a unit, in knowledge order."""
    return tuple(c.id for c in kb.terminology.concepts.values() if c.unit)


def _check_patient(view: ClinicalView) -> None:
    p = view.record.patient
    if p.deceased and (p.deceased_at is None or p.deceased_at <= view.now):
        when = f" on {p.deceased_at.date().isoformat()}" if p.deceased_at else ""
        raise NotApplicable(f"{p.ref}: the patient is recorded as deceased{when}; no assessment is made")
    observed = view.observed_concepts()
    for concept in _unit_concepts(view.kb):  # bad units fail now, not only when a rule looks
        if concept in observed:  # (a concept with no observation has no unit to check)
            view.measurements(concept)
    if p.birth_date is not None and p.birth_date > view.as_of:
        raise InputError(f"{p.ref}: birth date {p.birth_date} is after the evaluation date {view.as_of}")


def _view(record: PatientRecord, kb: Knowledge, as_of: date, view: ClinicalView | None) -> ClinicalView:
    """The caller's view when it is of this record, knowledge and day (a screening reuses one view for
    review, assess and measures: its derived data depend on nothing else); else a fresh one."""
    if view is not None and view.record is record and view.kb is kb and view.as_of == as_of:
        return view
    return ClinicalView(record, kb, as_of)


def assess(record: PatientRecord, kb: Knowledge, as_of: date, overrides: PlanOverrides | None = None,
           view: ClinicalView | None = None) -> Result:
    view = _view(record, kb, as_of, view)
    _check_patient(view)
    ov = overrides or PlanOverrides()
    drafts = view.draft_injections() if ov == PlanOverrides() else []
    if len(drafts) > 1 and all(d.target is not None for d in drafts):
        return _combined([_assess_one(view, kb, d, record) for d in drafts])
    return _assess_one(view, kb, _planned(view, kb, ov, drafts if ov == PlanOverrides() else None), record)


def _assess_one(view: ClinicalView, kb: Knowledge, planned: Injection, record: PatientRecord) -> Result:
    ctx = Context(view, kb, "assess", planned)
    findings = _run(ctx, "assess")
    return Result("assess", view.as_of.isoformat(), kb.version, _patient(view), _subject(planned, kb),
                  _verdict(findings), findings, _unknowns(ctx), sources=list(record.sources))


VERDICT_ORDER = ("do-not-inject", "defer", "proceed-with-caution", "proceed")


def _combined(results: list[Result]) -> Result:
    """Several draft injections at once (both knees): the answer is the worst of them; its planned injection
    is the subject, the others' findings are added (each names its own data) and every draft's verdict is
    listed in `detail.planned_injections`."""
    worst = min(results, key=lambda r: VERDICT_ORDER.index(r.outcome))
    everywhere = set.intersection(*({f.id for f in r.findings} for r in results))
    findings: list[Finding] = []
    seen: set[str] = set()
    for r in [worst, *(x for x in results if x is not worst)]:
        for f in r.findings:
            if f.id not in seen:
                seen.add(f.id)
                # a finding only some drafts have is about those drafts (a card then cancels only them)
                findings.append(f if f.id in everywhere else replace(f, applies_to=r.subject.get("id")))
    unknowns = list(dict.fromkeys(u for r in results for u in r.unknowns))
    each = [{"target": r.subject.get("target"), "side": r.subject.get("side"), "verdict": r.outcome,
             "id": r.subject.get("id")} for r in results]
    return Result("assess", worst.as_of, worst.knowledge_version, worst.patient, worst.subject, worst.outcome,
                  findings, unknowns, {**worst.detail, "planned_injections": each}, sources=worst.sources)


def review(record: PatientRecord, kb: Knowledge, as_of: date, injection_id: str | None = None,
           view: ClinicalView | None = None) -> Result:
    view = _view(record, kb, as_of, view)
    _check_patient(view)
    # an undated injection has no timeline to judge; it is reviewed only when it is the record's only one, so
    # that what is urgent now (a hot joint, fever) and the next steps are still said
    injs = [i for i in view.injections if not i.date_unknown] or list(view.injections)
    if injection_id:
        want = injection_id.strip()
        chosen = [i for i in injs if i.ref == want or i.ref.split("/", 1)[-1] == want]
        if not chosen:
            raise NotApplicable(f"no completed injection {want!r} on or before {as_of}")
        inj = chosen[-1]
    else:
        if not injs:
            raise NotApplicable(f"no completed injection on or before {as_of} to review")
        inj = injs[-1]
    ctx = Context(view, kb, "review", inj)
    findings = _run(ctx, "review")
    response = ctx.fact("response").value
    # bilateral injections (the same target on both sides the same day) are judged per side: each side's
    # scores, failure reasons and harms; one side's answer never hides the other's
    others = [] if injection_id else [
        i for i in injs if i is not inj and i.when is not None and inj.when is not None
        and i.when.date() == inj.when.date() and i.side in ("left", "right") and inj.side in ("left", "right")
        and i.side != inj.side and (i.target is None or inj.target is None or i.target.id == inj.target.id)]
    if not others and inj.side == "bilateral" and inj.when is not None and \
            any(sc.side in ("left", "right") and sc.when >= inj.when for sc in view.pain):
        # one record for both sides ("bilateral injections ... each side") with scores told per side
        halves = [replace(inj, side="left"), replace(inj, side="right")]
        ctx = Context(view, kb, "review", halves[0])
        findings = _run(ctx, "review")
        response = ctx.fact("response").value
        others = halves[1:]
    if others:
        sides = [(ctx, findings, response)]
        for other in others[:1]:
            octx = Context(view, kb, "review", other)
            sides.append((octx, _run(octx, "review"), octx.fact("response").value))
        findings, response = _per_side(sides)
        per_side = [{"side": c.injection.side, "id": c.injection.ref, "response": r} for c, _, r in sides]
    else:
        per_side = []
    subject = _subject(inj, kb)
    since = ctx.fact("days_since_injection").value
    subject["days_since"] = None if since is None else int(since)
    o = ctx.outcome(inj)
    detail: dict[str, Any] = {"anesthetic_phase": o.anesthetic_phase}
    if o.baseline:
        detail["baseline_pain"] = {"value": o.baseline.value, "date": fmt_date(o.baseline.when),
                                   "resource": o.baseline.ref}
    if o.latest:
        detail["latest_pain"] = {"value": o.latest.value, "date": fmt_date(o.latest.when), "resource": o.latest.ref}
    if per_side:
        detail["per_side"] = per_side
    return Result("review", as_of.isoformat(), kb.version, _patient(view), subject, response, findings,
                  _unknowns(ctx), detail, sources=list(record.sources))


RESPONSE_RANK = ("responder", "partial", "non-responder")


def _per_side(sides: list[tuple[Context, list[Finding], str]]) -> tuple[list[Finding], str]:
    """One review of both sides: every side's findings (a finding only one side has names that side's
    injection in `applies_to`), the less good side's first; the response is the one both sides share, else
    partial when one side responded and the other did not (too early or unknown only when both are)."""
    responses = [r for _, _, r in sides]
    judged = [r for r in responses if r in RESPONSE_RANK]
    if len(set(responses)) == 1:
        response = responses[0]
    elif "too-early" in responses:
        response = "too-early"
    elif len(set(judged)) == 1:
        response = judged[0]
    else:
        response = "partial"
    ordered = sorted(sides, key=lambda s: -RESPONSE_RANK.index(s[2]) if s[2] in RESPONSE_RANK else 0)
    counts: dict[str, int] = {}
    for _, fs, _ in sides:
        for f in fs:
            counts[f.id] = counts.get(f.id, 0) + 1
    seen: set[str] = set()
    merged: list[Finding] = []
    for c, fs, _ in ordered:
        for f in fs:
            if f.id in seen:
                continue
            seen.add(f.id)
            merged.append(f if counts[f.id] == len(sides) else replace(f, applies_to=c.injection.ref))
    merged.sort(key=lambda f: (SEVERITY_ORDER[f.severity], _family_rank(f.id)))  # stable: each side's rank kept
    return merged, response


@lru_cache(maxsize=8)
def _mode_rules(kb: Knowledge, mode: str) -> tuple[CompiledRule, ...]:
    """The compiled rules of one mode, in knowledge order."""
    return tuple(r for r in compiled_rules(kb) if r.spec.mode == mode)


def _run(ctx: Context, mode: str) -> list[Finding]:
    for rule in _mode_rules(ctx.kb, mode):
        spec = rule.spec
        ok, ev = rule.when(ctx)
        if not ok:
            continue
        level = None
        if rule.likelihood:
            level = "low"
            for pred, lv in rule.likelihood:
                if pred is None:
                    level = lv
                    break
                hit, more = pred(ctx)
                if hit:
                    level = lv
                    ev = ev + more
                    break
        ctx.add_finding(_finding(ctx, spec, ev, level))
    order = {f.id: i for i, f in enumerate(ctx.findings)}
    return sorted(ctx.findings, key=lambda f: (
        SEVERITY_ORDER[f.severity], _family_rank(f.id),
        LIKELIHOOD_ORDER.get(f.likelihood or "", 3), order[f.id]))


FAMILY_RANK = ("urgent", "contraindication", "defer", "failure", "adverse", "guidance", "dose", "caution", "next",
               "monitor", "education")


def _family_rank(fid: str) -> int:
    head = fid.split(".", 1)[0]
    return FAMILY_RANK.index(head) if head in FAMILY_RANK else len(FAMILY_RANK)


def _finding(ctx: Context, spec: RuleSpec, ev: list[Evidence], level: str | None) -> Finding:
    seen: set[tuple[str, str]] = set()
    evidence = []
    quotes = ctx.view.record.provenance
    for e in ev:
        k = (e.resource, e.what)
        if k not in seen:
            seen.add(k)
            prov = quotes.get(e.resource) if quotes and e.quote is None else None
            evidence.append(replace(e, quote=prov.quote) if prov else e)
    explanation = rationale = _render(ctx, spec.rationale)
    if evidence:
        rationale += " Patient data: " + "; ".join(e.sentence() for e in evidence[:8])
        if len(evidence) > 8:
            rationale += f"; and {len(evidence) - 8} more"
        rationale += "."
    cites = [dict(c) for c in _citations(ctx.kb, spec.citations)]
    return Finding(spec.id, spec.severity, _render(ctx, spec.title), rationale, _render(ctx, spec.advice), evidence,
                   cites, {"id": spec.id, "version": spec.version, "file": spec.source}, level, spec.suggestion,
                   explanation)


@lru_cache(maxsize=2048)
def _template(text: str) -> tuple[str, ...]:
    """A rule text split once at its placeholders: literal, kind, name, literal, ... literal."""
    return tuple(PLACEHOLDER.split(text))


@lru_cache(maxsize=1024)
def _citations(kb: Knowledge, ids: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    """A rule's citations as JSON, built once (each finding gets its own copies)."""
    return tuple(kb.citations[c].as_json() for c in ids)


def _render(ctx: Context, text: str) -> str:
    if "{" not in text:
        return text  # no placeholder: nothing to fill in
    parts = _template(text)
    if len(parts) == 1:
        return text
    out = [parts[0]]
    for i in range(1, len(parts), 3):
        out.append(_fill(ctx, parts[i], parts[i + 1]))
        out.append(parts[i + 2])
    return "".join(out)


def _fill(ctx: Context, kind: str, name: str) -> str:
    """The text of one placeholder {kind.name}; an unknown one is left as written."""
    if kind == "fact":
        f = ctx.fact(name)
        return f.text or ("unknown" if f.value is None else _num(f.value))
    if kind == "policy":
        return _num(ctx.p(name))
    inj = ctx.injection
    t = inj.target
    if kind == "target":
        if t is None:
            return "unknown target"
        return {
            "label": t.label, "guidance_note": t.guidance_note,
            "landmark_accuracy": "not known" if t.landmark_accuracy_percent is None else f"{t.landmark_accuracy_percent:g}%",
            "dose_max": _num(t.dose.max), "dose_usual": _num(t.dose.usual), "bleeding_risk": t.bleeding_risk,
            "kind": t.kind}[name]
    if name == "describe":
        return inj.describe()
    if name == "date":
        return fmt_date(inj.when) or "date unknown"
    if name == "guidance":
        return inj.guidance
    if name == "side":
        return inj.side or "side not recorded"
    if name == "target":
        return t.label if t else "unknown target"
    if name == "steroid":
        return inj.steroid.describe() if inj.steroid else "no corticosteroid"
    if name == "reassess_date":
        base = inj.when or ctx.view.now
        return (base + timedelta(days=ctx.judge_after_days(inj))).date().isoformat()
    if name == "judge_after_days":
        return _num(ctx.judge_after_days(inj))
    if name == "age_days":
        return str(int(ctx.fact("days_since_injection").value))
    return f"{{{kind}.{name}}}"


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _verdict(findings: list[Finding]) -> str:
    ids = [f.id for f in findings]
    if any(i.startswith("contraindication.") for i in ids):
        return "do-not-inject"
    if any(i.startswith("defer.") for i in ids):
        return "defer"
    if any(i.split(".", 1)[0] in ("caution", "guidance", "dose") for i in ids):
        return "proceed-with-caution"
    return "proceed"


MAX_DOSE_MG = 10_000.0  # far above any injection dose: beyond it the number is a typing or data error


def check_target_name(kb: Knowledge, name: str) -> Target:
    """The target a caller names; a non-steroid block (a sympathetic block) is refused with its reason."""
    t = kb.target(name)
    if t is not None:
        return t
    site = kb.non_steroid_site(name)
    if site is not None:
        raise InputError(f"not assessed: a {site.label} is not a corticosteroid injection target. {site.reason}")
    raise InputError(f"unknown target {name!r}; known: {', '.join(kb.targets)}")


def _check_dose(name: str, mg: float | None) -> None:
    """A planned dose must be a positive, finite, plausible number of mg: inf, nan, 1e308, 0, -0 are refused."""
    if mg is not None and not (math.isfinite(mg) and 0 < mg <= MAX_DOSE_MG):
        raise InputError(f"{name} must be a positive number of mg up to {MAX_DOSE_MG:g} (got {mg!r})")


def _planned(view: ClinicalView, kb: Knowledge, ov: PlanOverrides, drafts: list[Injection] | None = None) -> Injection:
    _check_dose("--dose", ov.dose)
    _check_dose("--anesthetic-dose", ov.anesthetic_dose)
    base = view.planned_from_orders(drafts)
    if base is None and ov.target is None:
        raise NotApplicable("no planned injection: the bundle has no draft injection order; give --target "
                         "(and --steroid, --dose, --guidance)")
    if base is None:
        base = Injection(ref="cli:planned", when=view.now, target=None, side=None, guidance="unknown",
                         guidance_basis="not given", source="cli")
    if ov.target is not None:
        base.target = check_target_name(kb, ov.target)
    if ov.side is not None:
        base.side = None if ov.side == "unknown" else ov.side
    if ov.guidance is not None:
        base.guidance, base.guidance_basis = ov.guidance, "given on the command line"
    if ov.steroid is not None or ov.dose is not None:
        name = ov.steroid or (base.steroid.drug.id if base.steroid and base.steroid.drug else None)
        if name is None:
            raise InputError("--dose needs --steroid when the bundle has no planned corticosteroid")
        drug = kb.drug_named(name, "corticosteroid")
        if drug is None:
            known = ", ".join(d.id for d in kb.drugs.values() if d.kind == "corticosteroid")
            raise InputError(f"unknown corticosteroid {name!r}; known: {known}")
        dose = ov.dose if ov.dose is not None else (base.steroid.dose_mg if base.steroid else None)
        tae = dose * kb.equivalence_reference_mg / drug.equivalent_mg if dose is not None and drug.equivalent_mg else None
        base.steroid = Agent(drug, drug.label, dose, tae, "cli:steroid")
    if ov.anesthetic is not None:
        drug = kb.drug_named(ov.anesthetic, "anesthetic")
        if ov.anesthetic.strip().lower() == "none":
            base.anesthetics = []
        elif drug is None:
            known = ", ".join(d.id for d in kb.drugs.values() if d.kind == "anesthetic")
            raise InputError(f"unknown anaesthetic {ov.anesthetic!r}; known: {known}, none")
        else:
            base.anesthetics = [Agent(drug, drug.label, ov.anesthetic_dose, None, "cli:anesthetic")]
    if base.target is None or (ov.target is None and base.target.kind == "nerve"):
        # a sympathetic block read from the plan's words ("lumbar sympathetic nerve block") is no nerve target
        site = next((s for text in (base.text, base.notes) if text and (s := kb.non_steroid_site(text))), None)
        if site is not None:
            raise NotApplicable(f"not assessed: the planned injection is a {site.label}, not a corticosteroid "
                                f"injection target. {site.reason}")
    if base.target is None:
        raise NotApplicable("the planned injection's target is not recognised; give --target")
    return base


def _patient(view: ClinicalView) -> dict[str, Any]:
    p = view.record.patient
    out: dict[str, Any] = {"id": p.ref}
    if view.age is not None:
        out["age"] = view.age
    if p.sex:
        out["sex"] = p.sex
    return out


def _subject(inj: Injection, kb: Knowledge) -> dict[str, Any]:
    out: dict[str, Any] = {"id": inj.ref, "source": inj.source}
    if inj.source == "record" and inj.date_unknown:
        out["date_unknown"] = True  # the record names it with no date: no day is made up for it
    elif inj.source == "record":
        out["date"] = fmt_date(inj.when)
    out["target"] = inj.target.id if inj.target else None
    if inj.target:
        out["target_label"] = inj.target.label
    out["side"] = inj.side
    out["guidance"] = inj.guidance
    if inj.steroid:
        s: dict[str, Any] = {"drug": inj.steroid.drug.id if inj.steroid.drug else inj.steroid.label,
                             "dose_mg": inj.steroid.dose_mg}
        if inj.steroid.ref and "/" in inj.steroid.ref:
            s["resource"] = inj.steroid.ref
        if inj.steroid.tae_mg is not None:
            s["equivalent_mg"] = round(inj.steroid.tae_mg, 2)
            s["equivalent_unit"] = kb.equivalence_unit
        out["steroid"] = s
    else:
        out["steroid"] = None
    out["anesthetics"] = [{"drug": a.drug.id if a.drug else a.label, "dose_mg": a.dose_mg} for a in inj.anesthetics]
    return {k: v for k, v in out.items() if v is not None or k in ("steroid",)}


def _unknowns(ctx: Context) -> list[str]:
    """What the record does not say that the rules would have used: said as unknown, not guessed."""
    out = []
    inj = ctx.injection
    if inj.side is None:
        out.append("side of the injection not recorded")
    if inj.guidance == "unknown":
        out.append("guidance of the injection not recorded")
    if inj.steroid is not None and inj.steroid.dose_mg is None:
        out.append("corticosteroid dose not recorded")
    if ctx.view.age is None:
        out.append("patient age unknown (no birth date)")
    if ctx.fact("hba1c_old").value is not None:
        out.append(ctx.fact("hba1c_old").text)  # an old result is said to be old, never read as current
    elif ctx.fact("diabetic") and ctx.fact("hba1c").value is None:
        out.append(ctx.fact("hba1c").text)
    if ctx.fact("pregnancy_not_excluded"):
        out.append(ctx.fact("pregnancy_not_excluded").text)
    if ctx.fact("vka") and ctx.fact("inr").value is None:
        out.append(ctx.fact("inr").text)
    if ctx.mode == "review" and ctx.fact("response").value == "unknown":
        out.append("no pain score before and at least two weeks after the injection: response cannot be judged")
    if ctx.mode == "review" and inj.anesthetics and ctx.fact("anesthetic_phase").value == "unknown":
        out.append("no pain score in the hours after the injection: the anaesthetic test cannot be read")
    if ctx.mode == "assess" and ctx.fact("days_since_prior_site_injection").value is None:
        text = ctx.fact("days_since_prior_site_injection").text
        if text.startswith("unknown"):
            out.append(f"interval since the last injection at this site not known: {text[len('unknown ('):-1]}")
    for ref, problem in ctx.view.record.date_problems:
        out.append(f"{ref}: {problem}; its value counts as present but when it applied cannot be judged")
    return out
