"""Body site and laterality from an ICD-10-CM code's own structure, driven by the per-family table in
data/icd10_sites.yaml: a code's characters mean different things in different chapters (M70.61 is a
right hip, not a shoulder), so the table, not code special cases, says where to read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from injectwise.core.errors import KnowledgeError


@dataclass(slots=True, frozen=True)
class Family:
    """One table row; None means "not said here" (a shorter prefix's value stands), 0 clears a position."""

    region: str | None = None
    site_at: int | None = None
    sites: tuple[tuple[str, str], ...] | None = None
    side_at: int | None = None
    sides: tuple[tuple[str, str], ...] | None = None
    side: str | None = None


@dataclass(slots=True, eq=False)
class Icd10Sites:
    families: dict[str, Family] = field(default_factory=dict)

    def locate(self, code: str) -> tuple[str | None, str | None]:
        """(region, side) the code's structure states; None where it states nothing."""
        return _locate(self, code.replace(".", "").upper().strip())


@lru_cache(maxsize=8192)
def _locate(table: Icd10Sites, code: str) -> tuple[str | None, str | None]:
    spec: dict[str, Any] = {}
    for n in range(1, len(code) + 1):  # shorter prefixes first; longer ones refine them
        fam = table.families.get(code[:n])
        if fam is None:
            continue
        for k in Family.__slots__:
            v = getattr(fam, k)
            if v is not None:
                spec[k] = v
    region = spec.get("region")
    at = spec.get("site_at", 0)
    if at and len(code) >= at:
        region = dict(spec.get("sites", ())).get(code[at - 1], region)
    side = spec.get("side")
    at = spec.get("side_at", 0)
    if at and len(code) >= at:
        side = dict(spec.get("sides", ())).get(code[at - 1], side)
    return region, side


def load_icd10_sites(doc: dict[str, Any], regions: set[str]) -> Icd10Sites:
    where = "icd10_sites.yaml"
    default_sites = {str(k): str(v) for k, v in (doc.get("site_digits") or {}).items()}
    default_sides = {str(k): str(v) for k, v in (doc.get("sides") or {}).items()}
    fams: dict[str, Family] = {}
    for prefix, f in (doc.get("families") or {}).items():
        if not isinstance(f, dict):
            raise KnowledgeError(f"{where}: {prefix}: a family is a mapping")
        unknown = set(f) - {"region", "site_at", "sites", "side_at", "sides", "side"}
        if unknown:
            raise KnowledgeError(f"{where}: {prefix}: unknown keys {sorted(unknown)}")
        sites = {str(k): str(v) for k, v in (f.get("sites") or default_sites).items()}
        sides = {str(k): str(v) for k, v in (f.get("sides") or default_sides).items()}
        for r in [f.get("region"), *sites.values()]:
            if r is not None and r not in regions:
                raise KnowledgeError(f"{where}: {prefix}: unknown region {r!r}")
        for s in [f.get("side"), *sides.values()]:
            if s is not None and s not in ("right", "left", "bilateral"):
                raise KnowledgeError(f"{where}: {prefix}: unknown side {s!r}")
        fam = Family(region=f.get("region"),
                     site_at=int(f["site_at"]) if "site_at" in f else None,
                     sites=tuple(sites.items()) if "site_at" in f else None,
                     side_at=int(f["side_at"]) if "side_at" in f else None,
                     sides=tuple(sides.items()) if "side_at" in f else None,
                     side=f.get("side"))
        fams[str(prefix).replace(".", "").upper()] = fam
    return Icd10Sites(fams)
