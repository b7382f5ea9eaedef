"""The knowledge base refuses bad edits with an error naming the file and entry, and a site
policy file really changes decisions."""

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import D, ids, run_cli

from injectwise.adapters.fhir import read_bundle
from injectwise.core.errors import KnowledgeError
from injectwise.demo.builder import BundleBuilder
from injectwise.engine.evaluate import assess, compiled_rules
from injectwise.knowledge import load_knowledge, loader

DATA = Path(loader._data_dir())


@pytest.fixture
def kb_copy(tmp_path, monkeypatch):
    """A private copy of the knowledge data that a test may break."""
    root = tmp_path / "data"
    shutil.copytree(DATA, root)
    monkeypatch.setattr(loader, "_data_dir", lambda: root)
    return root


def _edit(path: Path, fn) -> None:
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _rule(root: Path, name: str) -> Path:
    return root / "rules" / name


def _load_and_compile():
    kb = loader._load(None)
    compiled_rules(kb)
    return kb


def test_packaged_knowledge_loads_and_compiles(kb):
    assert kb.version and len(compiled_rules(kb)) == len(kb.rules) > 50


@pytest.mark.parametrize("mutate,fragment", [
    (lambda d: d.update(id="made-up.family"), "unknown finding id"),
    (lambda d: d.update(citations=["no-such-paper"]), "unknown citation 'no-such-paper'"),
    (lambda d: d.update(when={"fact": "no_such_fact"}), "unknown fact 'no_such_fact'"),
    (lambda d: d.update(when={"condition": {"concept": "no-such-concept"}}), "unknown concept 'no-such-concept'"),
    (lambda d: d.update(when={"fact": {"name": "site_count_year", "op": ">", "value": "no_such_policy"}}),
     "no_such_policy"),
    (lambda d: d.update(when={"frobnicate": 1}), "unknown predicate 'frobnicate'"),
    (lambda d: d.update(version="one"), "version"),
    (lambda d: d.update(rationale="Uses {fact.nothing_here}."), "unknown placeholder"),
    (lambda d: d.update(suggestion={"action": "order-pizza"}), "suggestion must be"),
    (lambda d: d.update(mode="review", id="caution.incomplete-data"), "duplicate rule id"),
])
def test_bad_rule_is_a_load_error_naming_the_file(kb_copy, mutate, fragment):
    name = "a120-defer-injection-interval.yaml"
    _edit(_rule(kb_copy, name), mutate)
    with pytest.raises(KnowledgeError) as e:
        _load_and_compile()
    assert name in str(e.value) and fragment in str(e.value)


def test_unknown_code_system_is_a_load_error(kb_copy):
    _edit(kb_copy / "valuesets.yaml", lambda d: d["fever"].update(icd9=["780.6"]))
    with pytest.raises(KnowledgeError, match=r"valuesets.yaml: fever: unknown code system or key 'icd9'"):
        _load_and_compile()


def test_missing_engine_concept_is_a_load_error(kb_copy):
    """Renaming a concept the engine needs must fail loudly, not silently disable the diabetes checks."""
    def rename(d):
        d["diabetes-mellitus"] = d.pop("diabetes")
    _edit(kb_copy / "valuesets.yaml", rename)
    with pytest.raises(KnowledgeError, match="'diabetes' is required by the engine"):
        _load_and_compile()


def test_unknown_citation_in_policy_is_a_load_error(kb_copy):
    _edit(kb_copy / "policy.yaml", lambda d: d["min_interval_days"].update(citations=["nobody-2020"]))
    with pytest.raises(KnowledgeError, match=r"policy\.yaml: min_interval_days: unknown citation"):
        _load_and_compile()


