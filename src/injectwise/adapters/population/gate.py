"""Observation lines a screening can leave unparsed, told from their bytes alone.

Most lines of an export are Observations whose code maps to no concept (vital signs, panels); the reader
skips them (`relevance.UnusedObservations`) after they have been routed, parsed and grouped. The gate
tells them apart before any of that, so they are neither written to a shard nor parsed.

A line passes only when it is, byte for byte, compact JSON of a strict subset that orjson accepts alike
(printable ASCII strings without escapes, bounded numbers, no whitespace, nesting as Synthea writes it):

    {"resourceType":"Observation","id":ID, other members..., "code":{...}, ..., "subject":{"reference":
     "Patient/PID"}, ...}

where no other member is named resourceType, id, code, subject, patient or beneficiary (so the keys the
reader's skip decision and the partition's routing look at each occur once, at the top level), with at
most one `component` list after the subject, each component with one code, its first member; and where
`UnusedObservations` finds the code and every component's code unused. Such a line is valid JSON; its
routing (`bulk.patient_key`) gives PID; the reader would skip it whatever its status, provided its
subject is the patient's own reference and no two resources of the patient share a reference (then the
reader would read every Observation). Those two facts depend on the patient's other lines: the shard
worker checks them (`skipped_lines_matter`) and reads the skipped lines back when either fails."""

from __future__ import annotations

import re
from typing import Any

import orjson

from injectwise.adapters.fhir.reader import bulk_reference
from injectwise.adapters.population.relevance import UnusedObservations

MAX_CODES = 50_000  # distinct code values remembered; a fresh start beyond it keeps memory bounded

_STR = rb'"[ !#-\[\]-~]*+"'  # printable ASCII, no quote, no backslash: its bytes are its value
_NUM = rb"-?+(?:0|[1-9][0-9]{0,18}+)(?:\.[0-9]{1,40}+)?+(?:[eE][+-]?+[0-9]{1,2}+)?+"  # never overflows a double
_SCALAR = rb"(?:" + _STR + rb"|" + _NUM + rb"|true|false|null)"
_FLAT = rb"\{(?:" + _STR + rb":" + _SCALAR + rb"(?:," + _STR + rb":" + _SCALAR + rb")*+)?+\}"
_MEMBER = _STR + rb":(?:" + _SCALAR + rb"|\[(?:" + _FLAT + rb"(?:," + _FLAT + rb")*+)?+\])"
_OBJ = rb"\{(?:" + _MEMBER + rb"(?:," + _MEMBER + rb")*+)?+\}"  # e.g. a CodeableConcept, a Reference
_VALUE = rb"(?:" + _SCALAR + rb"|" + _OBJ + rb"|\[(?:" + _OBJ + rb"(?:," + _OBJ + rb")*+)?+\])"
_OTHERS = (rb'(?:,"(?!(?:resourceType|id|code|subject|patient|beneficiary|component)")[ !#-\[\]-~]*+":'
           + _VALUE + rb")*+")
_ID = rb"([A-Za-z0-9\-.]{1,64})"  # a FHIR id: no slash, so the reader keys it `Observation/ID`
# The line up to its code, then the rest: a code known to be used spares matching the rest. (Every
# repetition is possessive, so matching in two steps matches what the whole pattern would.)
_HEAD = re.compile(rb'\{"resourceType":"Observation","id":"' + _ID + rb'"' + _OTHERS + rb',"code":(' + _OBJ + rb")")
# At most one component list (blood pressure), each component's code first and once: every `{"code":{` in
# the list then starts a component (no value below a component holds an object named code).
_COMPONENT = rb'\{"code":' + _OBJ + rb'(?:,"(?!code")[ !#-\[\]-~]*+":' + _VALUE + rb")*+\}"
_COMPONENTS = rb',"component":(\[' + _COMPONENT + rb"(?:," + _COMPONENT + rb")*+\])"
_TAIL = re.compile(_OTHERS + rb',"subject":\{"reference":"Patient/' + _ID + rb'"\}' + _OTHERS
                   + rb"(?:" + _COMPONENTS + _OTHERS + rb")?+\}")
_COMPONENT_CODE = re.compile(rb'\{"code":(' + _OBJ + rb")")


class ObservationGate:
    """Callable on a raw line: (patient id, Observation id) of a line the reader would skip, else None."""

    def __init__(self, unused: UnusedObservations) -> None:
        self.unused = unused
        self._unused_code: dict[bytes, bool] = {}  # a code's bytes -> whether no concept is reachable

    def __call__(self, line: bytes) -> tuple[bytes, bytes] | None:
        head = _HEAD.match(line)
        if head is None:
            return None
        oid, code = head.groups()
        if not self._unused(code):
            return None
        tail = _TAIL.fullmatch(line, head.end())
        if tail is None:
            return None
        pid, components = tail.groups()
        if components is not None and not all(self._unused(c) for c in _COMPONENT_CODE.findall(components)):
            return None
        return pid, oid

    def _unused(self, code: bytes) -> bool:
        skip = self._unused_code.get(code)
        if skip is None:
            if len(self._unused_code) >= MAX_CODES:
                self._unused_code.clear()
            skip = self._unused_code[code] = self._decide(code)
        return skip

    def _decide(self, code: bytes) -> bool:
        """The reader's own decision on an Observation's (or a component's) code."""
        try:
            return not self.unused.used(orjson.loads(code))
        except Exception:  # whatever the reader would make of such a code, read the line to find out
            return False


def skipped_lines_matter(pid: str, resources: list[dict[str, Any]], skipped: list[str]) -> bool:
    """Whether the reader could read the patient differently with its skipped Observations (ids in
    `skipped`) than without them: no other resource to read, a resource the Bulk reader resolves through
    the general path, two resources with one reference (the reader then reads every Observation), or a
    single Patient whose reference is not the skipped lines' subject."""
    if not resources:
        return True
    refs = set()
    patients = []
    for r in resources:
        ref = bulk_reference(r)
        if ref is None:
            return True
        refs.add(ref)
        if r["resourceType"] == "Patient":
            patients.append(r["id"])
    refs.update(f"Observation/{oid}" for oid in skipped)
    if len(refs) != len(resources) + len(skipped):
        return True
    return len(patients) == 1 and patients[0] != pid
