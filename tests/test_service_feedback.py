"""Feedback: stored per card (SQLite by default, a real PostgreSQL server too), checked against the
spec's invariants, all-or-nothing, and summarised as accept/override rates per finding and reason."""

from __future__ import annotations

import json
import os
from datetime import datetime

import httpx
import pytest
from pgserver import available, postgres
from servicekit import REPLAY, check_cards, is_outcome, post, server_fixture, start_server

from injectwise.adapters.storage import FeedbackRejected, FeedbackStore, IssuedCard

NA = "http://terminology.hl7.org/CodeSystem/non-adherence-reason-codes"
ORDER = "/cds-services/injectwise-order-select"


def _cards(server, vignette_dir, name):
    d = next(d for d in sorted(vignette_dir.iterdir()) if name in d.name)
    r = post(server.url + ORDER, json.loads((d / "cds-request.json").read_text()))
    assert r.status_code == 200
    return check_cards(r.json())


def _exercise(server, vignette_dir):
    """Issue cards, accept one suggestion, override two cards with coded reasons; return the summary."""
    cards = {c["source"]["topic"]["code"]: c for c in _cards(server, vignette_dir, "ex08")}
    pt = cards["defer.conservative-care-not-tried"]
    cards2 = {c["source"]["topic"]["code"]: c for c in _cards(server, vignette_dir, "ex08")}
    pt2 = cards2["defer.conservative-care-not-tried"]
    fb = {"feedback": [
        {"card": pt["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": pt["suggestions"][0]["uuid"]}],
         "outcomeTimestamp": "2026-08-17T10:00:00Z"},
        {"card": pt2["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-08-17T10:05:00+02:00",
         "overrideReason": {"reason": {"system": NA, "code": "action-completed",
                                       "display": "Recommended action was already completed"},
                            "userComment": "PT done elsewhere"}},
        {"card": cards["caution.incomplete-data"]["uuid"], "outcome": "overridden",
         "outcomeTimestamp": "2026-08-17T10:06:00Z", "overrideReason": {"userComment": "checked the chart"}},
    ]}
    r = post(server.url + ORDER + "/feedback", fb)
    assert r.status_code == 200, r.text
    assert r.json() == {"stored": 3}
    summary = httpx.get(server.url + "/api/feedback/summary").json()
    return {f["finding_id"]: f for f in summary["findings"]}


def _assert_summary(by):
    pt = by["defer.conservative-care-not-tried"]
    assert pt["issued"] == 2 and pt["accepted"] == 1 and pt["overridden"] == 1
    assert pt["accept_rate"] == 0.5 and pt["override_rate"] == 0.5
    assert pt["override_reasons"] == [{"code": "action-completed", "display": "Recommended action was already completed",
                                       "count": 1}]
    inc = by["caution.incomplete-data"]
    assert inc["overridden"] == 1 and inc["override_reasons"][0]["code"] == "none-given"


server = server_fixture("fb", *REPLAY)


def test_feedback_is_stored_and_summarised(server, vignette_dir):
    _assert_summary(_exercise(server, vignette_dir))


def test_invalid_feedback_is_refused_and_nothing_is_stored(server, vignette_dir):
    card = _cards(server, vignette_dir, "ex08")[0]
    before = httpx.get(server.url + "/api/feedback/summary").json()
    url = server.url + ORDER + "/feedback"
    good = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-08-17T10:00:00Z",
            "overrideReason": {"userComment": "fine"}}
    bad_items = [
        {**good, "outcome": "ignored"},
        {**good, "outcomeTimestamp": "yesterday"},
        {**good, "outcomeTimestamp": "2026-08-17T10:00:00"},  # no time zone
        {**good, "overrideReason": {}},  # cds-fb: reason or comment
        {**good, "acceptedSuggestions": [{"id": "x"}]},  # only for accepted
        {"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-08-17T10:00:00Z"},  # no suggestions
        {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": "s"}],
         "overrideReason": {"userComment": "x"}, "outcomeTimestamp": "2026-08-17T10:00:00Z"},
        {**good, "overrideReason": {"reason": {"code": "x"}}},  # Coding without system
        {k: v for k, v in good.items() if k != "card"},
    ]
    for bad in bad_items:
        is_outcome(post(url, {"feedback": [good, bad]}), 400)  # the good one is not stored either
    is_outcome(post(url, {"feedback": []}), 400)
    is_outcome(post(url, b"{", None), 400)
    is_outcome(post(server.url + "/cds-services/nope/feedback", {"feedback": [good]}), 404)
    assert httpx.get(server.url + "/api/feedback/summary").json() == before


