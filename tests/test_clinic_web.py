"""The clinic over real HTTP without a browser: login throttling, sessions and CSRF, bad uploads,
roles, the registry API, the plain-language page's reading level; the registry on SQLite and on a
real PostgreSQL server; the `user add` command."""

from __future__ import annotations

import json
import re
from datetime import date
from html import unescape

import httpx
import pgserver
import pytest
from clinickit import add_user, flesch_kincaid_grade, start_clinic, visible_text
from conftest import run_cli
from hypothesis import given
from hypothesis import strategies as st

from injectwise.adapters.storage.registry import Registry
from injectwise.adapters.web.app import WebError, _date, _num
from injectwise.adapters.web.chart import build_chart
from injectwise.adapters.web.demo import load_demo
from injectwise.adapters.web.measures import interval_score, observations
from injectwise.core.errors import InputError
from injectwise.demo import demo_bundles


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    c = start_clinic(tmp_path_factory.mktemp("clinic-web"))
    yield c
    c.server.stop()


ALICE = "alice-password-123"


@pytest.fixture(scope="module")
def alice(clinic) -> httpx.Client:
    """Alice signed in (her one-time password replaced on first use)."""
    return session(clinic.server.url, "alice", clinic.passwords["alice"], ALICE)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert m, "no CSRF field in the form"
    return m.group(1)


def session(url: str, name: str, password: str, new: str | None = None) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=30)
    token = csrf_of(c.get("/app/login").text)
    r = c.post("/app/login", data={"name": name, "password": password, "csrf": token})
    assert r.status_code == 303, r.text[:300]
    if r.headers["location"] == "/app/password":
        token = csrf_of(c.get("/app/password").text)
        assert c.post("/app/password", data={"new": new, "again": new, "csrf": token}).status_code == 303
    return c


def test_session_cookie_flags_and_csrf(clinic, alice):
    c = alice
    r = httpx.post(f"{clinic.server.url}/app/login", data={"name": "x", "password": "y"})
    assert r.status_code == 403  # no CSRF token and no cookie
    # the cookie set at sign-in: HttpOnly and SameSite
    c2 = httpx.Client(base_url=clinic.server.url)
    tok = csrf_of(c2.get("/app/login").text)
    r = c2.post("/app/login", data={"name": "alice", "password": ALICE, "csrf": tok})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie  # plain HTTP here
    # a token from another session is refused
    r = c.post("/app/import", data={"csrf": tok}, files={"bundle": ("b.json", b"{}", "application/json")})
    assert r.status_code == 403
    assert c.get("/app/patients").status_code == 200


def test_bad_uploads_are_one_clear_line(alice):
    c = alice
    token = csrf_of(c.get("/app/import").text)
    for body, words in ((b"not json", "not valid JSON"), (b'{"resourceType": "Patient"}', "not a FHIR Bundle"),
                        (b"", "empty input")):
        r = c.post("/app/import", data={"csrf": token}, files={"bundle": ("x.json", body, "application/json")})
        assert r.status_code == 400
        assert words in unescape(r.text) and "Traceback" not in r.text
    r = c.post("/app/import", data={"csrf": token, "as_of": "2026-13-01"},
               files={"bundle": ("x.json", json.dumps(demo_bundles()[0][1]).encode(), "application/json")})
    assert r.status_code == 400 and "is not a date" in unescape(r.text)
    r = c.post("/app/import", data={"csrf": token},
               files={"bundle": ("x.json", json.dumps(demo_bundles()[1][1]).encode(), "application/json")})
    assert r.status_code == 303
    pid = r.headers["location"].rsplit("/", 1)[-1]
    page = c.get(f"/app/patients/{pid}").text
    token = csrf_of(page)
    for data, words in (({"measured_on": "2026-09-01", "nrs": "11"}, "Pain NRS must be"),
                        ({"measured_on": "2026-09-01", "instrument": "hoos-jr", "instrument_raw": "25"}, "raw score"),
                        ({"measured_on": "2026-09-01"}, "Nothing to record")):
        r = c.post(f"/app/patients/{pid}/outcomes", data={**data, "csrf": token})
        assert r.status_code == 400 and words in unescape(r.text), r.text[-400:]
    assert c.get("/app/patients/99999").status_code == 404


