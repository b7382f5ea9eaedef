"""Load and validate the knowledge files. Any unknown id, code system, concept, policy name or
citation is a KnowledgeError naming the file and the entry, so a bad edit never loads silently."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from injectwise.core.errors import KnowledgeError
from injectwise.knowledge.icd10_sites import load_icd10_sites
from injectwise.knowledge.model import (
    Antithrombotic,
    Citation,
    DoseRange,
    Drug,
    Knowledge,
    NonSteroidSite,
    PolicyValue,
    Region,
    RuleSpec,
    Target,
)
from injectwise.knowledge.terminology import CODE_SYSTEMS, Concept, Terminology
from injectwise.language.rules import LanguageRules, compile_language

try:
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - pure-Python PyYAML
    _Loader = yaml.SafeLoader

SEVERITIES = ("critical", "warning", "info")
MODES = ("assess", "review")
RULE_KEYS = {"id", "version", "mode", "stage", "severity", "title", "rationale", "advice", "citations", "when",
             "likelihood", "suggestion"}
# Concrete fixes an adapter can offer (e.g. CDS Hooks suggestions acting on the draft order).
SUGGESTIONS = frozenset({"cancel-draft", "create-pt-referral", "switch-to-ultrasound", "lower-dose"})
VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")


def _data_dir() -> Path:
    return Path(str(resources.files("injectwise.knowledge") / "data"))


def _read(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, yaml.YAMLError) as e:
        raise KnowledgeError(f"{path.name}: cannot load ({_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def _regexes(where: str, patterns: Any) -> tuple[re.Pattern[str], ...]:
    if patterns is None:
        return ()
    if not isinstance(patterns, list):
        raise KnowledgeError(f"{where}: text patterns must be a list")
    out = []
    for p in patterns:
        try:
            out.append(re.compile(str(p), re.IGNORECASE))
        except re.error as e:
            raise KnowledgeError(f"{where}: bad pattern {p!r} ({e})") from None
    return tuple(out)


def _cites(where: str, ids: Any, citations: dict[str, Citation]) -> tuple[str, ...]:
    if not isinstance(ids, list) or not ids:
        raise KnowledgeError(f"{where}: needs a non-empty list of citations")
    for c in ids:
        if c not in citations:
            raise KnowledgeError(f"{where}: unknown citation {c!r}")
    return tuple(ids)


@lru_cache(maxsize=8)
def _load_cached(policy_file: str | None) -> Knowledge:
    return _load(Path(policy_file) if policy_file else None)


def load_knowledge(policy_file: str | Path | None = None) -> Knowledge:
    """Load the packaged knowledge base once per process (and per policy override file)."""
    return _load_cached(str(policy_file) if policy_file else None)


def _load(policy_file: Path | None) -> Knowledge:
    d = _data_dir()
    manifest = _read(d / "manifest.yaml")
    citations = _load_citations(_read(d / "citations.yaml"))
    policy = _load_policy(_read(d / "policy.yaml"), citations)
    if policy_file is not None:
        _apply_overrides(policy, policy_file)
    regions_doc = _read(d / "regions.yaml")
    regions = _load_regions(regions_doc)
    units = _load_units(_read(d / "units.yaml"))
    language = compile_language(_read(d / "language.yaml"))
    terminology = _load_concepts(_read(d / "valuesets.yaml"), regions, units, language)
    targets, order = _load_targets(_read(d / "targets.yaml"), citations, terminology, regions)
    drugs_doc = _read(d / "drugs.yaml")
    drugs = _load_drugs(drugs_doc, citations)
    for drug in drugs.values():
        for ex in sorted(drug.excipients - set(terminology.concepts)):
            raise KnowledgeError(f"drugs.yaml: {drug.id}: unknown excipient concept {ex!r}")
    vocab_doc = _read(d / "vocabulary.yaml")
    vocabulary = dict(vocab_doc["ids"])
    families = tuple(vocab_doc.get("open_families", []))
    kb = Knowledge(
        version=str(manifest["version"]), name=str(manifest["name"]), scope=str(manifest["scope"]),
        disclaimer=str(manifest["disclaimer"]), citations=citations, policy=policy, terminology=terminology,
        regions=regions, targets=targets, target_order=order, drugs=drugs,
        equivalence_unit=str(drugs_doc["equivalence_unit"]),
        equivalence_reference_mg=float(drugs_doc["equivalence_reference_mg"]), units=units,
        vocabulary=vocabulary,
        icd10_sites=load_icd10_sites(_read(d / "icd10_sites.yaml"), set(regions)),
        antithrombotics=_load_antithrombotics(drugs_doc, citations),
        non_steroid_sites=_load_non_steroid_sites(_read(d / "targets.yaml"), citations),
    )
    rules_dir = d / "rules"
    seen: dict[tuple[str, str], str] = {}  # one finding id may have one rule per mode
    for path in sorted(rules_dir.glob("*.yaml")):
        spec = _load_rule(path, _read(path), kb, families)
        other = seen.get((spec.mode, spec.id))
        if other is not None:
            raise KnowledgeError(f"rules/{path.name}: duplicate rule id {spec.id!r} for mode {spec.mode} "
                                 f"(also in rules/{other})")
        seen[(spec.mode, spec.id)] = path.name
        kb.rules.append(spec)
    kb.rules.sort(key=lambda r: (r.stage, r.source))
    return kb


CITATION_BASES = ("guideline", "consensus", "study-data", "review", "label", "standard", "seed-article",
                  "local-convention")


def _load_citations(doc: dict[str, Any]) -> dict[str, Citation]:
    out = {}
    for cid, c in doc.items():
        if not isinstance(c, dict) or not {"label", "reference", "confidence"} <= set(c):
            raise KnowledgeError(f"citations.yaml: {cid}: needs label, reference and confidence")
        if c["confidence"] not in ("H", "M", "L"):
            raise KnowledgeError(f"citations.yaml: {cid}: confidence must be H, M or L")
        basis = c.get("basis")
        if basis not in CITATION_BASES:
            raise KnowledgeError(f"citations.yaml: {cid}: basis must be one of {', '.join(CITATION_BASES)}")
        if basis not in ("seed-article", "local-convention") and not (c.get("doi") or c.get("url")):
            raise KnowledgeError(f"citations.yaml: {cid}: a published source needs a doi or url")
        out[cid] = Citation(cid, c["label"], c["reference"], c["confidence"], c.get("doi"), c.get("url"), basis)
    return out


def _load_policy(doc: dict[str, Any], citations: dict[str, Citation]) -> dict[str, PolicyValue]:
    out = {}
    for name, p in doc.items():
        where = f"policy.yaml: {name}"
        if not isinstance(p, dict) or not isinstance(p.get("value"), int | float):
            raise KnowledgeError(f"{where}: needs a numeric value")
        for k in ("unit", "doc", "basis"):
            if not p.get(k):
                raise KnowledgeError(f"{where}: needs {k}")
        out[name] = PolicyValue(name, float(p["value"]), str(p["unit"]), str(p["doc"]), str(p["basis"]),
                                _cites(where, p.get("citations"), citations))
    return out


def _apply_overrides(policy: dict[str, PolicyValue], path: Path) -> None:
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except OSError as e:
        raise KnowledgeError(f"{path}: cannot read policy file ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise KnowledgeError(f"{path}: not valid YAML ({_first_line(e)})") from None
    if not isinstance(doc, dict):
        raise KnowledgeError(f"{path}: a policy file is a mapping of policy name to value")
    for name, value in doc.items():
        if name not in policy:
            raise KnowledgeError(f"{path}: {name}: unknown policy name")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise KnowledgeError(f"{path}: {name}: value must be a non-negative number")
        policy[name].value = float(value)
        policy[name].overridden = True


def _load_regions(doc: dict[str, Any]) -> dict[str, Region]:
    out = {rid: Region(rid, str(r["area"]), _regexes(f"regions.yaml: {rid}", r.get("text")),
                       tuple(r.get("refers_to") or ()))
           for rid, r in doc.items() if not rid.startswith("_")}
    for r in out.values():
        for other in r.refers_to:
            if other not in out:
                raise KnowledgeError(f"regions.yaml: {r.id}: refers_to unknown region {other!r}")
    return out


def _load_units(doc: dict[str, Any]) -> dict[str, dict[str, tuple[float, float]]]:
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for canon, table in doc.items():
        out[str(canon)] = {str(u): (float(f), float(o)) for u, (f, o) in table.items()}
    return out


def _load_concepts(doc: dict[str, Any], regions: dict[str, Region], units: dict[str, Any],
                   language: LanguageRules) -> Terminology:
    concepts = {}
    for cid, c in doc.items():
        where = f"valuesets.yaml: {cid}"
        if not isinstance(c, dict):
            raise KnowledgeError(f"{where}: must be a mapping")
        unknown = set(c) - {*CODE_SYSTEMS, "text", "exclude_text", "region", "unit", "doc", "historical_counts"}
        if unknown:
            raise KnowledgeError(f"{where}: unknown code system or key {sorted(unknown)[0]!r}")
        region = c.get("region")
        if region is not None and region not in regions:
            raise KnowledgeError(f"{where}: unknown region {region!r}")
        unit = c.get("unit")
        if unit is not None and unit not in units:
            raise KnowledgeError(f"{where}: unit {unit!r} has no conversion table")
        codes = {s: frozenset(str(x) for x in c[s]) for s in CODE_SYSTEMS if s in c}
        if not codes and not c.get("text"):
            raise KnowledgeError(f"{where}: needs codes or text")
        counts = c.get("historical_counts", False)
        if not isinstance(counts, bool):
            raise KnowledgeError(f"{where}: historical_counts must be true or false")
        concepts[cid] = Concept(cid, region, unit, codes, _regexes(where, c.get("text")),
                                _regexes(where, c.get("exclude_text")), counts)
    region_text = {rid: tuple(p.pattern for p in r.text) for rid, r in regions.items()}
    return Terminology(concepts, language, region_text)


def _load_targets(doc: dict[str, Any], citations: dict[str, Citation], term: Terminology,
                  regions: dict[str, Region]) -> tuple[dict[str, Target], tuple[str, ...]]:
    out = {}
    for tid, t in doc["targets"].items():
        where = f"targets.yaml: {tid}"
        try:
            dose = DoseRange(float(t["dose_tae_mg"]["min"]), float(t["dose_tae_mg"]["usual"]),
                             float(t["dose_tae_mg"]["max"]))
            if t["guidance"] not in ("required", "conditional", "optional"):
                raise KnowledgeError(f"{where}: guidance must be required, conditional or optional")
            if t["region"] is not None and t["region"] not in regions:
                raise KnowledgeError(f"{where}: unknown region {t['region']!r}")
            for cid in [*t["indications"], *t["competing"]]:
                if cid not in term.concepts:
                    raise KnowledgeError(f"{where}: unknown concept {cid!r}")
            out[tid] = Target(
                id=tid, label=t["label"], aliases=tuple(t.get("aliases", [])), region=t["region"], joint=t["joint"],
                kind=t["kind"], depth=t["depth"], guidance=t["guidance"], guidance_note=t["guidance_note"],
                landmark_accuracy_percent=t.get("landmark_accuracy_percent"),
                accuracy_citations=_cites(where, t["accuracy_citations"], citations), dose=dose,
                dose_citations=_cites(where, t["dose_citations"], citations), bleeding_risk=t["bleeding_risk"],
                avoid_particulate=bool(t.get("avoid_particulate", False)), cpt=frozenset(t.get("cpt", [])),
                text=_regexes(where, t.get("text")), indications=tuple(t["indications"]),
                competing=tuple(t["competing"]),
                particulate_contraindicated=bool(t.get("particulate_contraindicated", False)),
                # neuraxial and nerve targets treat radicular and nerve pain, not a problem exercise comes first for
                conservative_care_first=bool(t.get("conservative_care_first", t["kind"] not in ("neuraxial", "nerve"))))
        except KeyError as e:
            raise KnowledgeError(f"{where}: missing {e.args[0]!r}") from None
    order = tuple(doc["match_order"])
    if set(order) != set(out):
        raise KnowledgeError("targets.yaml: match_order must list every target exactly once")
    return out, order


def _load_non_steroid_sites(doc: dict[str, Any], citations: dict[str, Citation]) -> tuple[NonSteroidSite, ...]:
    """Blocks named like targets but not given with corticosteroid: each with its reason for refusing."""
    out = []
    for sid, s in (doc.get("non_steroid_sites") or {}).items():
        where = f"targets.yaml: non_steroid_sites: {sid}"
        if sid in doc["targets"]:
            raise KnowledgeError(f"{where}: also a target")
        try:
            out.append(NonSteroidSite(id=sid, label=s["label"], aliases=tuple(s.get("aliases", [])),
                                      text=_regexes(where, s["text"]), reason=" ".join(str(s["reason"]).split()),
                                      citations=_cites(where, s["citations"], citations)))
        except KeyError as e:
            raise KnowledgeError(f"{where}: missing {e.args[0]!r}") from None
    return tuple(out)


def _products(where: str, products: Any) -> tuple[tuple[re.Pattern[str], float], ...]:
    """Single-strength products: [{text: pattern, mg_per_ml: number}]."""
    if products is None:
        return ()
    if not isinstance(products, list):
        raise KnowledgeError(f"{where}: products must be a list")
    out = []
    for p in products:
        if not isinstance(p, dict) or set(p) != {"text", "mg_per_ml"}:
            raise KnowledgeError(f"{where}: each product needs text and mg_per_ml")
        (pattern,) = _regexes(where, [p["text"]])
        strength = float(p["mg_per_ml"])
        if not 0 < strength <= 200:
            raise KnowledgeError(f"{where}: product strength {strength!r} mg/mL is not plausible")
        out.append((pattern, strength))
    return tuple(out)


def _load_drugs(doc: dict[str, Any], citations: dict[str, Citation]) -> dict[str, Drug]:
    out = {}
    for section, kind in (("corticosteroids", "corticosteroid"), ("anesthetics", "anesthetic"),
                          ("other_injectables", "other")):
        for did, d in doc[section].items():
            where = f"drugs.yaml: {did}"
            dur = d.get("duration_hours")
            onset = d.get("onset_days")
            out[did] = Drug(
                id=did, kind=kind, label=d["label"], rxnorm=frozenset(d.get("rxnorm", [])),
                text=_regexes(where, d.get("text")), citations=_cites(where, d.get("citations"), citations),
                equivalent_mg=float(d["equivalent_mg"]) if "equivalent_mg" in d else None,
                particulate=bool(d.get("particulate", False)),
                duration_hours=(float(dur[0]), float(dur[1])) if dur else None,
                onset_days=(float(onset[0]), float(onset[1])) if onset else None,
                judge_after_days=float(d["judge_after_days"]) if "judge_after_days" in d else None,
                max_mg=float(d["max_mg"]) if "max_mg" in d else None,
                max_mg_per_kg=float(d["max_mg_per_kg"]) if "max_mg_per_kg" in d else None,
                excipients=frozenset(d.get("excipients", [])),
                products=_products(where, d.get("products")))
            if kind == "corticosteroid" and out[did].equivalent_mg is None:
                raise KnowledgeError(f"{where}: a corticosteroid needs equivalent_mg")
    return out


ANTITHROMBOTIC_CLASSES = ("vka", "doac", "lmwh", "heparin", "other-anticoagulant", "p2y12", "aspirin",
                          "other-antiplatelet")


def _load_antithrombotics(doc: dict[str, Any], citations: dict[str, Citation]) -> dict[str, Antithrombotic]:
    out = {}
    for aid, d in (doc.get("antithrombotics") or {}).items():
        where = f"drugs.yaml: antithrombotics: {aid}"
        if d.get("class") not in ANTITHROMBOTIC_CLASSES:
            raise KnowledgeError(f"{where}: class must be one of {', '.join(ANTITHROMBOTIC_CLASSES)}")
        hold = d.get("hold_days")
        out[aid] = Antithrombotic(
            id=aid, label=str(d["label"]), drug_class=d["class"], hold_days=float(hold) if hold is not None else None,
            rxnorm=frozenset(str(x) for x in d.get("rxnorm", [])), text=_regexes(where, d.get("text")),
            citations=_cites(where, d.get("citations"), citations))
    return out


def valid_finding_id(fid: str, vocabulary: dict[str, str], families: tuple[str, ...]) -> bool:
    if fid in vocabulary:
        return True
    head = fid.split(".", 1)[0]
    if head in families and "." in fid:
        return True
    return any(fid.startswith(v + ".") for v in vocabulary)


def _load_rule(path: Path, doc: Any, kb: Knowledge, families: tuple[str, ...]) -> RuleSpec:
    where = f"rules/{path.name}"
    if not isinstance(doc, dict):
        raise KnowledgeError(f"{where}: a rule file is a mapping")
    unknown = set(doc) - RULE_KEYS
    if unknown:
        raise KnowledgeError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    for k in ("id", "version", "mode", "severity", "title", "rationale", "citations", "when"):
        if k not in doc:
            raise KnowledgeError(f"{where}: missing {k!r}")
    fid = str(doc["id"])
    if not valid_finding_id(fid, kb.vocabulary, families):
        raise KnowledgeError(f"{where}: unknown finding id {fid!r} (not in the stable vocabulary)")
    if not VERSION_RE.match(str(doc["version"])):
        raise KnowledgeError(f"{where}: version must look like 1.0.0")
    if doc["mode"] not in MODES:
        raise KnowledgeError(f"{where}: mode must be assess or review")
    if doc["severity"] not in SEVERITIES:
        raise KnowledgeError(f"{where}: severity must be critical, warning or info")
    sug = doc.get("suggestion")
    if sug is not None and (not isinstance(sug, dict) or set(sug) != {"action"} or sug["action"] not in SUGGESTIONS):
        raise KnowledgeError(f"{where}: suggestion must be {{action: one of {', '.join(sorted(SUGGESTIONS))}}}")
    return RuleSpec(
        id=fid, version=str(doc["version"]), mode=doc["mode"], stage=int(doc.get("stage", 1)),
        severity=doc["severity"], title=str(doc["title"]).strip(), rationale=str(doc["rationale"]).strip(),
        advice=str(doc.get("advice", "")).strip(), citations=_cites(where, doc["citations"], kb.citations),
        when=doc["when"], likelihood=list(doc.get("likelihood") or []), source=path.name,
        suggestion=doc.get("suggestion"))
