"""`injectwise screen` and `injectwise synth-population`, registered on the main CLI by `register(app)`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from injectwise.core.dates import parse_as_of, today_utc
from injectwise.core.errors import InputError


class EngineName(StrEnum):
    local = "local"
    spark = "spark"


def screen(
    directory: Annotated[Path, typer.Argument(help="Folder of a FHIR Bulk Data export (.ndjson / .ndjson.gz)")],
    on: Annotated[str | None, typer.Option("--on", help="Screening date (YYYY-MM-DD); default today")] = None,
    engine: Annotated[EngineName, typer.Option(help="local (embedded, all cores) or spark")] = EngineName.local,
    workers: Annotated[int | None, typer.Option(help="Processes for the local engine; default all cores", min=1)] = None,
    out: Annotated[Path | None, typer.Option(help="Rows to .parquet or .ndjson (Spark: a Parquet folder)")] = None,
    truth: Annotated[Path | None, typer.Option(help="Ground truth (default DIR/ground-truth.jsonl if present)")] = None,
    summary_json: Annotated[Path | None, typer.Option("--summary-json", help="Also write the rates as JSON")] = None,
    shard_mb: Annotated[float, typer.Option(help="Local engine: target shard size in MB (bounds memory)", min=0.001)] = 32,
    policy: Annotated[Path | None, typer.Option(help="YAML file overriding policy thresholds")] = None,
) -> None:
    """Screen a population for steroid-injection overuse: one row per patient, measure rates, a summary."""
    from injectwise.adapters.population.run import screen_export
    from injectwise.adapters.population.summary import print_summary

    as_of = parse_as_of(on) if on else today_utc()
    if out is not None and engine is EngineName.local and out.suffix not in (".parquet", ".ndjson", ".jsonl"):
        raise InputError(f"{out}: output must end in .parquet or .ndjson")
    if truth is None and (directory / "ground-truth.jsonl").is_file():
        truth = directory / "ground-truth.jsonl"
    result = screen_export(directory, as_of, engine.value, workers, out, truth,
                           str(policy) if policy else None, int(shard_mb * 1024 * 1024), show_progress=True)
    print_summary(result)
    if summary_json is not None:
        import orjson
        summary_json.write_bytes(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2))


def synth_population(
    patients: Annotated[int, typer.Option(help="How many patients", min=1)] = 100,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same export)")] = 1,
    out: Annotated[Path, typer.Option(help="Output folder")] = Path("population"),
    on: Annotated[str, typer.Option("--on", help="Histories end before this date")] = "2026-06-30",
    synthea: Annotated[Path | None, typer.Option(help="Folder of Synthea bundles to clone (default ../shared/...)")] = None,
    overuse_share: Annotated[float, typer.Option(help="Share of patients given one overuse pattern")] = 0.3,
    gz: Annotated[bool, typer.Option("--gzip", help="Write .ndjson.gz")] = False,
) -> None:
    """Write a synthetic Bulk NDJSON population with injection histories and a ground-truth file."""
    from rich.console import Console

    from injectwise.adapters.population.synth import generate

    src: Any = synthea
    if src is None:
        default = Path("../shared/data/fhir/synthea")
        src = default if default.is_dir() else None
    info = generate(out, patients, seed, parse_as_of(on), src, overuse_share, gz)
    Console(stderr=True).print(f"wrote {info['patients']} patients ({info['overuse']} with an overuse pattern) "
                               f"to {out}; ground truth in {out / 'ground-truth.jsonl'}; screen with --on {on}"
                               + ("" if src else " (built-in template: no Synthea folder found)"))


def register(app: typer.Typer) -> None:
    app.command("screen")(screen)
    app.command("synth-population")(synth_population)
