"""What a screening may leave unread: Observations no rule or measure can use.

The engine reaches observations only through the concepts their code maps to (a measured value, a
culture, a pregnancy test: `observation_code_concepts`), so an Observation whose code and every
component's code map to no concept is never looked at; a Synthea record is mostly such vital signs and
panels. Anything mapped to a concept (including a culture whose valueString names an organism) is read
in full, as on the single-patient path. What a skipped Observation still could have given, a note that its
date is missing, only ever reaches a single result's unknowns, which a screening row does not carry; and
its other fields are not read, so a malformed value there no longer makes the patient's row an error."""

from __future__ import annotations

from typing import Any

import orjson

from injectwise.adapters.fhir.reader import read_coded
from injectwise.engine.clinical import observation_code_concepts
from injectwise.knowledge.model import Knowledge

MAX_CODES = 50_000  # distinct codes remembered; a fresh start beyond it keeps memory bounded


class UnusedObservations:
    """Callable for `read_resources(skip_observation=...)`: True when no concept is reachable."""

    def __init__(self, kb: Knowledge) -> None:
        self.term = kb.terminology
        self._used: dict[bytes, bool] = {}  # a code's JSON -> whether it maps to any concept

    def used(self, code: Any) -> bool:
        key = orjson.dumps(code)
        hit = self._used.get(key)
        if hit is None:
            if len(self._used) >= MAX_CODES:
                self._used.clear()
            hit = self._used[key] = bool(observation_code_concepts(self.term, read_coded(code)))
        return hit

    def __call__(self, r: dict[str, Any]) -> bool:
        if self.used(r.get("code")):
            return False
        components = r.get("component")
        if not components:
            return True
        # the reader's own walk over components (a malformed list fails the same way there)
        return not any(self.used(c.get("code")) for c in components if isinstance(c, dict))
