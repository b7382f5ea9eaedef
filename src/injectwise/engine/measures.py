"""Population measures on the engine: each injection in the measurement period is re-evaluated as of its
own date, as if it were being planned then, with the same facts and rules as a single assessment.

Numerators name engine rules or rule-language conditions (measures.yaml); nothing clinical is coded here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from injectwise.core.dates import end_of_day, period_start
from injectwise.core.record import PatientRecord
from injectwise.engine.clinical import ClinicalView, Injection, side_of, sides_compatible
from injectwise.engine.dsl import Compiler, Pred, all_of
from injectwise.engine.evaluate import compiled_rules
from injectwise.engine.facts import Context
from injectwise.engine.result import Evidence
from injectwise.knowledge.measures import MeasureSet, MeasureSpec
from injectwise.knowledge.model import Knowledge


class MeasureContext(Context):
    """An assess context for a past injection; `horizon` is the screening date (follow-up may look up to it)."""

    def __init__(self, view: ClinicalView, kb: Knowledge, injection: Injection, horizon: datetime) -> None:
        super().__init__(view, kb, "assess", injection)
        self.horizon = horizon


class MeasureCompiler(Compiler):
    """The rule language plus the two things a retrospective measure needs: run a named engine rule, and
    look for an arthroplasty done after the injection."""

    def __init__(self, kb: Knowledge, where: str) -> None:
        super().__init__(kb, where)
        self.rules = {r.spec.id: r for r in compiled_rules(kb)}

    def numerator(self, node: dict[str, Any]) -> Pred:
        body = {k: v for k, v in node.items() if k != "doc"}
        (key, arg), = body.items()
        if key == "rule":
            rule = self.rules[arg]

            def run_rule(ctx: Context) -> tuple[bool, list[Evidence]]:
                return rule.when(ctx)
            return run_rule
        if key == "when":
            return self.compile(arg)
        parts = [self.numerator(x) for x in arg]
        if key == "all":
            return all_of(parts)

        def run_any(ctx: Context) -> tuple[bool, list[Evidence]]:
            for p in parts:
                ok, e = p(ctx)
                if ok:
                    return True, e
            return False, []
        return run_any

    def p_arthroplasty_after(self, arg: Any) -> Pred:
        if not isinstance(arg, dict) or "within_days" not in arg:
            raise self.err("arthroplasty_after needs within_days")
        within = self.number(arg["within_days"])

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            inj = ctx.injection
            joint = inj.target.joint if inj.target else None
            concept = f"{joint}-arthroplasty-procedure"
            if joint is None or concept not in ctx.kb.terminology.concepts or inj.when is None:
                return False, []
            horizon = ctx.horizon if isinstance(ctx, MeasureContext) else ctx.view.now
            limit = min(inj.when + timedelta(days=within(ctx)), horizon)
            ev = []
            for p in ctx.view.record.procedures:
                if p.status not in ("completed", "in-progress") or p.start is None:
                    continue
                if not (inj.when < p.start <= limit):
                    continue
                if concept not in ctx.view.concepts(p.ref, p.code, p.notes):
                    continue
                if not sides_compatible(inj.side, side_of(p.code.all_text() + " " + p.body_site)):
                    continue
                days = (p.start - inj.when).total_seconds() / 86400
                ev.append(Evidence(p.ref, p.code.label(), f"performed {days:.0f} days after the injection", p.start))
            return bool(ev), ev
        return run


@dataclass(slots=True)
class CompiledMeasure:
    spec: MeasureSpec
    denominator: Pred | None
    exclusions: list[Pred]
    numerator: Pred


@dataclass(slots=True)
class InjectionMeasures:
    """One injection of the period: where it was, and per measure None (not in the denominator) or a result."""

    injection: Injection
    area: str | None
    results: dict[str, bool | None] = field(default_factory=dict)
    evidence: dict[str, list[Evidence]] = field(default_factory=dict)


@lru_cache(maxsize=8)
def compile_measures(kb: Knowledge, ms: MeasureSet) -> tuple[CompiledMeasure, ...]:
    out = []
    for m in ms.measures:
        c = MeasureCompiler(kb, f"measures.yaml: {m.id}")
        den = m.denominator.get("when")
        out.append(CompiledMeasure(m, c.compile(den) if den is not None else None,
                                   [c.compile(x["when"]) for x in m.exclusions], c.numerator(m.numerator)))
    return tuple(out)


def period_injections(view: ClinicalView, period_days: int) -> list[Injection]:
    start = period_start(view.as_of, period_days)
    return [i for i in view.steroid_injections if i.when is not None and start <= i.when.date() and i.when <= view.now]


def evaluate_measures(record: PatientRecord, kb: Knowledge, ms: MeasureSet, as_of: date,
                      view: ClinicalView | None = None) -> list[InjectionMeasures]:
    """Every steroid injection of the period, judged as of its own day against each measure."""
    view = view or ClinicalView(record, kb, as_of)
    horizon = end_of_day(as_of)
    measures = compile_measures(kb, ms)
    out = []
    views: dict[date, ClinicalView] = {view.as_of: view} if view.record is record and view.kb is kb else {}
    for inj in period_injections(view, ms.period_days):
        assert inj.when is not None
        day = inj.when.date()
        then = views.get(day)
        if then is None:
            then = views[day] = ClinicalView(record, kb, day, view.shared_cache)
        past = next((i for i in then.steroid_injections if i.ref == inj.ref), inj)
        ctx = MeasureContext(then, kb, past, horizon)
        item = InjectionMeasures(past, ctx.area(past))
        for cm in measures:
            item.results[cm.spec.id] = _judge(cm, ctx, item)
        out.append(item)
    return out


def _judge(cm: CompiledMeasure, ctx: Context, item: InjectionMeasures) -> bool | None:
    if cm.denominator is not None and not cm.denominator(ctx)[0]:
        return None
    if any(ex(ctx)[0] for ex in cm.exclusions):
        return None
    ok, ev = cm.numerator(ctx)
    if ok:
        item.evidence[cm.spec.id] = ev
    return ok


