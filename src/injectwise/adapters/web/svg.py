"""Hand-built SVG plots (no plotting library, no JavaScript): the pain timeline with injections
marked, response rates with their confidence intervals, and Kaplan-Meier curves. Each has a title
and a text description for screen readers."""

from __future__ import annotations

import hashlib
from datetime import date
from html import escape
from typing import Any

PALETTE = ("#1b5e9a", "#b3541e", "#2e7d32", "#6a1b9a", "#00695c", "#8d6e00")


def _frame(w: int, h: int, title: str, desc: str, body: list[str]) -> str:
    # ids unique per plot (several share a page) so aria-labelledby names the right one
    k = hashlib.sha1(f"{title}|{desc}".encode()).hexdigest()[:8]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="100%" role="img" '
            f'aria-labelledby="t{k} d{k}" style="max-width:{w}px;font:12px sans-serif">'
            f'<title id="t{k}">{escape(title)}</title><desc id="d{k}">{escape(desc)}</desc>{"".join(body)}</svg>')


def pain_plot(pain: list[tuple[date, float]], injections: list[tuple[date, str]], as_of: date) -> str:
    """NRS pain (0-10) over time; a dashed vertical line and label at each injection."""
    w, h, left, right, top, bottom = 720, 260, 40, 20, 20, 40
    days = [d for d, _ in pain] + [d for d, _ in injections] + [as_of]
    d0, d1 = min(days), max(days)
    span = max((d1 - d0).days, 1)

    def x(d: date) -> float:
        return left + (w - left - right) * (d - d0).days / span

    def y(v: float) -> float:
        return top + (h - top - bottom) * (10 - v) / 10

    body = [f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="#fff" '
            'stroke="#999"/>']
    for v in (0, 5, 10):
        body.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>'
                    f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
    body.append(f'<text x="{left}" y="{h - 8}">{d0.isoformat()}</text>'
                f'<text x="{w - right}" y="{h - 8}" text-anchor="end">{d1.isoformat()}</text>'
                f'<text x="12" y="{top + 8}" transform="rotate(-90 12 {top + 8})" text-anchor="end">pain NRS</text>')
    for d, label in injections:
        body.append(f'<line class="injection" x1="{x(d):.1f}" x2="{x(d):.1f}" y1="{top}" y2="{h - bottom}" '
                    f'stroke="#b3541e" stroke-dasharray="4 3"/><text x="{x(d) + 3:.1f}" y="{top + 12}" '
                    f'fill="#8a3a10">{escape(label)}</text>')
    if pain:
        pts = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in pain)
        body.append(f'<polyline points="{pts}" fill="none" stroke="#1b5e9a" stroke-width="2"/>')
        body += [f'<circle class="pain" cx="{x(d):.1f}" cy="{y(v):.1f}" r="3.5" fill="#1b5e9a">'
                 f'<title>{d.isoformat()}: {v:g}</title></circle>' for d, v in pain]
    desc = (f"{len(pain)} pain scores and {len(injections)} injections from {d0} to {d1}. "
            + "; ".join(f"{d}: {v:g}" for d, v in pain[-12:]))
    return _frame(w, h, "Pain score (0-10) over time, injections marked", desc, body)


def rate_bars(rows: list[dict[str, Any]], title: str) -> str:
    """Horizontal bars for response rate with 95% CI whiskers; groups with nothing judged say so."""
    w, row_h, left = 680, 28, 250
    h = 30 + row_h * max(len(rows), 1)
    scale = w - left - 60
    body = [f'<text x="{left}" y="14">0%</text><text x="{left + scale}" y="14" text-anchor="end">100%</text>']
    for k, r in enumerate(rows):
        yy = 24 + k * row_h
        name = str(r["group"])
        name = name if len(name) <= 30 else name[:29] + "…"
        body.append(f'<text x="{left - 6}" y="{yy + 14}" text-anchor="end">{escape(name)} (n={r["judged"]})</text>')
        if r["response_rate"] is None:
            body.append(f'<text x="{left}" y="{yy + 14}" fill="#555">not judged yet</text>')
            continue
        body.append(f'<rect x="{left}" y="{yy + 3}" width="{scale * r["response_rate"]:.1f}" height="16" '
                    f'fill="{PALETTE[k % len(PALETTE)]}"/>')
        lo, hi = r["response_rate_ci95"]
        body.append(f'<line x1="{left + scale * lo:.1f}" x2="{left + scale * hi:.1f}" y1="{yy + 11}" y2="{yy + 11}" '
                    f'stroke="#000" stroke-width="1.5"/><text x="{left + scale + 6}" y="{yy + 14}">'
                    f'{100 * r["response_rate"]:.0f}%</text>')
    desc = "; ".join(f"{r['group']}: " + ("not judged" if r["response_rate"] is None else
                     f"{100 * r['response_rate']:.0f}% of {r['judged']} (95% CI {100 * r['response_rate_ci95'][0]:.0f}-"
                     f"{100 * r['response_rate_ci95'][1]:.0f}%)") for r in rows)
    return _frame(w, h, title, desc or "no injections yet", body)


def km_plot(curves: dict[str, Any]) -> str:
    """Step curves of the share still relieved by day, one per guidance."""
    w, h, left, right, top, bottom = 640, 260, 44, 130, 16, 36
    tmax = max([s["day"] for c in curves.values() for s in c["steps"]] + [30])

    def x(t: float) -> float:
        return left + (w - left - right) * t / tmax

    def y(s: float) -> float:
        return top + (h - top - bottom) * (1 - s)

    body = [f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="#fff" '
            f'stroke="#999"/><text x="{left - 6}" y="{y(1) + 4}" text-anchor="end">100%</text>'
            f'<text x="{left - 6}" y="{y(0) + 4}" text-anchor="end">0%</text>'
            f'<text x="{left}" y="{h - 10}">day 0</text><text x="{w - right}" y="{h - 10}" text-anchor="end">'
            f'day {tmax:g}</text>']
    for k, (g, c) in enumerate(sorted(curves.items())):
        colour = PALETTE[k % len(PALETTE)]
        pts, s = [f"{x(0):.1f},{y(1):.1f}"], 1.0
        for st in c["steps"]:
            pts += [f"{x(st['day']):.1f},{y(s):.1f}", f"{x(st['day']):.1f},{y(st['survival']):.1f}"]
            s = st["survival"]
        pts.append(f"{x(tmax):.1f},{y(s):.1f}")
        body.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="2"/>'
                    f'<text x="{w - right + 8}" y="{top + 14 + 16 * k}" fill="{colour}">{escape(g)} (n={c["n"]})</text>')
    desc = "; ".join(f"{g}: {c['n']} injections, {c['events']} recurrences, median "
                     f"{'not reached' if c['median_days'] is None else str(c['median_days']) + ' days'}"
                     for g, c in sorted(curves.items()))
    return _frame(w, h, "Share of patients still relieved, by day after injection (Kaplan-Meier)",
                  desc or "no relief durations recorded", body)
