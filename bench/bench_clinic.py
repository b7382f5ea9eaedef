"""Clinic page costs: building one patient's chart (read + review + exposure), the SVG pain plot, the
analytics summary over a demo-sized registry, and the PDF report; beside the baseline of parsing the
same bundle with orjson, measured in the same run."""

from __future__ import annotations

import json
import tempfile
from datetime import date

import orjson
from timing import best_per_call  # bench/timing.py: run as `python bench/bench_clinic.py`

from injectwise.adapters.storage.registry import Registry
from injectwise.adapters.web.analytics import summary
from injectwise.adapters.web.chart import build_chart
from injectwise.adapters.web.demo import load_demo
from injectwise.adapters.web.svg import pain_plot
from injectwise.knowledge import load_knowledge


def main() -> None:
    kb = load_knowledge()
    today = date(2026, 11, 1)
    with tempfile.TemporaryDirectory() as tmp:
        reg = Registry(f"sqlite:///{tmp}/bench.db")
        n = load_demo(reg, today)
        rows = reg.all_patients_for_analytics("bench")
        row = max(rows, key=lambda r: len(r["outcomes"]))
        raw = row["bundle"].encode()
        base = best_per_call(lambda: orjson.loads(raw), 200, 5)
        chart_s = best_per_call(lambda: build_chart(row, kb, today), 50, 5)
        chart = build_chart(row, kb, today)
        svg_s = best_per_call(lambda: pain_plot(chart.pain, [(t.date, t.target) for t in chart.timeline if t.date],
                                                chart.as_of), 200, 5)
        summary_s = best_per_call(lambda: summary(rows, kb, today), 5, 3)
        from fastapi.templating import Jinja2Templates

        from injectwise.adapters.web.app import HERE
        from injectwise.adapters.web.reports import report_pdf
        templates = Jinja2Templates(directory=str(HERE / "templates"))
        pdf_s = best_per_call(lambda: report_pdf(templates, row, kb, today, "bench"), 3, 2)
        reg.engine.dispose()
    print(json.dumps({
        "patients": n, "bundle_bytes": len(raw),
        "baseline_orjson_parse_ms": round(base * 1e3, 3),
        "patient_chart_ms": round(chart_s * 1e3, 2), "pain_svg_ms": round(svg_s * 1e3, 3),
        "analytics_summary_ms": round(summary_s * 1e3, 1), "report_pdf_ms": round(pdf_s * 1e3, 1)}, indent=2))


if __name__ == "__main__":
    main()
