"""The rule language: rules are YAML trees of `all`/`any`/`not` over a few predicate kinds.
Compiled once at load into closures returning (matched, evidence). Unknown predicate, fact,
concept or policy names are load errors naming the rule file."""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from injectwise.core.errors import KnowledgeError
from injectwise.core.record import Coded
from injectwise.engine.clinical import CURRENT_STATUSES, sides_compatible
from injectwise.engine.facts import FACTS, Context
from injectwise.engine.result import Evidence
from injectwise.knowledge.model import Knowledge

NOT_OVER = (None, "", *CURRENT_STATUSES)  # clinical statuses of a problem that is not over (none recorded counts)

Pred = Callable[[Context], tuple[bool, list[Evidence]]]
OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq, "!=": operator.ne,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}


def all_of(parts: list[Pred]) -> Pred:
    """Every part holds; the evidence of all of them (none when one fails)."""

    def run(ctx: Context) -> tuple[bool, list[Evidence]]:
        ev: list[Evidence] = []
        for p in parts:
            ok, e = p(ctx)
            if not ok:
                return False, []
            ev += e
        return True, ev
    return run


class Compiler:
    def __init__(self, kb: Knowledge, where: str) -> None:
        self.kb = kb
        self.where = where

    def err(self, msg: str) -> KnowledgeError:
        return KnowledgeError(f"{self.where}: {msg}")

    def number(self, v: Any) -> Callable[[Context], float]:
        if isinstance(v, bool):
            raise self.err(f"expected a number or policy name, got {v!r}")
        if isinstance(v, int | float):
            return lambda ctx, x=float(v): x
        if isinstance(v, str) and v in self.kb.policy:
            return lambda ctx, name=v: ctx.p(name)
        raise self.err(f"unknown policy name {v!r}")

    def concepts(self, v: Any) -> frozenset[str]:
        items = v if isinstance(v, list) else [v]
        for c in items:
            if c not in self.kb.terminology.concepts:
                raise self.err(f"unknown concept {c!r}")
        return frozenset(items)

    def compile(self, node: Any) -> Pred:
        if not isinstance(node, dict) or len(node) != 1:
            raise self.err(f"each condition is a mapping with one key, got {node!r}")
        (key, arg), = node.items()
        fn = getattr(self, f"p_{key.replace('-', '_')}", None)
        if fn is None:
            raise self.err(f"unknown predicate {key!r}")
        return fn(arg)

    # ---- logic ----------------------------------------------------------------------------
    def p_all(self, arg: Any) -> Pred:
        return all_of([self.compile(x) for x in self._list(arg)])

    def p_any(self, arg: Any) -> Pred:
        parts = [self.compile(x) for x in self._list(arg)]

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            hit, ev = False, []
            for p in parts:
                ok, e = p(ctx)
                if ok:
                    hit = True
                    ev += e
            return hit, ev
        return run

    def p_not(self, arg: Any) -> Pred:
        inner = self.compile(arg)

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            ok, _ = inner(ctx)
            return (not ok), []
        return run

    def _list(self, arg: Any) -> list[Any]:
        if not isinstance(arg, list) or not arg:
            raise self.err("all/any take a non-empty list")
        return arg

    # ---- facts and findings ---------------------------------------------------------------
    def p_fact(self, arg: Any) -> Pred:
        if isinstance(arg, str):
            name, op, value = arg, None, None
        elif isinstance(arg, dict):
            name, op = arg.get("name"), arg.get("op", ">=")
            if op not in OPS:
                raise self.err(f"unknown operator {op!r}")
            value = arg.get("value")
            if op in ("in", "not in"):
                if not isinstance(value, list):
                    raise self.err("'in' takes a list")
                value = _const(value)
            elif op in ("==", "!=") and isinstance(value, str) and value not in self.kb.policy:
                value = _const(value)  # a word such as 'tried', compared as is
            else:
                value = self.number(value)
        else:
            raise self.err(f"bad fact predicate {arg!r}")
        if name not in FACTS:
            raise self.err(f"unknown fact {name!r}")
        if op is None:
            def truthy(ctx: Context) -> tuple[bool, list[Evidence]]:
                f = ctx.computed.get(name)
                if f is None:
                    f = ctx.fact(name)
                return bool(f.value), list(f.evidence)
            return truthy
        compare = OPS[op]

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            f = ctx.computed.get(name)
            if f is None:
                f = ctx.fact(name)
            if f.value is None:
                return False, []
            ok = compare(f.value, value(ctx))
            return ok, list(f.evidence) if ok else []
        return run

    def p_finding(self, arg: Any) -> Pred:
        prefixes = arg if isinstance(arg, list) else [arg]

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            return any(ctx.has_finding(p) for p in prefixes), []
        return run

    def p_response(self, arg: Any) -> Pred:
        values = set(arg if isinstance(arg, list) else [arg])

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            f = ctx.fact("response")
            return f.value in values, []
        return run

    # ---- the injection and its target ----------------------------------------------------
    def p_target(self, arg: Any) -> Pred:
        if not isinstance(arg, dict):
            raise self.err("target takes a mapping of attribute to allowed values")
        allowed = {"id", "guidance", "kind", "region", "joint", "depth", "bleeding_risk", "avoid_particulate",
                   "particulate_contraindicated", "conservative_care_first"}
        for k in arg:
            if k not in allowed:
                raise self.err(f"unknown target attribute {k!r}")
        checks = {k: (set(v) if isinstance(v, list) else {v}) for k, v in arg.items()}

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            t = ctx.injection.target
            if t is None:
                return False, []
            for k, vals in checks.items():
                if getattr(t, k) not in vals:
                    return False, []
            return True, []
        return run

    def p_injection(self, arg: Any) -> Pred:
        if not isinstance(arg, dict):
            raise self.err("injection takes a mapping")
        guidance = set(arg.get("guidance", [])) if "guidance" in arg else None
        steroid = arg.get("steroid")
        anesthetic = arg.get("anesthetic")
        side = arg.get("side")
        for k in arg:
            if k not in ("guidance", "steroid", "anesthetic", "side"):
                raise self.err(f"unknown injection attribute {k!r}")

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            inj = ctx.injection
            if guidance is not None and inj.guidance not in guidance:
                return False, []
            if steroid is not None and (inj.steroid is not None) != bool(steroid):
                return False, []
            if anesthetic is not None and bool(inj.anesthetics) != bool(anesthetic):
                return False, []
            if side == "known" and inj.side is None:
                return False, []
            when = inj.when if ctx.mode == "review" else None
            ev = [Evidence(inj.ref, "guidance", f"{inj.guidance} ({inj.guidance_basis})", when)] if guidance else []
            return True, ev
        return run

    def p_patient(self, arg: Any) -> Pred:
        sex = arg.get("sex")
        age_lt = self.number(arg["age_lt"]) if "age_lt" in arg else None
        age_ge = self.number(arg["age_ge"]) if "age_ge" in arg else None

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            p = ctx.view.record.patient
            if sex and p.sex != sex:
                return False, []
            age = ctx.view.age
            if age_lt is not None and (age is None or age >= age_lt(ctx)):
                return False, []
            if age_ge is not None and (age is None or age < age_ge(ctx)):
                return False, []
            return True, [Evidence(p.ref, "patient", f"{age} years, {p.sex}")]
        return run

    # ---- record predicates ----------------------------------------------------------------
    def p_condition(self, arg: Any) -> Pred:
        if not isinstance(arg, dict) or "concept" not in arg:
            raise self.err("condition needs a concept")
        allowed = {"concept", "active", "recent_days", "region", "side", "after", "within_days", "unless_concept",
                   "status_decides", "unless_indication", "new", "new_if_new"}
        for k in arg:
            if k not in allowed:
                raise self.err(f"unknown condition attribute {k!r}")
        concepts = self.concepts(arg["concept"])
        unless = self.concepts(arg["unless_concept"]) if "unless_concept" in arg else frozenset()
        active = arg.get("active", True)
        recent = self.number(arg["recent_days"]) if "recent_days" in arg else None
        region = arg.get("region", "any")
        if region not in ("any", "target", "target-named", "target-area"):
            raise self.err(f"region must be any, target, target-named or target-area, got {region!r}")
        side = arg.get("side", "any")
        after = arg.get("after")
        if after not in (None, "injection", "series"):
            raise self.err(f"after must be injection or series, got {after!r}")
        within = self.number(arg["within_days"]) if "within_days" in arg else None
        # new: a harm attributed to the injection must not have been on record before it (a radiculopathy
        # known for a year and named again in today's note is not a new nerve injury).
        new = bool(arg.get("new", False))
        if new and after is None:
            raise self.err("new needs after: injection or series")
        # new_if_new: the concepts that make a problem new by themselves (a deficit such as a foot drop after a
        # known radiculopathy); a problem without one of them is new only if none of its concepts was known
        # before (meralgia named today, its burning numbness noted since before the injection, is not new)
        decisive = self.concepts(arg["new_if_new"]) if "new_if_new" in arg else None
        if decisive is not None and not new:
            raise self.err("new_if_new needs new: true")
        # status_decides: a problem with a current clinical status counts whatever its onset; the
        # recency window applies only to problems recorded without a status.
        status_decides = bool(arg.get("status_decides", False))
        # unless_indication: a problem the planned target itself treats (shoulder impingement for a
        # subacromial injection) is the indication, not a reason to doubt the diagnosis.
        unless_indication = bool(arg.get("unless_indication", False))

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            v = ctx.view
            t = ctx.injection.target
            indications = frozenset(t.indications) if unless_indication and t is not None else frozenset()
            ev = []
            for c, cc in v.conditions_with(concepts):
                if (unless & cc) or (indications & cc):
                    continue
                if not c.present:
                    continue
                if active and not v.condition_active(c):
                    continue
                when = c.when
                # an impossible date, or no date at all on a problem that is not over: may be current (safety
                # first: an undated active "Fever" on the problem list counts)
                undatable = when is None and (c.ref in v.bad_dates or c.clinical_status in NOT_OVER)
                current = status_decides and c.clinical_status in CURRENT_STATUSES
                if recent is not None and not undatable and not current and (
                        when is None or v.days_before_now(when) > recent(ctx)):
                    continue
                if region != "any" and not _region_ok(ctx, v.condition_regions(c), region):
                    continue
                if side == "target" and not sides_compatible(ctx.injection.side, v.condition_side(c)):
                    continue
                if after is not None and (when is None or not _after(ctx, when, after, within)):
                    continue
                # new: without new_if_new, when any of its concepts is new (a foot drop after a known radiculopathy);
                # with it, when a deciding concept is new, else only when none of its concepts was known before
                if new:
                    mine, side_c = concepts & cc, v.condition_side(c)
                    if decisive is None or mine & decisive:
                        pivot = mine & decisive if decisive is not None else mine
                        if all(_known_before(ctx, frozenset({k}), after, side_c) for k in pivot):
                            continue
                    elif _known_before(ctx, mine, after, side_c):
                        continue
                ev.append(v.condition_evidence(c))
            return bool(ev), ev
        return run

    def p_observation(self, arg: Any) -> Pred:
        if not isinstance(arg, dict) or "concept" not in arg:
            raise self.err("observation needs a concept")
        for k in arg:
            if k not in ("concept", "op", "value", "recent_days", "after", "within_days", "beyond_days"):
                raise self.err(f"unknown observation attribute {k!r}")
        (concept,) = tuple(self.concepts(arg["concept"]))
        op = arg.get("op", ">=")
        if op not in OPS:
            raise self.err(f"unknown operator {op!r}")
        value = self.number(arg["value"])
        recent = self.number(arg["recent_days"]) if "recent_days" in arg else None
        after = arg.get("after")
        within = self.number(arg["within_days"]) if "within_days" in arg else None
        beyond = self.number(arg["beyond_days"]) if "beyond_days" in arg else None
        if beyond is not None and after != "injection":
            raise self.err("beyond_days needs after: injection")

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            v = ctx.view
            ev = []
            for m in v.measurements(concept):
                # an undated value may be current: recency checks count it (safety), timing checks cannot
                if recent is not None and m.when is not None and v.days_before_now(m.when) > recent(ctx):
                    continue
                if after is not None and (m.when is None or not _after(ctx, m.when, after, within)):
                    continue
                if beyond is not None and (ctx.injection.when is None or m.when is None
                                           or m.when <= ctx.injection.when + timedelta(days=beyond(ctx))):
                    continue
                if OPS[op](m.value, value(ctx)):
                    ev.append(Evidence(m.ref, m.label, f"{m.value:g} {m.unit}{m.note}".strip(), m.when))
            return bool(ev), ev[-3:]
        return run

    def p_medication(self, arg: Any) -> Pred:
        if not isinstance(arg, dict) or "concept" not in arg:
            raise self.err("medication needs a concept")
        concepts = self.concepts(arg["concept"])
        recent = self.number(arg["recent_days"]) if "recent_days" in arg else None

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            ev = []
            for c in concepts:
                for m in ctx.view.current_medications(c, recent(ctx) if recent else None):
                    ev.append(Evidence(m.ref, m.medication.label(), m.status, m.start))
            return bool(ev), ev
        return run

    def p_allergy(self, arg: Any) -> Pred:
        if arg not in ("planned-agents", "imaging-agents", "antiseptic", "related-corticosteroid", "related-anesthetic"):
            raise self.err("allergy takes planned-agents, imaging-agents, antiseptic, related-corticosteroid or "
                           "related-anesthetic")

        def run(ctx: Context) -> tuple[bool, list[Evidence]]:
            return _allergies(ctx, arg)
        return run


