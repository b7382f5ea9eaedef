"""The CDS Hooks service over real HTTP: the public vignettes through the shared scorer, the same
conclusions as the CLI and the REST API, spec-conformant cards, suggestions that fix the order,
prefetch fallbacks (FHIR server, 412), and logs without patient data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from conftest import SHARED, run_cli
from servicekit import REPLAY, FhirStub, all_resources, check_cards, complete_prefetch, is_outcome, post, server_fixture

from injectwise.demo import demo_bundles

ORDER = "/cds-services/injectwise-order-select"
SIGN = "/cds-services/injectwise-order-sign"
VIEW = "/cds-services/injectwise-patient-view"
HIDDEN_AT_ORDER = ("education.", "monitor.")


replay = server_fixture("replay", *REPLAY, doc="Open service replaying records as of their own date, explaining "
                                             "missing data (vignette mode).")
strict = server_fixture("strict", "--insecure-no-auth", "--fhir-timeout", "1",
                        doc="Open service with the spec's defaults: today's date, 412 on missing prefetch.")


def _requests(vignette_dir):
    for d in sorted(vignette_dir.iterdir()):
        yield d, json.loads((d / "cds-request.json").read_text()), json.loads((d / "expected.json").read_text())


def _path(request):
    return VIEW if request["hook"] == "patient-view" else ORDER


def test_discovery_lists_the_three_hooks_with_prefetch(replay):
    doc = httpx.get(replay.url + "/cds-services").json()
    hooks = {s["hook"]: s for s in doc["services"]}
    assert set(hooks) == {"order-select", "order-sign", "patient-view"}
    for s in doc["services"]:
        assert s["id"] and s["description"] and s["title"]
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        assert set(s["prefetch"]) == {"patient", "conditions", "procedures", "medicationAdministrations",
                                      "medicationStatements", "observations", "allergyIntolerances",
                                      "documentReferences", "serviceRequests"}


def test_public_vignettes_pass_through_cds_with_the_shared_scorer(replay):
    p = subprocess.run([sys.executable, str(SHARED / "tools" / "eval_vignettes.py"),
                        *map(str, sorted((SHARED / "examples" / "vignettes").glob("*.yaml"))),
                        "--via", "cds", "--url", replay.url], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "8 passed, 0 failed" in p.stdout


def _dated_after_as_of(path: Path) -> bool:
    """A vignette with events after its as-of day: a CDS request carries no as-of date (replay mode takes the
    newest event in the request), so such a case is only meaningful through the CLI."""
    v = yaml.safe_load(path.read_text())
    dates = re.findall(r"\b(\d{4}-\d{2}-\d{2})", path.read_text().split("\nexpect:")[0].split("\nas_of:")[1])
    return any(d > str(v["as_of"]) for d in dates)


def test_own_vignettes_pass_through_cds_with_every_prefetch_key(replay):
    own = sorted(str(p) for p in (Path(__file__).parent / "vignettes").glob("*.yaml") if not _dated_after_as_of(p))
    assert len(own) >= 12
    p = subprocess.run([sys.executable, str(SHARED / "tools" / "eval_vignettes.py"), *own, "--via", "cds",
                        "--full-prefetch", "--url", replay.url], capture_output=True, text=True, timeout=300)
    assert f"{len(own)} passed, 0 failed" in p.stdout, p.stdout + p.stderr


def test_cli_rest_and_cds_reach_the_same_conclusions(replay, vignette_dir):
    for d, req, exp in _requests(vignette_dir):
        mode = exp["mode"]
        cli = run_cli(mode, str(d / "bundle.json"), "--on", exp["as_of"], "--format", "json")
        assert cli.returncode == 0, cli.stderr
        cli_doc = json.loads(cli.stdout)
        assert cli_doc.pop("sources")[0] == str(d / "bundle.json")  # the CLI names the file it read
        bundle = json.loads((d / "bundle.json").read_text())
        rest = post(f"{replay.url}/api/{mode}", {"bundle": bundle, "on": exp["as_of"]})
        assert rest.status_code == 200, rest.text
        rest_doc = rest.json()
        assert rest_doc.pop("sources", []) == json.loads(cli.stdout)["sources"][1:]  # the bundle's notes
        assert rest_doc == cli_doc, f"{d.name}: REST differs from CLI"
        full = complete_prefetch(req)  # every key sent, null where empty: nothing is unavailable
        r = post(replay.url + _path(req), full)
        assert r.status_code == 200, r.text
        codes = [c["source"]["topic"]["code"] for c in check_cards(r.json())]
        want = [f["id"] for f in cli_doc["findings"]]
        if mode == "assess":
            want = [i for i in want if not i.startswith(HIDDEN_AT_ORDER)]
        assert codes == want, f"{d.name}: cards {codes} != CLI {want}"


def test_every_vignette_response_is_spec_conformant_and_explains_itself(replay, vignette_dir):
    for _d, req, _exp in _requests(vignette_dir):
        for path in ([ORDER, SIGN] if req["hook"] != "patient-view" else [VIEW]):
            body = dict(req, hook="order-sign") if path == SIGN else req
            r = post(replay.url + path, body)
            assert r.status_code == 200, r.text
            for c in check_cards(r.json()):
                assert c["source"]["topic"]["system"] == "https://injectwise.org/CodeSystem/finding"
                assert "**Evidence:**" in c["detail"] and "_Rule " in c["detail"]
                assert c["links"][0]["url"].startswith(replay.url + "/rules/")
                assert c["overrideReasons"][0]["system"] == "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"


def test_missing_prefetch_is_named_not_treated_as_none(replay, vignette_dir):
    d = next(d for d in sorted(vignette_dir.iterdir()) if "ex07" in d.name)  # no allergy or procedure keys sent
    req = json.loads((d / "cds-request.json").read_text())
    cards = check_cards(post(replay.url + ORDER, req).json())
    card = next(c for c in cards if c["source"]["topic"]["code"] == "caution.incomplete-data")
    assert "allergies" in card["detail"] and card["indicator"] == "warning"
    full = check_cards(post(replay.url + ORDER, complete_prefetch(req)).json())
    assert "caution.incomplete-data" not in [c["source"]["topic"]["code"] for c in full]


def test_strict_mode_answers_412_without_fhir_server(strict, vignette_dir):
    d = next(iter(sorted(vignette_dir.iterdir())))
    req = json.loads((d / "cds-request.json").read_text())
    diag = is_outcome(post(strict.url + _path(req), req), 412)
    assert "allergyIntolerances" in diag
    r = post(strict.url + _path(req), complete_prefetch(req))  # complete: evaluated (as of today)
    assert r.status_code == 200
    check_cards(r.json())


def test_missing_keys_are_fetched_from_the_fhir_server_with_the_token(replay, vignette_dir):
    d = next(d for d in sorted(vignette_dir.iterdir()) if "ex05" in d.name)
    req = json.loads((d / "cds-request.json").read_text())
    stub = FhirStub(all_resources(req), token="ehr-token-123")
    try:
        sparse = dict(req, prefetch={"patient": req["prefetch"]["patient"]}, fhirServer=stub.url,
                      fhirAuthorization={"access_token": "ehr-token-123", "token_type": "Bearer", "expires_in": 300,
                                         "scope": "patient/*.read", "subject": "injectwise"})
        r = post(replay.url + ORDER, sparse)
        assert r.status_code == 200, r.text
        codes = [c["source"]["topic"]["code"] for c in check_cards(r.json())]
        assert "contraindication.infection-suspected" in codes  # the fever and CRP came from the FHIR server
        assert stub.seen_auth and all(a == "Bearer ehr-token-123" for a in stub.seen_auth)
    finally:
        stub.close()


def test_a_slow_fhir_server_gives_412_within_the_timeout(strict, vignette_dir):
    d = next(iter(sorted(vignette_dir.iterdir())))
    req = json.loads((d / "cds-request.json").read_text())
    stub = FhirStub(all_resources(req), token="t", delay_s=5)
    try:
        sparse = dict(req, prefetch={"patient": req["prefetch"]["patient"]}, fhirServer=stub.url,
                      fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                         "scope": "patient/*.read", "subject": "injectwise"})
        t0 = time.monotonic()
        diag = is_outcome(post(strict.url + _path(req), sparse), 412)
        assert time.monotonic() - t0 < 4, "the FHIR timeout (1 s here) was not enforced"
        assert "FHIR server" in diag
    finally:
        stub.close()


def _demo_request(hook: str) -> dict:
    """The demo assessment patient as a CDS request: history as prefetch, draft orders in the context."""
    _mode, bundle, _on = demo_bundles()[0]
    resources = [e["resource"] for e in bundle["entry"]]
    drafts = [r for r in resources if r.get("status") == "draft" and r["resourceType"] in ("ServiceRequest",
                                                                                          "MedicationRequest")]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    prefetch: dict = {k: None for k in ("conditions", "procedures", "medicationAdministrations", "medicationStatements",
                                        "observations", "allergyIntolerances", "documentReferences", "serviceRequests")}
    prefetch["patient"] = patient
    for r in resources:
        if r in drafts or r is patient:
            continue
        key = r["resourceType"][0].lower() + r["resourceType"][1:] + "s"
        prefetch[key] = prefetch.get(key) or {"resourceType": "Bundle", "type": "searchset", "entry": []}
        prefetch[key]["entry"].append({"resource": r})
    return {"hook": hook, "hookInstance": "00000000-0000-4000-8000-000000000001",
            "context": {"userId": "Practitioner/1", "patientId": patient["id"],
                        "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                        "entry": [{"resource": r} for r in drafts]}},
            "prefetch": prefetch}


def _apply(request: dict, suggestion: dict) -> dict:
    out = json.loads(json.dumps(request))
    entries = out["context"]["draftOrders"]["entry"]
    for a in suggestion["actions"]:
        if a["type"] == "update":
            entries[:] = [{"resource": a["resource"]} if e["resource"]["id"] == a["resource"]["id"] else e
                          for e in entries]
    return out


def test_suggestions_fix_the_draft_order(replay):
    req = _demo_request("order-sign")
    cards = check_cards(post(replay.url + SIGN, req).json())
    by = {c["source"]["topic"]["code"]: c for c in cards}
    assert {"guidance.image-guidance-recommended", "dose.above-recommended"} <= set(by)
    fixed = _apply(_apply(req, by["guidance.image-guidance-recommended"]["suggestions"][0]),
                   by["dose.above-recommended"]["suggestions"][0])
    dose = by["dose.above-recommended"]["suggestions"][0]["actions"][0]["resource"]
    assert dose["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] < 80
    after = [c["source"]["topic"]["code"] for c in check_cards(post(replay.url + SIGN, fixed).json())]
    assert "guidance.image-guidance-recommended" not in after and "dose.above-recommended" not in after
    assert "caution.diabetes" in after  # the rest of the assessment is unchanged


def test_contraindication_offers_to_cancel_the_draft(replay, vignette_dir):
    d = next(d for d in sorted(vignette_dir.iterdir()) if "ex05" in d.name)
    req = json.loads((d / "cds-request.json").read_text())
    cards = check_cards(post(replay.url + ORDER, req).json())
    card = next(c for c in cards if c["source"]["topic"]["code"] == "contraindication.infection-suspected")
    assert card["indicator"] == "critical"
    actions = card["suggestions"][0]["actions"]
    drafts = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in req["context"]["draftOrders"]["entry"]}
    assert {a["resourceId"] for a in actions if a["type"] == "delete"} == drafts


def test_with_two_drafts_only_the_contraindicated_one_is_cancelled(replay, tmp_path):
    own = Path(__file__).parent / "vignettes" / "t77-bilateral-planned.yaml"
    subprocess.run([sys.executable, str(SHARED / "tools" / "vignette2fhir.py"), str(own), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    req = json.loads((tmp_path / "t77-bilateral-planned" / "cds-request.json").read_text())
    cards = check_cards(post(replay.url + ORDER, req).json())
    card = next(c for c in cards if c["source"]["topic"]["code"] == "contraindication.skin-infection-at-site")
    deleted = {a["resourceId"] for a in card["suggestions"][0]["actions"] if a["type"] == "delete"}
    left = [e["resource"] for e in req["context"]["draftOrders"]["entry"]
            if e["resource"]["resourceType"] == "ServiceRequest" and "left" in json.dumps(e["resource"]["bodySite"])]
    sr = f"ServiceRequest/{left[0]['id']}"
    linked = {f"MedicationRequest/{e['resource']['id']}" for e in req["context"]["draftOrders"]["entry"]
              if any(x.get("reference") == sr for x in e["resource"].get("reasonReference", []))}
    assert deleted == {sr} | linked and linked


def test_pt_first_suggests_a_referral(replay, vignette_dir):
    d = next(d for d in sorted(vignette_dir.iterdir()) if "ex08" in d.name)
    req = json.loads((d / "cds-request.json").read_text())
    card = next(c for c in check_cards(post(replay.url + ORDER, req).json())
                if c["source"]["topic"]["code"] == "defer.conservative-care-not-tried")
    create = [a for a in card["suggestions"][0]["actions"] if a["type"] == "create"]
    assert create[0]["resource"]["resourceType"] == "ServiceRequest"
    assert create[0]["resource"]["code"]["coding"][0]["code"] == "91251008"
    assert create[0]["resource"]["subject"]["reference"].endswith(req["context"]["patientId"])


def test_patient_view_without_injections_returns_no_cards(replay):
    _mode, bundle, _on = demo_bundles()[0]
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    req = {"hook": "patient-view", "hookInstance": "x-1", "context": {"userId": "Practitioner/1", "patientId": patient["id"]},
           "prefetch": {"patient": patient}}
    r = post(replay.url + VIEW, complete_prefetch(req))
    assert r.status_code == 200 and r.json() == {"cards": []}


def test_rule_page_explains_the_finding(replay):
    r = httpx.get(replay.url + "/rules/defer.conservative-care-not-tried")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "doi.org" in r.text and "Physical therapy" in r.text
    j = httpx.get(replay.url + "/rules/defer.conservative-care-not-tried?format=json").json()
    assert j["rules"][0]["citations"]
    is_outcome(httpx.get(replay.url + "/rules/no.such-finding"), 404)


def test_logs_carry_hook_data_but_no_patient_data(replay, vignette_dir):
    for _d, req, _exp in _requests(vignette_dir):
        post(replay.url + _path(req), req)
    time.sleep(0.3)
    log = replay.log_text()
    assert '"hookInstance"' in log and '"total_ms"' in log
    for _d, req, _exp in _requests(vignette_dir):
        p = req["prefetch"]["patient"]
        assert p["id"] not in log
        for n in p.get("name", []):
            for part in [n.get("family", ""), *n.get("given", [])]:
                assert not part or part not in log
        assert p.get("birthDate", "@@") not in log


def test_openapi_document_describes_the_rest_api(replay):
    doc = httpx.get(replay.url + "/openapi.json").json()
    for path in ("/api/assess", "/api/review", "/api/knowledge", "/api/feedback/summary", "/cds-services"):
        assert path in doc["paths"]
    schema = doc["paths"]["/api/assess"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "bundle" in json.dumps(schema) and "$ref" not in json.dumps(schema)


def test_cards_say_what_the_record_did_not_tell(replay, vignette_dir):
    d = next(d for d in sorted(vignette_dir.iterdir()) if "ex05" in d.name)
    req = json.loads((d / "cds-request.json").read_text())
    req["prefetch"]["patient"].pop("birthDate")
    req["prefetch"]["documentReferences"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}  # "68 yo"
    cards = check_cards(post(replay.url + ORDER, req).json())
    card = next(c for c in cards if c["source"]["topic"]["code"] == "contraindication.infection-suspected")
    assert "Not known from the record" in card["detail"] and "no birth date" in card["detail"]
    with_age = json.loads((d / "cds-request.json").read_text())
    plain = next(c for c in check_cards(post(replay.url + ORDER, with_age).json())
                 if c["source"]["topic"]["code"] == "contraindication.infection-suspected")
    assert "no birth date" not in plain["detail"]