def test_injection_recorded_in_the_app_joins_the_timeline(alice):
    c = alice
    token = csrf_of(c.get("/app/import").text)
    r = c.post("/app/import", data={"csrf": token, "as_of": "2026-11-02"},
               files={"bundle": ("x.json", json.dumps(demo_bundles()[0][1]).encode(), "application/json")})
    page = c.get(r.headers["location"]).text
    assert "No completed injection on or before 2026-11-02" in page
    form = {"csrf": csrf_of(page), "date": "2026-10-01", "target": "hip-intra-articular", "side": "right",
            "guidance": "ultrasound", "steroid": "triamcinolone", "dose": "40", "anesthetic": "lidocaine"}
    assert c.post(f"{r.headers['location']}/injections", data=form).status_code == 303
    page = unescape(c.get(r.headers["location"]).text)
    assert "2026-10-01</td><td>hip joint (intra-articular)</td><td>right</td><td>ultrasound</td>" in page
    assert "2026-12-24" in page  # next allowed: 84 days later by the default policy
    # the engine sees it: planning the same hip a month later is deferred for the interval
    assert "defer.injection-interval" in page
    bad = form | {"target": "no-such-place"}
    r2 = c.post(f"{r.headers['location']}/injections", data=bad)
    assert r2.status_code == 400 and "not supported" in unescape(r2.text)


def test_login_throttling(tmp_path):
    clinic = start_clinic(tmp_path, name="throttle")
    try:
        _throttled(clinic)
    finally:
        clinic.server.stop()


def _throttled(clinic) -> None:
    url = clinic.server.url
    c = httpx.Client(base_url=url)
    for _ in range(5):
        tok = csrf_of(c.get("/app/login").text)
        assert c.post("/app/login", data={"name": "root", "password": "wrong", "csrf": tok}).status_code == 401
    tok = csrf_of(c.get("/app/login").text)
    r = c.post("/app/login", data={"name": "root", "password": clinic.passwords["root"], "csrf": tok})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text


