"""The terminal summary of a screening (Rich tables on stdout)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from injectwise.adapters.population.output import Rate


def _cell(r: Rate | None) -> str:
    if r is None or not r.den:
        return "-"
    return f"{r.num}/{r.den} ({r.pct:g}%)"


def print_summary(res: object) -> None:
    from injectwise.adapters.population.run import ScreenResult
    assert isinstance(res, ScreenResult)
    s = res.summary
    con = Console()
    rate = s.patients / res.seconds if res.seconds else 0.0
    con.print(f"[bold]Screened {s.patients} patients[/] as of {res.as_of} with the {res.engine} engine "
              f"({res.workers} workers) in {res.seconds:.1f} s ({rate:.0f} patients/s); "
              f"{s.injected} injected in the last 12 months; {s.errors} with a record problem (see the error column)")
    t = Table(title=f"Overuse measures (measures.yaml {res.ms.version})")
    t.add_column("measure")
    t.add_column("patients flagged / in denominator", justify="right")
    t.add_column("injections / in denominator", justify="right")
    for m in res.ms.measures:
        t.add_row(m.title, _cell(s.patient_rates.get(m.id)), _cell(s.injection_rates.get(m.id)))
    con.print(t)
    for name, table in (("target", s.by_target), ("guidance", s.by_guidance)):
        keys = sorted({k for _, k in table})
        if not keys:
            continue
        bt = Table(title=f"Injection rates by {name}")
        bt.add_column("measure")
        for k in keys:
            bt.add_column(k, justify="right")
        for m in res.ms.measures:
            bt.add_row(m.id, *(_cell(table.get((m.id, k))) for k in keys))
        con.print(bt)
    if res.accuracy:
        at = Table(title="Against the ground truth")
        for c in ("measure", "TP", "FP", "FN", "precision", "recall"):
            at.add_column(c, justify="right" if c != "measure" else "left")
        for k, a in sorted(res.accuracy.items(), key=lambda kv: (kv[0] != "any", kv[0])):
            at.add_row(k, str(a.tp), str(a.fp), str(a.fn), f"{a.precision:.3f}", f"{a.recall:.3f}")
        con.print(at)
        a = res.accuracy.get("any")
        if a:
            con.print(f"precision {a.precision:.3f} recall {a.recall:.3f} (overuse patients, any measure)")
    if res.stats:
        st = res.stats
        con.print(f"partition: {st.lines} resources from {st.files} files into {st.shards} shards "
                  f"(largest {st.max_shard_bytes / 1e6:.1f} MB); {st.unlinked} not linked to a patient; "
                  f"{st.unread} of types the engine does not read and {st.skipped} Observations it would "
                  "skip, left unparsed")
    if res.out:
        con.print(f"rows written to {res.out}")