def _patient_injected_60_days_ago() -> BundleBuilder:
    b = BundleBuilder("pol")
    b.condition("M16.11", "Unilateral primary osteoarthritis, right hip", "2022-01-01")
    b.therapy("2025-06-01", "2025-09-01", "Physical therapy - hip")
    b.injection("2026-01-01", "hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    return b


def test_site_policy_file_changes_the_interval(tmp_path):
    rec = read_bundle(_patient_injected_60_days_ago().bundle())
    assert "defer.injection-interval" in ids(assess(rec, load_knowledge(), D("2026-03-02")))
    policy = tmp_path / "site.yaml"
    policy.write_text("min_interval_days: 56\n")
    kb = load_knowledge(policy)
    assert kb.policy["min_interval_days"].overridden
    assert "defer.injection-interval" not in ids(assess(rec, kb, D("2026-03-02")))


@pytest.mark.parametrize("content,fragment", [("no_such_threshold: 3\n", "unknown policy name"),
                                              ("min_interval_days: soon\n", "non-negative number"),
                                              ("- just a list\n", "mapping")])
def test_bad_policy_file_is_one_line_exit_2(tmp_path, content, fragment):
    policy = tmp_path / "site.yaml"
    policy.write_text(content)
    bundle = tmp_path / "b.json"
    import json
    bundle.write_text(json.dumps(_patient_injected_60_days_ago().bundle()))
    p = run_cli("assess", str(bundle), "--policy", str(policy), "--on", "2026-03-02")
    err = p.stderr.decode()
    assert p.returncode == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err


def test_every_citation_is_traceable(kb):
    """Published sources carry a doi or url and every citation says what kind of source it is."""
    for c in kb.citations.values():
        assert c.basis, c.id
        assert c.doi or c.url or c.basis in ("seed-article", "local-convention"), c.id
    assert "berkoff-2012" in kb.citations and "daniels-2018-accuracy" not in kb.citations
    assert kb.citations["pji-meta-2022"].doi == "10.1007/s00402-022-04375-8"


def test_citation_without_source_is_a_load_error(kb_copy):
    _edit(kb_copy / "citations.yaml", lambda d: d["hoeber-2016"].pop("doi"))
    with pytest.raises(KnowledgeError, match="hoeber-2016: a published source needs a doi or url"):
        _load_and_compile()


def test_new_safety_ids_are_in_the_vocabulary_and_have_rules(kb):
    rule_ids = {r.id for r in kb.rules}
    for fid in ("defer.anticoagulant-hold", "caution.immunosuppression", "dose.anesthetic-above-maximum"):
        assert fid in kb.vocabulary and fid in rule_ids


def test_antithrombotic_hold_times_are_data(kb):
    holds = {a.id: a.hold_days for a in kb.antithrombotics.values()}
    assert holds["clopidogrel"] == 7 and holds["rivaroxaban"] == 3 and holds["aspirin"] is None
    assert kb.drugs["lidocaine"].max_mg == 300 and kb.drugs["lidocaine"].max_mg_per_kg == 4.5


def test_every_concept_and_region_pattern_begins_with_a_known_prefix(kb):
    """A pattern that can begin anywhere ('^(?!...)...') is tried at every word start of every text: a
    lumbar-spine region pattern written that way once made the language layer 27% slower."""
    assert kb.terminology.matcher._anywhere.ids == []


@pytest.mark.parametrize("products,fragment", [
    ([{"text": "celestone", "mg_per_ml": 0}], "not plausible"),
    ([{"text": "celestone"}], "needs text and mg_per_ml"),
    ("celestone", "must be a list"),
])
def test_a_bad_single_strength_product_is_a_load_error(kb_copy, products, fragment):
    _edit(kb_copy / "drugs.yaml", lambda d: d["corticosteroids"]["betamethasone"].update(products=products))
    with pytest.raises(KnowledgeError, match=fragment):
        _load_and_compile()


def test_single_strength_products_are_data(kb):
    ((pattern, mg),) = kb.drugs["betamethasone"].products
    assert pattern.match("Celestone Soluspan") and mg == 6
    assert kb.drugs["triamcinolone"].products == ()  # Kenalog comes as 10 and 40 mg/mL