def _const(c: Any) -> Callable[[Context], Any]:
    def get(ctx: Context) -> Any:
        return c
    return get


def _region_ok(ctx: Context, regions: frozenset[str], mode: str) -> bool:
    """A finding with no recorded location could be at the site: safety counts it as a match, except in
    mode target-named, for findings that are only at the site when the record says so (a chronic skin disease
    such as psoriasis is somewhere on the body, not presumed over the needle path)."""
    if mode == "target-named" and not regions:
        return False
    if "*" in regions or not regions:
        return True
    inj = ctx.injection
    target_region = inj.target.region if inj.target and inj.target.region else None
    wanted = {target_region} if target_region else set(ctx.view.regions_of_text(f"{inj.text} {inj.notes}")) - {"*"}
    if not wanted:
        return True
    if mode in ("target", "target-named"):
        return bool(wanted & regions)
    kb = ctx.kb
    areas = {kb.regions[r].area for r in wanted}
    # the area, and the regions it refers pain and nerve symptoms to (lumbar spine and hip to knee and foot)
    referred = {x for r in kb.regions.values() if r.area in areas for x in r.refers_to}
    return any(kb.regions[r].area in areas or r in referred for r in regions if r in kb.regions)


def _starts(ctx: Context, mode: str) -> list[Any]:
    """When `after:` counts from: the injection itself, or every injection of the series in its area. One with no
    stated date has no 'after': what is wrong now is said by the rules that look at now, not blamed on it."""
    if mode == "injection":
        return [ctx.injection.when] if ctx.injection.when and not ctx.injection.date_unknown else []
    area = ctx.area(ctx.injection)
    starts = [i.when for i in ctx.view.steroid_injections
              if i.when is not None and not i.date_unknown and (area is None or ctx.area(i) == area)
              and i.when <= ctx.ref_time]
    if ctx.mode == "review" and ctx.injection.when and not ctx.injection.date_unknown:
        starts.append(ctx.injection.when)
    return starts