def test_registry_api_needs_trust_and_gives_aggregates_only(clinic):
    url = clinic.server.url
    assert httpx.get(f"{url}/api/registry/summary").status_code == 401
    r = httpx.get(f"{url}/api/registry/summary", headers={"X-API-Key": clinic.api_key})
    assert r.status_code == 200
    doc = r.json()
    assert {"by_target", "by_guidance", "by_drug", "time_to_recurrence_by_guidance",
            "injections_per_patient_year"} <= set(doc)
    text = r.text
    for bundle in (b for _m, b, _d in demo_bundles()):
        pid = next(e["resource"]["id"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        assert pid not in text  # no patient identifier in the aggregate


def test_explanation_reading_level(alice):
    c = alice
    token = csrf_of(c.get("/app/import").text)
    r = c.post("/app/import", data={"csrf": token},
               files={"bundle": ("x.json", json.dumps(demo_bundles()[1][1]).encode(), "application/json")})
    pid = r.headers["location"].rsplit("/", 1)[-1]
    html = c.get(f"/app/patients/{pid}/explanation").text
    body = html.split('data-testid="explanation">')[1].split("</article>")[0]
    text = visible_text(re.sub(r"<h[1-6][^>]*>.*?</h[1-6]>", "", body))  # headings are not sentences
    grade = flesch_kincaid_grade(text)
    # reading age 11-12 is US grade 6-7 (age = grade + 5); plain enough but not childish
    assert 5.0 <= grade <= 7.5, f"Flesch-Kincaid grade {grade:.1f} (reading age about {grade + 5:.0f})"
    for must in ("numbing", "two weeks", "fever", "weak", "physical therapist", "weeks between injections"):
        assert must in text, must


def test_flesch_kincaid_reference():
    assert flesch_kincaid_grade("The cat sat on the mat.") < 0
    hard = ("Intra-articular corticosteroid administration demonstrates considerable heterogeneity regarding "
            "therapeutic effectiveness across osteoarthritis populations.")
    assert flesch_kincaid_grade(hard) > 16


def test_published_interval_scores():
    assert interval_score("hoos-jr", 0) == 100 and interval_score("hoos-jr", 24) == 0
    assert interval_score("koos-jr", 0) == 100 and interval_score("koos-jr", 28) == 0
    scores = [interval_score("koos-jr", r) for r in range(29)]
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(InputError):
        interval_score("hoos-jr", 25)
    with pytest.raises(InputError):
        interval_score("womac", 3)


def test_outcome_becomes_pain_observation_the_engine_reads(kb):
    _mode, bundle, on = demo_bundles()[1]
    row = {"id": 1, "bundle": json.dumps(bundle), "resources": [], "outcomes": [], "as_of": date(2026, 9, 20)}
    assert build_chart(row, kb, on).review.outcome == "non-responder"
    row["outcomes"] = [{"id": 5, "measured_on": date(2026, 9, 18), "nrs": 1.0, "instrument": None,
                        "instrument_score": None, "pgic": 1}]
    chart = build_chart(row, kb, on)
    assert chart.review.outcome == "responder"
    assert any(e.resource == "Observation/registry-5-nrs" for f in chart.review.findings for e in f.evidence) or \
        chart.review.detail["latest_pain"]["resource"] == "Observation/registry-5-nrs"
    # an outcome dated after the evaluation date is not seen
    row["as_of"] = date(2026, 9, 17)
    assert build_chart(row, kb, on).review.outcome != "responder"
    obs = observations("Patient/x", {"measured_on": date(2026, 9, 18), "nrs": 3, "pgic": 7}, 9)
    assert obs[0]["code"]["coding"][0]["code"] == "72514-3" and obs[1]["valueString"] == "very much worse"


def _round_trip(url: str, kb) -> None:
    reg = Registry(url)
    reg.add_user("carol", "clinician", "hash")
    with pytest.raises(InputError):
        reg.add_user("carol", "admin", "hash")
    with pytest.raises(InputError):
        reg.add_user("dave", "superuser", "hash")
    assert reg.password_hash("carol")[0].role == "clinician"
    n = load_demo(reg, date(2026, 11, 1))
    assert n == len(reg.list_patients("carol"))
    assert [p["display_name"] for p in reg.list_patients("carol", "demo")] == ["Mary Demo", "Peter Demo"]
    pid = reg.list_patients("carol", "peter")[0]["id"]
    oid = reg.add_outcome("carol", pid, {"measured_on": date(2026, 9, 1), "nrs": 4.5, "relief_days": 12,
                                         "relief_ongoing": False})
    row = reg.patient("carol", pid)
    assert row["outcomes"][-1]["id"] == oid and row["outcomes"][-1]["nrs"] == 4.5
    assert row["outcomes"][-1]["measured_on"] == date(2026, 9, 1)
    reg.add_resource("carol", pid, "note", json.dumps({"resourceType": "DocumentReference", "id": "n1"}))
    assert reg.patient("carol", pid)["resources"][0]["kind"] == "note"
    reg.note_login("carol", "1.2.3.4", False)
    from datetime import timedelta
    assert reg.recent_failures("carol", "9.9.9.9", timedelta(minutes=5)) == 1
    assert reg.secret("csrf") == Registry(url).secret("csrf")
    log = reg.audit_entries("root")
    actions = {(e["actor"], e["action"], e["patient_id"]) for e in log}
    assert ("carol", "patient.read", pid) in actions and ("carol", "outcome.add", pid) in actions
    assert ("carol", "note.add", pid) in actions and ("demo-loader", "patient.import", pid) in actions
    from injectwise.adapters.web.analytics import summary
    s = summary(reg.all_patients_for_analytics("ann"), kb, date(2026, 11, 1))
    assert s["patients"] == n and s["injections"] >= 10
    assert sum(g["injections"] for g in s["by_guidance"]) == s["injections"]
    reg.engine.dispose()


def test_registry_round_trip_sqlite(tmp_path, kb):
    _round_trip(f"sqlite:///{tmp_path / 'r.db'}", kb)


@pytest.mark.skipif(not pgserver.available(), reason="PostgreSQL server binaries not installed")
def test_registry_round_trip_postgresql(kb):
    with pgserver.postgres() as url:
        _round_trip(url, kb)


def test_user_add_cli(tmp_path):
    url = f"sqlite:///{tmp_path / 'u.db'}"
    pw = add_user(url, "eve", "analyst")
    assert len(pw) == 19
    r = run_cli("user", "add", "eve", "--role", "analyst", "--database-url", url)
    assert r.returncode == 2 and b"already exists" in r.stderr and b"Traceback" not in r.stderr
    r = run_cli("user", "add", "zed", "--role", "boss", "--database-url", url)
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1
    stored = Registry(url).password_hash("eve")[1]
    assert stored.startswith("$argon2id$") and pw not in stored


@given(st.text(max_size=30))
def test_form_parsers_fail_cleanly(text):
    """Any text in a date or number field is either a value in range or a WebError (a 400), never a crash."""
    for parse in (lambda t: _date(t, "Date"), lambda t: _num(t, "NRS", 0, 10), lambda t: _num(t, "Days", 0, 3650, True)):
        try:
            v = parse(text)
        except WebError as e:
            assert e.status == 400 and e.message
        else:
            assert v is None or isinstance(v, date | float)
    try:
        v = _num(text, "NRS", 0, 10)
    except WebError:
        return
    assert v is None or 0 <= v <= 10


def test_exposure_next_allowed_follows_interval_and_yearly_limit(kb):
    from injectwise.demo.builder import BundleBuilder
    b = BundleBuilder("exp")
    for d in ("2026-01-01", "2026-04-01", "2026-07-01"):
        b.injection(d, "hip-intra-articular", "right", "ultrasound", "betamethasone", 6)
    b.injection("2026-06-01", "greater-trochanteric-bursa", "left", "landmark", "triamcinolone", 40)
    row = {"id": 1, "bundle": json.dumps(b.bundle()), "resources": [], "outcomes": [], "as_of": date(2026, 8, 1)}
    chart = build_chart(row, kb, date(2026, 8, 1))
    hip = next(e for e in chart.exposure if "hip joint" in e.site)
    # three at this site in 12 months (policy 3): the oldest must leave the window, later than 84 days on
    assert hip.count_year == 3 and hip.next_allowed == date(2027, 1, 2)
    assert hip.region == "hip" and hip.region_count_year == 4
    bursa = next(e for e in chart.exposure if "bursa" in e.site)
    # only one at the bursa, but four in the hip region (policy 4): the region limit sets the date
    assert bursa.count_year == 1 and bursa.next_allowed == date(2027, 1, 2)
    assert any("hip region" in r for r in bursa.reasons)
    # betamethasone counts at 6 mg = 40 mg triamcinolone-equivalent (0.75 : 5 ratio in drugs.yaml)
    assert chart.tae_year == pytest.approx(3 * 6 * kb.equivalence_reference_mg / kb.drugs["betamethasone"].equivalent_mg + 40)


def test_insecure_no_auth_opens_the_pages_for_local_demos(tmp_path):
    from servicekit import start_server
    server = start_server(tmp_path, "--insecure-no-auth", name="open")
    try:
        c = httpx.Client(base_url=server.url)
        page = c.get("/app/patients")
        assert page.status_code == 200 and "authentication off" in page.text
        # forms still need their CSRF token
        assert c.post("/app/import", files={"bundle": ("b.json", b"{}", "application/json")}).status_code == 403
        token = csrf_of(c.get("/app/import").text)
        r = c.post("/app/import", data={"csrf": token},
                   files={"bundle": ("b.json", json.dumps(demo_bundles()[0][1]).encode(), "application/json")})
        assert r.status_code == 303
        assert "AUTHENTICATION IS OFF" in server.log_text()
    finally:
        server.stop()
