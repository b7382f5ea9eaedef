"""Clinician-readable terminal output: verdict first, then findings by severity with evidence."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from injectwise.engine.result import Result

STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
OUTCOME_STYLE = {"do-not-inject": "bold white on red", "defer": "bold black on yellow",
                 "proceed-with-caution": "bold black on bright_yellow", "proceed": "bold white on green",
                 "non-responder": "bold white on red", "partial": "bold black on yellow", "responder": "bold white on green",
                 "too-early": "bold black on cyan", "unknown": "bold black on white"}


def render(r: Result, console: Console | None = None) -> None:
    c = console or Console()
    s = r.subject
    head = Text()
    label = "VERDICT" if r.mode == "assess" else "RESPONSE"
    head.append(f" {label}: {r.outcome.upper()} ", style=OUTCOME_STYLE.get(r.outcome, "bold"))
    p = r.patient
    head.append(f"   patient {p.get('id')} ({p.get('age', '?')} y, {p.get('sex', '?')})   as of {r.as_of}")
    what = f"{s.get('side') or ''} {s.get('target_label') or s.get('target') or 'unknown target'}".strip()
    steroid = s.get("steroid") or {}
    dose = steroid.get("dose_mg") if steroid else None
    drug = (f"{steroid.get('drug')} {dose:g} mg" if dose is not None else f"{steroid.get('drug')} (dose not recorded)") \
        if steroid else "no corticosteroid"
    sub = f"{'Planned' if r.mode == 'assess' else 'Injection'}: {what}, {s.get('guidance')}, {drug}"
    if r.mode == "review":
        sub += f" on {s.get('date')} ({s.get('days_since')} days ago)" if s.get("date") else ", date not stated"
    c.print(Panel(Text.assemble(head, "\n", sub), title=f"injectwise {r.mode}", subtitle=f"knowledge {r.knowledge_version}"))
    if not r.findings:
        c.print("No findings.")
    for f in r.findings:
        t = Text()
        t.append(f"[{f.severity.upper()}] ", style=STYLE[f.severity])
        t.append(f.title, style="bold")
        if f.likelihood:
            t.append(f"  (likelihood {f.likelihood})", style="italic")
        t.append(f"  {f.id}", style="dim")
        c.print(t)
        c.print(Text(f"    {f.rationale}"))
        if f.advice:
            c.print(Text(f"    What to do: {f.advice}", style="green"))
        c.print(Text("    Evidence: " + "; ".join(x["label"] for x in f.citations), style="dim"))
    if r.unknowns:
        c.print(Text("Unknown: " + "; ".join(r.unknowns), style="magenta"))
    c.print()
