"""The printable clinician report (PDF via WeasyPrint) and the plain-language patient explanation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi.templating import Jinja2Templates

from injectwise.adapters.web.chart import build_chart
from injectwise.adapters.web.svg import pain_plot
from injectwise.knowledge.model import Knowledge


def report_pdf(templates: Jinja2Templates, row: dict[str, Any], kb: Knowledge, today: date, user: str) -> bytes:
    from weasyprint import HTML  # imported late: it loads Pango, which the API paths never need

    chart = build_chart(row, kb, today)
    svg = pain_plot(chart.pain, [(t.date, f"{t.side[:1].upper()} {t.target}") for t in chart.timeline if t.date],
                    chart.as_of)
    html = templates.get_template("report.html").render(
        p=row, chart=chart, pain_svg=svg, kb_version=kb.version, user=user, limit_mg=f"{kb.p('max_cumulative_mg_per_year'):g}",
        printed=datetime.now().strftime("%Y-%m-%d %H:%M"))
    return bytes(HTML(string=html).write_pdf())


def explanation_context(row: dict[str, Any], kb: Knowledge, today: date) -> dict[str, Any]:
    chart = build_chart(row, kb, today)
    last = chart.timeline[-1] if chart.timeline else None
    site = None
    if last is not None:
        side = f"{last.side} " if last.side in ("left", "right") else ""
        site = f"{side}{last.target}"
    nxt = max((e.next_allowed for e in chart.exposure if e.next_allowed), default=None)
    return {"p": row, "site": site, "next_allowed": nxt, "gap_weeks": round(kb.p("min_interval_days") / 7)}
