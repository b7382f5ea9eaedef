"""Hostile use of the real service process: mutation fuzzing (no 5xx, the keep-alive connection
survives every error), kill -9 under load (no returned card lost), feedback that cannot be inflated,
a JWT replay refused across workers and restarts, the time budget, metrics and logs."""

from __future__ import annotations

import copy
import http.client
import json
import os
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from servicekit import (
    REPLAY,
    check_cards,
    is_outcome,
    make_keys,
    post,
    server_fixture,
    start_server,
    token,
    write_trust,
)

ORDER = "/cds-services/injectwise-order-select"
VIEW = "/cds-services/injectwise-patient-view"
NA = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"

replay = server_fixture("hard", *REPLAY)


def _requests(vignette_dir: Path) -> list[dict[str, Any]]:
    return [json.loads((d / "cds-request.json").read_text()) for d in sorted(vignette_dir.iterdir())]


def _path(req: dict[str, Any]) -> str:
    return VIEW if req.get("hook") == "patient-view" else ORDER


# ---- mutation fuzzing ---------------------------------------------------------------------
ODD_VALUES: list[Any] = [None, 0, -1, 1e308, True, False, "", "x" * 300, [], [1, "a"], {}, {"a": {"b": []}},
                         {"resourceType": "Bundle"}, {"resourceType": 5}, "2026-13-45", -0.0]


def _paths(node: Any, here: tuple = ()) -> list[tuple]:
    out = [here]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:6]):
            out += _paths(v, (*here, i))
    return out


def _mutate(req: dict[str, Any], rnd: random.Random) -> dict[str, Any] | Any:
    out = copy.deepcopy(req)
    path = rnd.choice(_paths(out)[1:])
    parent = out
    for p in path[:-1]:
        parent = parent[p]
    last = path[-1]
    if rnd.random() < 0.15 and isinstance(parent, dict):
        del parent[last]
    else:
        parent[last] = rnd.choice(ODD_VALUES)
    return out


