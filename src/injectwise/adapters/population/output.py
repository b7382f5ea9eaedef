"""Screening output: rows to Parquet or NDJSON, measure rates with their denominators, and precision/recall
against a generator's ground truth."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from injectwise.core.errors import InputError
from injectwise.knowledge.measures import MeasureSet


class RowWriter:
    """Streams rows to `.parquet` (pyarrow, in row groups) or `.ndjson`; the format follows the suffix."""

    def __init__(self, path: str | Path, cols: list[tuple[str, str]]) -> None:
        self.path = Path(path)
        self.cols = cols
        self._pq: Any = None
        self._nd: Any = None
        if self.path.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq
            types = {"string": pa.string(), "int": pa.int64(), "double": pa.float64(), "bool": pa.bool_()}
            self.schema = pa.schema([(n, types[t]) for n, t in cols])
            self._pa = pa
            self._pq = pq.ParquetWriter(self.path, self.schema)
        elif self.path.suffix in (".ndjson", ".jsonl"):
            self._nd = self.path.open("wb")
        else:
            raise InputError(f"{self.path}: output must end in .parquet or .ndjson")

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._pq is not None:
            self._pq.write_table(self._pa.Table.from_pylist(rows, schema=self.schema))
        else:
            self._nd.write(b"".join(orjson.dumps({n: r[n] for n, _ in self.cols}) + b"\n" for r in rows))

    def close(self) -> None:
        if self._pq is not None:
            self._pq.close()
        if self._nd is not None:
            self._nd.close()


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows back from a screening output (a Parquet file or Spark's Parquet directory, or NDJSON)."""
    p = Path(path)
    if p.suffix in (".ndjson", ".jsonl"):
        return [orjson.loads(x) for x in p.read_bytes().splitlines() if x.strip()]
    import pyarrow.parquet as pq
    return pq.read_table(p).to_pylist()


@dataclass(slots=True)
class Rate:
    num: int = 0
    den: int = 0

    @property
    def pct(self) -> float | None:
        return round(100.0 * self.num / self.den, 1) if self.den else None


@dataclass(slots=True)
class Summary:
    """Patient and injection rates per measure, the injection rates split by target and by guidance."""

    ms: MeasureSet
    patients: int = 0
    injected: int = 0
    errors: int = 0
    patient_rates: dict[str, Rate] = field(default_factory=dict)
    injection_rates: dict[str, Rate] = field(default_factory=dict)
    by_target: dict[tuple[str, str], Rate] = field(default_factory=dict)
    by_guidance: dict[tuple[str, str], Rate] = field(default_factory=dict)

    def add(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self.patients += 1
            if r["error"]:
                self.errors += 1
            if r["injections_12m"]:
                self.injected += 1
            dens: set[str] = set()
            for d in orjson.loads(r["measure_detail"]):
                mid = d["measure"]
                dens.add(mid)
                for table, key in ((self.injection_rates, mid), (self.by_target, (mid, d["target"] or "unknown")),
                                   (self.by_guidance, (mid, d["guidance"]))):
                    rate = table.setdefault(key, Rate())  # type: ignore[attr-defined]  # two key types
                    rate.den += 1
                    rate.num += int(d["hit"])
            for m in self.ms.measures:
                if m.id in dens:
                    rate = self.patient_rates.setdefault(m.id, Rate())
                    rate.den += 1
                    rate.num += int(bool(r[m.column]))

    def as_json(self) -> dict[str, Any]:
        def table(t: dict[Any, Rate]) -> list[dict[str, Any]]:
            return [{"key": list(k) if isinstance(k, tuple) else k, "numerator": v.num, "denominator": v.den,
                     "percent": v.pct} for k, v in sorted(t.items())]
        measures = [{"id": m.id, "version": m.version, "title": m.title, "citations": list(m.citations)}
                    for m in self.ms.measures]
        return {"patients": self.patients, "patients_injected_12m": self.injected, "patient_errors": self.errors,
                "measures_version": self.ms.version, "measures": measures, "patient_rates": table(self.patient_rates),
                "injection_rates": table(self.injection_rates), "by_target": table(self.by_target),
                "by_guidance": table(self.by_guidance)}


@dataclass(slots=True)
class Accuracy:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load_truth(path: str | Path) -> dict[str, set[str]]:
    """Ground truth: NDJSON lines {"patient": id, "measures": [measure ids]}."""
    p = Path(path)
    try:
        lines = p.read_bytes().splitlines()
    except OSError as e:
        raise InputError(f"{p}: cannot read ground truth ({e.strerror or e})") from None
    out = {}
    for n, x in enumerate(lines, 1):
        if not x.strip():
            continue
        try:
            d = orjson.loads(x)
            out[str(d["patient"])] = set(d["measures"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise InputError(f"{p}:{n}: expected {{\"patient\": ..., \"measures\": [...]}}") from None
    return out


def accuracy(rows: list[dict[str, Any]], truth: dict[str, set[str]], ms: MeasureSet) -> dict[str, Accuracy]:
    """Per measure and overall ('any': the patient is an overuse patient at all), over the truth's patients."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        want = truth.get(r["patient"])
        if want is None:
            continue
        got = {m.id for m in ms.measures if r[m.column]}
        for m in ms.measures:
            c = counts[m.id]
            g, w = m.id in got, m.id in want
            c[0] += g and w
            c[1] += g and not w
            c[2] += w and not g
        c = counts["any"]
        c[0] += bool(got) and bool(want)
        c[1] += bool(got) and not want
        c[2] += bool(want) and not got
    return {k: Accuracy(*v) for k, v in counts.items()}