def test_the_store_keeps_feedback_across_restarts(tmp_path, vignette_dir):
    db = f"sqlite:///{tmp_path / 'keep.db'}"
    s = start_server(tmp_path, *REPLAY, f"--database-url={db}", name="keep1")
    try:
        _exercise(s, vignette_dir)
        _cards(s, vignette_dir, "ex08")  # issued just before shutdown: still queued for the writer
    finally:
        s.stop()
    s = start_server(tmp_path, "--insecure-no-auth", f"--database-url={db}", name="keep2")
    try:
        by = {f["finding_id"]: f for f in httpx.get(s.url + "/api/feedback/summary").json()["findings"]}
        assert by["defer.conservative-care-not-tried"]["issued"] == 3  # the queued log was written on shutdown
        by["defer.conservative-care-not-tried"]["issued"] = 2
        _assert_summary(by)
    finally:
        s.stop()


def test_unusable_database_url_is_one_clear_line(tmp_path):
    from conftest import run_cli
    p = run_cli("serve", "--insecure-no-auth", "--database-url", "nosuchdb://x", "--port", "1")
    assert p.returncode == 2 and p.stderr.decode().count("\n") == 1 and b"Traceback" not in p.stderr


needs_pg = pytest.mark.skipif(not available() and not os.environ.get("CI"),
                              reason="PostgreSQL server binaries not installed (CI installs them)")


def test_expired_jwt_ids_are_forgotten_in_the_background(tmp_path):
    """The replay table keeps a JWT id only until its token expires: it does not grow with every call ever made."""
    import time

    from sqlalchemy import func, select

    from injectwise.adapters.storage.tables import used_tokens

    store = FeedbackStore(f"sqlite:///{tmp_path / 'p.db'}", prune_every_s=0.05)
    try:
        assert store.claim_token("iss", "expired", time.time() - 10).result(10) is True
        assert store.claim_token("iss", "live", time.time() + 3600).result(10) is True
        left = None
        for _ in range(100):  # the pruner runs every 50 ms
            with store.engine.connect() as conn:
                left = sorted(r.jti for r in conn.execute(select(used_tokens.c.jti)))
            if left == ["live"]:
                break
            time.sleep(0.05)
        assert left == ["live"]
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(used_tokens)).scalar() == 1
    finally:
        store.close()


@needs_pg
def test_feedback_store_on_a_real_postgresql_server():
    with postgres() as url:
        store = FeedbackStore(url)
        FeedbackStore(url).close()  # migrating twice is harmless
        now = datetime(2026, 11, 21, 12, 0)
        store.record_cards([IssuedCard(f"u{i}", "svc", "order-sign", "h1", "dose.above-recommended", "1.0.0",
                                       "2026.11.3", "warning", now, ("s1",)) for i in range(3)])
        items = [
            {"card": "u0", "outcome": "accepted", "accepted_suggestions": ["s1"], "override_reason": None,
             "user_comment": None, "outcome_timestamp": now},
            {"card": "u1", "outcome": "overridden", "accepted_suggestions": None,
             "override_reason": {"system": NA, "code": "risk-benefit-ratio", "display": "Recipient assessment"},
             "user_comment": None, "outcome_timestamp": now}]
        store.record_feedback("svc", items, now)
        store.record_feedback("svc", items, now)  # a repeat is idempotent
        with pytest.raises(FeedbackRejected):
            store.record_feedback("svc", [{**items[0], "card": "nope"}], now)
        assert store.claim_token("iss", "j1", 2e9).result(10) is True
        assert store.claim_token("iss", "j1", 2e9).result(10) is False  # a replay, refused by the shared store
        assert store.prune_tokens(3e9) == 1
        by = {f["finding_id"]: f for f in store.summary()["findings"]}
        d = by["dose.above-recommended"]
        assert (d["issued"], d["accepted"], d["overridden"], d["accept_rate"]) == (3, 1, 1, 0.5)
        assert d["override_reasons"][0]["code"] == "risk-benefit-ratio"
        store.close()


@needs_pg
def test_service_with_postgresql_end_to_end(tmp_path, vignette_dir):
    with postgres() as url:
        s = start_server(tmp_path, *REPLAY, f"--database-url={url}", name="pg")
        try:
            _assert_summary(_exercise(s, vignette_dir))
        finally:
            s.stop()
