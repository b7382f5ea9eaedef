"""Property tests for the edge: whatever JSON arrives, the hook/feedback models answer a ServiceError
(400 naming a path) or a validated object; the CLI's bounded reader never reads past its limit."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from injectwise.adapters.cli.batch import read_limited
from injectwise.adapters.service import models as m
from injectwise.adapters.service.outcome import ServiceError
from injectwise.core.errors import InputError

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=25)
hook_like = st.fixed_dictionaries({}, optional={
    "hook": scalars, "hookInstance": scalars, "fhirServer": scalars | st.just("http://ehr.example/fhir"),
    "context": st.fixed_dictionaries({}, optional={"patientId": scalars, "draftOrders": json_values
                                                   | st.fixed_dictionaries({"resourceType": st.just("Bundle")},
                                                                           optional={"entry": json_values})}),
    "prefetch": st.dictionaries(st.sampled_from(["patient", "conditions", "x"]), json_values, max_size=3) | scalars})


@settings(max_examples=300, deadline=None)
@given(body=hook_like | json_values)
def test_hook_model_answers_a_path_or_an_object(body):
    try:
        req = m.checked(m.HookRequest, body)
    except ServiceError as e:
        assert e.status == 400 and e.message.startswith("invalid request: ") and "\n" not in e.message
        return
    assert isinstance(req.context.patientId, str) and req.context.patientId


@settings(max_examples=200, deadline=None)
@given(body=st.fixed_dictionaries({}, optional={"feedback": st.lists(json_values, max_size=3) | scalars}) | json_values)
def test_feedback_model_answers_a_path_or_an_object(body):
    try:
        req = m.checked(m.FeedbackRequest, body)
    except ServiceError as e:
        assert e.status == 400
        return
    assert 1 <= len(req.feedback) <= m.MAX_FEEDBACK_ITEMS


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300), limit=st.integers(min_value=1, max_value=200))
def test_bounded_reader_returns_all_or_refuses(data, limit):
    if len(data) <= limit:
        assert read_limited(io.BytesIO(data), limit, "x") == data
    else:
        with pytest.raises(InputError, match="larger than the limit"):
            read_limited(io.BytesIO(data), limit, "x")
