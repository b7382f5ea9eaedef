"""Property-based tests for the service's parsers: whatever JSON arrives, the answer is a ServiceError
(a 4xx) or a usable result, never another exception."""

from __future__ import annotations

import asyncio
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from injectwise.adapters.service.feedback import parse_feedback
from injectwise.adapters.service.hooks import BY_ID, _check_request
from injectwise.adapters.service.outcome import ServiceError
from injectwise.adapters.service.prefetch import PREFETCH, gather
from injectwise.core.errors import InputError
from injectwise.core.record import PatientRecord
from injectwise.demo.builder import BundleBuilder

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=20)
outcomes = st.sampled_from(["accepted", "overridden", "ignored", None])
items = st.fixed_dictionaries({}, optional={
    "card": st.text(max_size=8) | scalars, "outcome": outcomes,
    "acceptedSuggestions": st.lists(st.fixed_dictionaries({}, optional={"id": scalars}), max_size=2) | scalars,
    "overrideReason": st.fixed_dictionaries({}, optional={"reason": json_values, "userComment": scalars}) | scalars,
    "outcomeTimestamp": st.sampled_from(["2026-08-17T10:00:00Z", "2026-08-17", "nonsense", "2026-08-17T10:00:00"])
    | scalars})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, st.fixed_dictionaries({"feedback": st.lists(items, max_size=3)})))
def test_feedback_parser_accepts_or_refuses_cleanly(body):
    try:
        out = parse_feedback(body)
    except ServiceError as e:
        assert 400 <= e.status < 500 and e.message and "\n" not in e.message
        return
    for i in out:
        assert i["outcome"] in ("accepted", "overridden") and i["card"]
        assert (i["outcome"] == "accepted") == (i["accepted_suggestions"] is not None)


prefetch_values = st.one_of(st.none(), json_values, st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Bundle", "OperationOutcome", "Condition", "Patient"])},
    optional={"entry": st.lists(st.fixed_dictionaries({}, optional={"resource": json_values}), max_size=3) | scalars,
              "id": scalars}))
requests = st.fixed_dictionaries(
    {"hook": st.sampled_from(["order-select", "order-sign", "patient-view", "other"]),
     "hookInstance": st.text(max_size=5) | scalars,
     "context": st.fixed_dictionaries({"patientId": st.sampled_from(["p1", "", None])},
                                      optional={"draftOrders": prefetch_values})},
    optional={"prefetch": st.dictionaries(st.sampled_from(list(PREFETCH)), prefetch_values, max_size=4) | scalars,
              "fhirAuthorization": json_values})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(list(BY_ID)), requests)
def test_hook_request_parsing_never_crashes(service_id, body):
    svc = BY_ID[service_id]
    try:
        drafts = _check_request(svc, body)
        got = asyncio.run(gather(body, drafts, 0.5, refuse_missing=False))
    except ServiceError as e:
        assert 400 <= e.status < 500 and "\n" not in e.message
        return
    except InputError as e:  # the FHIR reader's own clean error: the service maps it to 400
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(got.record, PatientRecord)
    assert set(got.unavailable) <= set(PREFETCH)


def test_last_event_ignores_future_bookings():
    b = BundleBuilder("le", sex="female", birth="1960-01-01")
    b.pain("2026-03-01", 5)
    b.future_order("hip-arthroplasty", "2026-09-01")
    from injectwise.adapters.fhir import read_bundle
    rec = read_bundle(b.bundle())
    assert rec.last_event() is not None and rec.last_event().date() == date(2026, 3, 1)