def _after(ctx: Context, when: Any, mode: str, within: Callable[[Context], float] | None) -> bool:
    limit = within(ctx) if within else None
    return any(when.date() >= s.date() and (limit is None or when <= s + timedelta(days=limit))
               for s in _starts(ctx, mode))


def _known_before(ctx: Context, concepts: frozenset[str], mode: str, side: str | None) -> bool:
    """Whether a present problem with one of these concepts (same side) was dated before the first injection
    `after` counts from, so a later mention of it is a continuation rather than something new."""
    v = ctx.view
    starts = _starts(ctx, mode)
    if not starts:
        return False
    first = min(starts).date()
    for c in v.conditions:
        if not c.present or c.when is None or c.when.date() >= first:
            continue
        if concepts & v.condition_concepts(c) and sides_compatible(side, v.condition_side(c)):
            return True
    return False


_REACTION = Coded((), "")  # an allergy's reaction text read on its own


def _allergies(ctx: Context, which: str) -> tuple[bool, list[Evidence]]:
    v = ctx.view
    inj = ctx.injection
    ev = []
    agents = [a for a in ([inj.steroid] if inj.steroid else []) + inj.anesthetics + inj.others]
    for al in v.record.allergies:
        if not al.present or (al.recorded is not None and al.recorded > v.now):
            continue
        concepts = v.concepts(al.ref, al.code, al.reaction)
        if which == "planned-agents" and al.reaction and al.criticality != "high":
            reaction = v.concepts(f"{al.ref}#reaction", _REACTION, al.reaction)
            # a known side effect recorded as an "allergy" (steroid flushing), or an entry its recorder typed as a
            # (non-immune) intolerance whose reaction shows no immune sign: no allergy to the agent. High
            # criticality (or a severe reaction) is never explained away by its reaction's wording.
            if "allergic-reaction" not in reaction and ("side-effect-reaction" in reaction or al.kind == "intolerance"):
                continue
        text = al.code.all_text().lower()
        codes = {c.code for c in al.code.codings}
        hit = None
        if which == "planned-agents":
            for a in agents:
                d = a.drug
                if d is None:
                    continue
                if codes & d.rxnorm or any(p.search(text) for p in d.text):
                    hit = a.label
                elif d.kind == "corticosteroid" and "allergy-corticosteroid" in concepts:
                    hit = f"{a.label} (corticosteroid class)"
                elif d.kind == "anesthetic" and "allergy-local-anesthetic" in concepts:
                    hit = f"{a.label} (local anaesthetic class)"
                elif d.excipients & concepts:
                    names = ", ".join(sorted(x.removeprefix("allergy-") for x in d.excipients & concepts))
                    hit = f"{a.label} (contains {names})"
                if hit:
                    break
        elif which == "related-corticosteroid":
            hit = _related_agent(ctx, inj.steroid, codes, text)
        elif which == "related-anesthetic":
            hit = next((h for a in inj.anesthetics if (h := _related_agent(ctx, a, codes, text))), None)
        elif which == "imaging-agents":
            if inj.guidance == "fluoroscopy" and "allergy-contrast" in concepts:
                hit = "contrast used with fluoroscopy"
        elif "allergy-antiseptic" in concepts:  # change the antiseptic: not a reason to withhold the steroid
            hit = "skin antiseptic"
        if hit:
            ev.append(Evidence(al.ref, al.code.label(), f"allergy; planned: {hit}", al.recorded))
    return bool(ev), ev


def _related_agent(ctx: Context, agent: Any, codes: set[str], text: str) -> str | None:
    """An allergy to a different agent of the planned one's kind (another corticosteroid, another local
    anaesthetic): cross-reactivity within the class, or an excipient the products share, cannot be excluded
    from the record alone."""
    planned = agent.drug if agent is not None else None
    if planned is None or planned.kind not in ("corticosteroid", "anesthetic"):
        return None
    for d in ctx.kb.drugs.values():
        if d.kind != planned.kind or d.id == planned.id or (not d.rxnorm and not d.text):
            continue
        if codes & d.rxnorm or any(p.search(text) for p in d.text):
            if codes & planned.rxnorm or any(p.search(text) for p in planned.text):
                return None  # the planned agent itself: contraindication.drug-allergy speaks for it
            return f"{agent.label}; allergy recorded to {d.label}"
    return None
