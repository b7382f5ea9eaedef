"""Population overuse measures (measures.yaml): loaded and checked here, compiled by the engine.

Kept apart from the rule loader so the single-patient path never pays for it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from injectwise.core.errors import KnowledgeError
from injectwise.knowledge.model import Knowledge

MEASURES_FILE = Path(__file__).parent / "data" / "measures.yaml"


@dataclass(frozen=True, slots=True, eq=False)
class MeasureSpec:
    id: str
    version: str
    title: str
    denominator: dict[str, Any]
    numerator: dict[str, Any]
    exclusions: tuple[dict[str, Any], ...]
    citations: tuple[str, ...]

    @property
    def column(self) -> str:
        """Column name in the screening output (no dots or dashes, which Spark and SQL dislike)."""
        return "m_" + self.id.replace("-", "_")


@dataclass(frozen=True, slots=True, eq=False)
class MeasureSet:
    version: str
    period_days: int
    measures: tuple[MeasureSpec, ...]


def _err(msg: str) -> KnowledgeError:
    return KnowledgeError(f"measures.yaml: {msg}")


def _check_numerator(node: Any, rule_ids: set[str], where: str) -> None:
    if not isinstance(node, dict):
        raise _err(f"{where}: numerator must be a mapping")
    keys = set(node) - {"doc"}
    if len(keys) != 1:
        raise _err(f"{where}: numerator needs exactly one of rule, when, any, all")
    (key,) = keys
    if key == "rule":
        if node["rule"] not in rule_ids:
            raise _err(f"{where}: unknown engine rule {node['rule']!r}")
    elif key in ("any", "all"):
        if not isinstance(node[key], list) or not node[key]:
            raise _err(f"{where}: {key} takes a non-empty list")
        for part in node[key]:
            _check_numerator(part, rule_ids, where)
    elif key != "when":
        raise _err(f"{where}: unknown numerator key {key!r}")


def parse_measures(doc: Any, kb: Knowledge) -> MeasureSet:
    if not isinstance(doc, dict) or not isinstance(doc.get("measures"), list):
        raise _err("expected a mapping with a measures list")
    period = doc.get("period_days")
    if not isinstance(period, int) or period <= 0:
        raise _err("period_days must be a positive whole number")
    rule_ids = {r.id for r in kb.rules}
    seen: set[str] = set()
    out = []
    for i, m in enumerate(doc["measures"]):
        if not isinstance(m, dict):
            raise _err(f"measure {i} is not a mapping")
        for key in ("id", "version", "title", "denominator", "numerator", "citations"):
            if key not in m:
                raise _err(f"measure {m.get('id', i)!r} has no {key}")
        mid = m["id"]
        if mid in seen:
            raise _err(f"duplicate measure id {mid!r}")
        seen.add(mid)
        for c in m["citations"]:
            if c not in kb.citations:
                raise _err(f"{mid}: unknown citation {c!r}")
        _check_numerator(m["numerator"], rule_ids, mid)
        excl = m.get("exclusions") or []
        if not isinstance(excl, list) or any(not isinstance(x, dict) or "when" not in x for x in excl):
            raise _err(f"{mid}: exclusions is a list of mappings with a when condition")
        out.append(MeasureSpec(mid, str(m["version"]), m["title"], m["denominator"], m["numerator"], tuple(excl),
                               tuple(m["citations"])))
    return MeasureSet(str(doc.get("version", "")), period, tuple(out))


@lru_cache(maxsize=4)
def load_measures(kb: Knowledge, path: str | None = None) -> MeasureSet:
    p = Path(path) if path else MEASURES_FILE
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise KnowledgeError(f"{p.name}: cannot read ({str(e).splitlines()[0]})") from None
    return parse_measures(doc, kb)