# Known crashes from the issue: each must be a 4xx now.
def _targeted(req: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key in (req.get("prefetch") or {}):
        for bad in (5, True, "x"):
            r = copy.deepcopy(req)
            if isinstance(r["prefetch"][key], dict):
                r["prefetch"][key]["entry"] = bad
                out.append(r)
    orders = (req.get("context") or {}).get("draftOrders")
    if orders:
        r = copy.deepcopy(req)
        r["context"]["draftOrders"]["entry"] = 3
        out.append(r)
        for i in range(len(orders.get("entry", []))):
            for field in ("code", "orderDetail", "dosageInstruction", "medicationCodeableConcept", "bodySite"):
                for bad in (7, "text", [1, 2], {"coding": 5}, {"coding": [{"display": 9}]}, {"text": ["a"]},
                            [{"text": 3, "coding": "x"}]):
                    r = copy.deepcopy(req)
                    r["context"]["draftOrders"]["entry"][i]["resource"][field] = bad
                    out.append(r)
            r = copy.deepcopy(req)
            r["context"]["draftOrders"]["entry"][i]["resource"]["dosageInstruction"] = [{"text": 12, "doseAndRate": 4}]
            out.append(r)
    return out


def test_mutation_fuzz_never_5xx_and_the_connection_survives(replay, vignette_dir):
    """Thousands of mutated vignette requests on ONE keep-alive connection: every answer is 2xx or a
    4xx OperationOutcome, and the same socket serves the next request (bounded to about 90 s)."""
    rnd = random.Random(20261122)
    base = _requests(vignette_dir)
    u = urlparse(replay.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.connect()
    sock = conn.sock
    cases = [(_path(r), t) for r in base for t in _targeted(r)]
    sent, errors, deadline = 0, 0, time.monotonic() + 90
    while time.monotonic() < deadline and sent < 3000:
        if cases:
            path, body = cases.pop()
        else:
            req = rnd.choice(base)
            path, body = _path(req), _mutate(req, rnd)
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        sent += 1
        assert resp.status < 500, (resp.status, data[:300])
        if resp.status >= 400:
            errors += 1
            doc = json.loads(data)
            assert doc["resourceType"] == "OperationOutcome" and doc["issue"][0]["diagnostics"]
        assert conn.sock is sock, f"the server closed the connection after a {resp.status}"
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200 and conn.sock is sock
    conn.close()
    assert sent >= 1000 and errors >= 100, (sent, errors)


def test_edge_validation_names_the_json_path(replay, vignette_dir):
    req = next(r for r in _requests(vignette_dir) if r["hook"] != "patient-view")
    bad = copy.deepcopy(req)
    bad["context"]["draftOrders"]["entry"] = 5
    assert "context.draftOrders.entry" in is_outcome(post(replay.url + ORDER, bad), 400)
    bad = copy.deepcopy(req)
    bad["prefetch"]["patient"] = 7
    assert "prefetch.patient" in is_outcome(post(replay.url + ORDER, bad), 400)


# ---- kill -9 under load -------------------------------------------------------------------
def _load(url: str, reqs: list[dict[str, Any]], got: list[str], stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as c:
        i = 0
        while not stop.is_set():
            req = reqs[i % len(reqs)]
            i += 1
            try:
                r = c.post(url + _path(req), content=json.dumps(req), headers={"Content-Type": "application/json"})
            except httpx.HTTPError:
                return  # the server died mid-call: that answer never reached us
            if r.status_code == 200:
                got += [c["uuid"] for c in r.json()["cards"]]


def _kill_9_all(pid: int) -> None:
    """SIGKILL the server and, with --workers, every worker process at the same moment."""
    family, todo = [], [pid]
    while todo:
        p = todo.pop()
        family.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            todo += [int(c) for c in task.read_text().split()]
    for p in family:
        os.kill(p, signal.SIGKILL)


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_under_load_loses_no_returned_card(tmp_path, vignette_dir, workers):
    db = f"sqlite:///{tmp_path / 'cards.db'}"
    reqs = _requests(vignette_dir)
    received: list[str] = []
    for round_ in range(3):
        s = start_server(tmp_path, *REPLAY, f"--database-url={db}", "--workers", str(workers), name=f"k{round_}")
        got: list[str] = []
        stop = threading.Event()
        threads = [threading.Thread(target=_load, args=(s.url, reqs, got, stop)) for _ in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while not got and time.monotonic() < deadline:  # each worker's first calls warm it up (slow, shared CPUs)
            time.sleep(0.05)
        time.sleep(1.5)
        _kill_9_all(s.proc.pid)
        s.proc.wait(10)
        stop.set()
        for t in threads:
            t.join(20)
        assert got, "no call was answered before the kill"
        received += got
    from injectwise.adapters.storage import FeedbackStore
    store = FeedbackStore(db)
    try:
        missing = set(received) - set(store.finding_for(received))
        assert not missing, f"{len(missing)} of {len(received)} returned cards were lost"
    finally:
        store.close()
    s = start_server(tmp_path, *REPLAY, f"--database-url={db}", name="after")
    try:  # feedback on the last cards returned before a kill is recognised (never unknown-card)
        fb = {"feedback": [{"card": u, "outcome": "overridden", "outcomeTimestamp": "2026-08-17T10:00:00Z",
                            "overrideReason": {"userComment": "seen"}} for u in received[-20:]]}
        r = httpx.post(s.url + "/cds-services/injectwise-patient-view/feedback", json=fb)
        r2 = httpx.post(s.url + ORDER + "/feedback", json=fb)
        assert 200 in (r.status_code, r2.status_code) or all(x.status_code == 400 and "another service" in x.text
                                                             for x in (r, r2))
        ids = {f["finding_id"] for f in httpx.get(s.url + "/api/feedback/summary").json()["findings"]}
        assert "unknown-card" not in ids
    finally:
        s.stop()


# ---- feedback cannot be inflated ----------------------------------------------------------
def test_feedback_is_checked_against_what_was_issued(replay, vignette_dir):
    req = next(r for r in _requests(vignette_dir) if "ex08" in json.dumps(r) or r["hook"] != "patient-view")
    cards = check_cards(post(replay.url + ORDER, req).json())
    card = cards[0]
    url = replay.url + ORDER + "/feedback"
    over = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-08-17T10:00:00Z",
            "overrideReason": {"reason": {"system": NA, "code": "risk-benefit-ratio"}}}
    before = {f["finding_id"]: f for f in httpx.get(replay.url + "/api/feedback/summary").json()["findings"]}
    assert "no card" in is_outcome(post(url, {"feedback": [{**over, "card": "not-a-card"}]}), 400)
    assert "another service" in is_outcome(post(replay.url + "/cds-services/injectwise-order-sign/feedback",
                                                {"feedback": [over]}), 400)
    acc = {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": "made-up"}],
           "outcomeTimestamp": "2026-08-17T10:00:00Z"}
    assert "not a suggestion" in is_outcome(post(url, {"feedback": [acc]}), 400)
    is_outcome(post(url, {"feedback": [over] * 101}), 400)  # the cap on items per request
    for _ in range(5):  # repeats are idempotent: counted once
        assert post(url, {"feedback": [over, over]}).status_code == 200
    is_outcome(post(url, {"feedback": [{**acc, "acceptedSuggestions": None, "outcome": "accepted"}]}), 400)
    if card.get("suggestions"):
        good = {**acc, "acceptedSuggestions": [{"id": card["suggestions"][0]["uuid"]}]}
        assert "different outcome" in is_outcome(post(url, {"feedback": [good]}), 409)
    after = {f["finding_id"]: f for f in httpx.get(replay.url + "/api/feedback/summary").json()["findings"]}
    fid = card["source"]["topic"]["code"]
    assert after[fid]["overridden"] == before[fid]["overridden"] + 1
    assert "unknown-card" not in after


# ---- JWT replay across workers and restarts -----------------------------------------------
def test_a_replayed_token_is_refused_across_workers_and_restarts(tmp_path, vignette_dir):
    keys = make_keys()
    trust = write_trust(tmp_path, keys)
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    req = next(r for r in _requests(vignette_dir) if r["hook"] == "patient-view")
    s = start_server(tmp_path, "--trusted-issuers", str(trust), "--clock", "record", "--missing-prefetch", "explain",
                     "--workers", "2", f"--database-url={db}", name="workers")
    try:
        aud = s.url + VIEW
        toks = [token(keys, aud) for _ in range(12)]
        for t in toks:  # each token once: accepted, whichever worker answers
            assert post(aud, req, t).status_code == 200
        for t in toks:  # each again, on fresh connections spread over both workers: all refused
            assert "replay" in is_outcome(post(aud, req, t), 401)
        pids = {line for line in s.log_text().splitlines() if "Started server process" in line}
        assert len(pids) == 2, "two workers did not start"
    finally:
        s.stop()
    first_url = s.url  # the restarted server answers for the same public URL (the tokens' aud)
    s = start_server(tmp_path, "--trusted-issuers", str(trust), "--clock", "record", "--missing-prefetch", "explain",
                     f"--database-url={db}", "--public-base-url", first_url, name="restarted")
    try:
        assert "replay" in is_outcome(post(s.url + VIEW, req, toks[0]), 401)
        assert post(s.url + VIEW, req, token(keys, first_url + VIEW)).status_code == 200  # a new token is fine
    finally:
        s.stop()


# ---- time budget, metrics, logs -----------------------------------------------------------
def test_time_budget_answers_503_and_healthz_stays_fast(tmp_path, vignette_dir):
    s = start_server(tmp_path, *REPLAY, "--time-budget", "0.001", name="budget")
    try:
        req = next(r for r in _requests(vignette_dir) if r["hook"] != "patient-view")
        big = copy.deepcopy(req)
        notes = [{"resource": {"resourceType": "Condition", "id": f"c{i}", "subject": {"reference":
                  req["prefetch"]["patient"] and f"Patient/{req['context']['patientId']}"},
                  "code": {"text": f"pain {i} in the hip region without infection " * 20}}} for i in range(3000)]
        big["prefetch"]["conditions"] = {"resourceType": "Bundle", "type": "searchset", "entry": notes}
        results: dict[str, Any] = {}

        def slow() -> None:
            results["r"] = post(s.url + ORDER, big)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.02)
        t0 = time.monotonic()
        assert httpx.get(s.url + "/healthz", timeout=5).status_code == 200
        assert time.monotonic() - t0 < 1.0, "/healthz was blocked by a slow evaluation"
        t.join(60)
        r = results["r"]
        assert "budget" in is_outcome(r, 503) and int(r.headers["retry-after"]) >= 1
    finally:
        s.stop()


def test_metrics_and_json_logs_without_patient_data(replay, vignette_dir):
    req = copy.deepcopy(next(r for r in _requests(vignette_dir) if r["hook"] == "patient-view"))
    patient = req["prefetch"]["patient"]
    patient["name"] = [{"family": "Zyxwvutson", "given": ["Quillamina"]}]
    assert post(replay.url + VIEW, req).status_code == 200
    is_outcome(post(replay.url + VIEW, {**req, "hook": 5}), 400)
    text = httpx.get(replay.url + "/metrics").text
    assert 'injectwise_requests_total{method="POST",route="/cds-services/{service_id}",status="200"}' in text
    assert 'injectwise_hook_latency_seconds_bucket{hook="patient-view"' in text
    assert "injectwise_cards_total{finding_id=" in text and 'injectwise_errors_total{' in text
    log = replay.log_text()
    for secret in ("Zyxwvutson", "Quillamina", req["context"]["patientId"]):
        assert secret not in log and secret not in text
    lines = [ln for ln in log.splitlines() if ln.startswith("{")]
    assert lines and all(isinstance(json.loads(ln), dict) for ln in lines)
    assert any(json.loads(ln).get("event") == "hook" for ln in lines)


def test_405_names_the_allowed_methods(replay):
    r = httpx.put(replay.url + "/healthz")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    is_outcome(r, 405)
