"""Property-based: mutated bundles never crash the reader or the engine (InputError at worst)."""

import contextlib
import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from injectwise.adapters.fhir import read_bundle
from injectwise.core.errors import InputError
from injectwise.demo.builder import BundleBuilder
from injectwise.engine.evaluate import assess, review
from injectwise.knowledge import load_knowledge

KB = load_knowledge()


def _base() -> dict:
    b = BundleBuilder("fz")
    b.condition("M16.11", "Primary osteoarthritis, right hip", "2020-01-01")
    b.medication("11289", "warfarin 5 mg", "2019-01-01")
    b.lab("6301-6", "INR", 2.5, None, "2025-12-28")
    b.therapy("2024-01-01", "2024-03-01")
    b.injection("2025-06-01", "hip-intra-articular", "right", "landmark", "triamcinolone", 40, "lidocaine", 40)
    b.pain("2025-06-01", 7)
    b.pain("2025-07-01", 6)
    b.planned("hip-intra-articular", "right", "ultrasound", "triamcinolone", 40)
    return b.bundle()


BASE = _base()
JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                 st.text(max_size=20), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5),
                                                                                          st.integers(), max_size=2))


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


PATHS = list(_paths(BASE))


def _check(doc):
    from datetime import date
    try:
        rec = read_bundle(doc)
    except InputError:
        return
    for fn in (lambda: assess(rec, KB, date(2026, 1, 1)), lambda: review(rec, KB, date(2026, 1, 1))):
        with contextlib.suppress(InputError):
            fn()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), JUNK, st.booleans()), min_size=1, max_size=4))
def test_mutated_bundles_never_crash(mutations):
    doc = copy.deepcopy(BASE)
    for path, value, delete in mutations:
        node = doc
        try:
            for k in path[:-1]:
                node = node[k]
            if delete:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _check(doc)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_are_input_errors(data):
    with contextlib.suppress(InputError):
        read_bundle(data)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(json.dumps(BASE)) - 1))
def test_truncated_json_is_input_error(cut):
    text = json.dumps(BASE)[:cut]
    with contextlib.suppress(InputError):
        read_bundle(text.encode())


def test_non_string_bundle_type_is_input_error():
    """Found by the property test above: a list-valued Bundle.type once raised TypeError."""
    doc = copy.deepcopy(BASE)
    doc["type"] = ["collection"]
    try:
        read_bundle(doc)
    except InputError as e:
        assert "unsupported Bundle type" in str(e)
    else:
        raise AssertionError("a list-valued Bundle.type must be rejected")
