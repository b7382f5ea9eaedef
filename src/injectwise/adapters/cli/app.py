"""`injectwise` command line: assess a planned injection or review a completed one.

Every input problem is one line on stderr and exit code 2; never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from injectwise.core.dates import parse_as_of, today_utc
from injectwise.core.errors import InjectwiseError, InputError, KnowledgeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Decision support for musculoskeletal corticosteroid injections (hip first).")


class Fmt(StrEnum):
    text = "text"
    json = "json"


class Guidance(StrEnum):
    landmark = "landmark"
    ultrasound = "ultrasound"
    fluoroscopy = "fluoroscopy"
    ct = "ct"


class Side(StrEnum):
    right = "right"
    left = "left"
    bilateral = "bilateral"


FilesArg = Annotated[list[Path] | None, typer.Argument(help="FHIR R4 Bundle JSON file(s)", show_default=False)]
OnOpt = Annotated[str | None, typer.Option("--on", help="Evaluate as of this date (YYYY-MM-DD); default today")]
FmtOpt = Annotated[Fmt, typer.Option("--format", help="text (clinician summary) or json")]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="YAML file overriding policy thresholds")]
NoteOpt = Annotated[Path | None, typer.Option("--note", help="Clinical note (text, HTML, RTF): alone or added to the bundle")]


def _kb(policy: Path | None):
    from injectwise.knowledge import load_knowledge
    return load_knowledge(policy)


def _as_of(on: str | None):
    return parse_as_of(on) if on else today_utc()


def _run_files(files: list[Path] | None, note: Path | None, policy: Path | None, on: str | None, fmt: Fmt,
               evaluate: Callable[[Any, Any, Any], Any], check: Callable[[Any], None] | None = None) -> None:
    """Shared by assess and review: validate arguments, load knowledge once, one result per input (`-`:
    standard input); a bad file among several does not lose the others (adapters/cli/batch.py). Each
    bundle's own notes are read, and --note adds a note to every bundle or stands alone."""
    from injectwise.adapters.cli.batch import run_batch
    from injectwise.adapters.cli.inputs import note_only_record, with_notes
    from injectwise.adapters.cli.render import render

    if not files and note is None:
        raise InputError("no input: give one or more FHIR Bundle files, or --note FILE")
    kb = _kb(policy)
    as_of = _as_of(on)
    if check is not None:
        check(kb)
    if not files:
        assert note is not None
        _emit([evaluate(note_only_record(note, kb, as_of), kb, as_of)], fmt)
        return
    rc = run_batch(files, lambda rec: evaluate(with_notes(rec, note, kb, as_of), kb, as_of), fmt is Fmt.json, render)
    if rc:
        raise typer.Exit(rc)


def _emit(results: list, fmt: Fmt) -> None:
    if fmt is Fmt.json:
        out = sys.stdout.buffer
        for r in results:
            out.write(orjson.dumps(r.as_json()) + b"\n")
        out.flush()
        return
    from injectwise.adapters.cli.render import render
    for r in results:
        render(r)


@app.command()
def assess(
    files: FilesArg = None,
    on: OnOpt = None,
    fmt: FmtOpt = Fmt.text,
    target: Annotated[str | None, typer.Option(help="Planned target, e.g. hip-intra-articular")] = None,
    side: Annotated[Side | None, typer.Option(help="Side of the planned injection")] = None,
    guidance: Annotated[Guidance | None, typer.Option(help="Planned guidance")] = None,
    steroid: Annotated[str | None, typer.Option(help="Planned corticosteroid, e.g. triamcinolone")] = None,
    dose: Annotated[float | None, typer.Option(help="Planned corticosteroid dose in mg", min=0)] = None,
    anesthetic: Annotated[str | None, typer.Option(help="Planned local anaesthetic (or none)")] = None,
    anesthetic_dose: Annotated[float | None, typer.Option(help="Anaesthetic dose in mg", min=0)] = None,
    policy: PolicyOpt = None,
    note: NoteOpt = None,
) -> None:
    """Before: should the planned injection be given? Verdict and findings."""
    from injectwise.engine.evaluate import PlanOverrides, check_target_name
    from injectwise.engine.evaluate import assess as run

    ov = PlanOverrides(target, side.value if side else None, guidance.value if guidance else None, steroid, dose,
                       anesthetic, anesthetic_dose)

    def check(kb: Any) -> None:
        if ov.target is not None:
            check_target_name(kb, ov.target)

    _run_files(files, note, policy, on, fmt, lambda rec, kb, as_of: run(rec, kb, as_of, ov), check)


@app.command()
def review(
    files: FilesArg = None,
    on: OnOpt = None,
    fmt: FmtOpt = Fmt.text,
    injection: Annotated[str | None, typer.Option(help="Review this injection (Procedure id); default the latest")] = None,
    policy: PolicyOpt = None,
    note: NoteOpt = None,
) -> None:
    """After: did the latest injection work, why not, what harm, what next."""
    from injectwise.engine.evaluate import review as run

    _run_files(files, note, policy, on, fmt, lambda rec, kb, as_of: run(rec, kb, as_of, injection))


@app.command()
def demo(fmt: FmtOpt = Fmt.text,
         web: Annotated[bool, typer.Option("--web", help="Serve the clinic web app with demo patients and outcomes")]
         = False,
         port: Annotated[int, typer.Option(help="Port for --web", min=1, max=65535)] = 8000,
         database: Annotated[Path, typer.Option(help="SQLite file for --web (recreated)")] = Path("injectwise-demo.db"),
         ) -> None:
    """Run an assessment and a review on the built-in demo patients (no setup needed); --web: the clinic."""
    if web:
        from injectwise.adapters.cli.clinic import demo_web
        demo_web("127.0.0.1", port, database)
        return
    from injectwise.demo import demo_cases
    from injectwise.engine.evaluate import assess as run_assess
    from injectwise.engine.evaluate import review as run_review

    kb = _kb(None)
    results = []
    for mode, record, as_of in demo_cases():
        results.append(run_assess(record, kb, as_of) if mode == "assess" else run_review(record, kb, as_of))
    _emit(results, fmt)


@app.command()
def knowledge(fmt: FmtOpt = Fmt.text) -> None:
    """Show the knowledge base: version, rules with their versions and citations, policy values."""
    kb = _kb(None)
    if fmt is Fmt.json:
        from injectwise.knowledge.describe import describe_knowledge
        sys.stdout.buffer.write(orjson.dumps(describe_knowledge(kb), option=orjson.OPT_INDENT_2) + b"\n")
        return
    from rich.console import Console
    from rich.table import Table
    c = Console()
    c.print(f"[bold]{kb.name}[/] version {kb.version} - {len(kb.rules)} rules")
    t = Table("rule", "version", "mode", "severity", "citations")
    for r in kb.rules:
        t.add_row(r.id, r.version, r.mode, r.severity, ", ".join(r.citations))
    c.print(t)


def _choices(name: str, literal: Any) -> type[StrEnum]:
    """A Typer choice type from one of the service settings' Literal types, so both share one list."""
    from typing import get_args
    return StrEnum(name, {v: v for v in get_args(literal)})  # type: ignore[return-value]


from injectwise.adapters.service.settings import CardScope, Clock, MissingPrefetch, ServiceSettings  # noqa: E402

ClockOpt = _choices("ClockOpt", Clock)
MissingOpt = _choices("MissingOpt", MissingPrefetch)
CardsOpt = _choices("CardsOpt", CardScope)
SERVE_DEFAULTS = ServiceSettings()
DEFAULT_CLOCK = ClockOpt(SERVE_DEFAULTS.clock)
DEFAULT_MISSING = MissingOpt(SERVE_DEFAULTS.missing_prefetch)
DEFAULT_CARDS = CardsOpt(SERVE_DEFAULTS.cards)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    public_base_url: Annotated[str | None, typer.Option(
        help="URL clients use to reach this service; JWT aud is checked against it (default http://HOST:PORT)")] = None,
    trusted_issuers: Annotated[Path | None, typer.Option(help="JSON file of trusted JWT issuers and their JWKS")] = None,
    api_keys: Annotated[Path | None, typer.Option(help="File of '<name> <sha256>' lines for REST API keys")] = None,
    insecure_no_auth: Annotated[bool, typer.Option(help="Accept unauthenticated calls (local demos only)")] = False,
    database_url: Annotated[str, typer.Option(envvar="INJECTWISE_DATABASE_URL",
                                              help="SQLAlchemy URL for feedback (SQLite file or postgresql://)")]
        = SERVE_DEFAULTS.database_url,
    policy: PolicyOpt = None,
    clock: Annotated[ClockOpt, typer.Option(
        help="system: evaluate as of today; record: as of the newest event in each request (replaying old records)")]
        = DEFAULT_CLOCK,
    missing_prefetch: Annotated[MissingOpt, typer.Option(
        help="refuse: 412 when data is missing and no fhirServer; explain: evaluate and say what was not checked")]
        = DEFAULT_MISSING,
    cards: Annotated[CardsOpt, typer.Option(help="actionable: no education/monitor cards at order time; all: every finding")]
        = DEFAULT_CARDS,
    fhir_timeout: Annotated[float, typer.Option(help="Seconds allowed for fetching missing data from the FHIR server",
                                                min=0.1)] = SERVE_DEFAULTS.fhir_timeout_s,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted", min=1024)] = SERVE_DEFAULTS.max_body_bytes,
    cors_origin: Annotated[list[str] | None, typer.Option(
        help="Allow browser calls from this origin (repeatable), e.g. https://sandbox.cds-hooks.org")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    workers: Annotated[int, typer.Option(help="Worker processes (they share the database: card log, feedback, "
                                              "JWT replay cache)", min=1, max=64)] = 1,
    time_budget: Annotated[float, typer.Option(help="Seconds a call may take before it answers 503 + Retry-After",
                                               min=0.001)] = SERVE_DEFAULTS.time_budget_s,
) -> None:
    """Run the CDS Hooks 2.0 service and REST API (same engine and knowledge as the CLI)."""
    import logging

    import uvicorn

    from injectwise.adapters.service.app import create_app, tune_gc
    from injectwise.adapters.service.settings import ServiceSettings

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise InputError(f"unknown log level {log_level!r}")
    from injectwise.adapters.service.jsonlog import LOG_CONFIG, configure

    configure(level)
    settings = ServiceSettings(
        public_base_url=public_base_url or f"http://{host}:{port}", trusted_issuers_file=trusted_issuers,
        api_keys_file=api_keys, insecure_no_auth=insecure_no_auth, database_url=database_url, policy_file=policy,
        fhir_timeout_s=fhir_timeout, max_body_bytes=max_body_bytes, clock=clock.value,
        missing_prefetch=missing_prefetch.value, cards=cards.value, cors_origins=tuple(cors_origin or ()),
        time_budget_s=time_budget)
    log_config = {**LOG_CONFIG, "root": {"handlers": ["default"], "level": logging.getLevelName(level)}}
    # Built here in every case: a bad configuration or database is one clear line before anything listens.
    # With several workers this also migrates the database once, before any worker starts.
    application = create_app(settings)
    if insecure_no_auth:
        print("injectwise: WARNING: --insecure-no-auth: authentication is OFF; never expose this service",
              file=sys.stderr)
    if workers > 1:
        application.state.store.close()
        os.environ["INJECTWISE_SERVE_SETTINGS"] = settings.to_env()
        uvicorn.run("injectwise.adapters.service.app:app_from_environment", factory=True, workers=workers, host=host,
                    port=port, access_log=False, log_level=log_level.lower(), server_header=False, log_config=log_config)
        return
    tune_gc()
    uvicorn.run(application, host=host, port=port, access_log=False, log_level=log_level.lower(),
                server_header=False, log_config=log_config)


@app.command()
def apikey(name: Annotated[str, typer.Argument(help="Who the key is for, e.g. registry-etl")]) -> None:
    """Make a REST API key: prints the key once, and the line to add to the --api-keys file."""
    from injectwise.adapters.service.trust import hash_key, new_api_key

    if not name or any(c.isspace() for c in name):
        raise InputError("the key name must be one word")
    key = new_api_key()
    print(f"key (give to the caller, shown once): {key}")
    print(f"line for the --api-keys file:        {name} {hash_key(key)}")


from injectwise.adapters.cli.clinic import user_app  # noqa: E402

app.add_typer(user_app, name="user")


def _register_population() -> None:
    from injectwise.adapters.population.cli import register
    register(app)


_register_population()


def main() -> None:
    """Entry point: run Typer without its own error handling so every error is one clean line."""
    try:
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except (InputError, KnowledgeError, InjectwiseError) as e:
        print(f"injectwise: error: {e}", file=sys.stderr)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:
        code = getattr(e, "exit_code", None)
        if type(e).__name__ == "Exit":
            sys.exit(code or 0)
        if type(e).__name__ == "Abort":
            sys.exit(130)
        if hasattr(e, "format_message"):  # a usage error from the command-line parser
            print(f"injectwise: error: {e.format_message()}", file=sys.stderr)
            sys.exit(2)
        if os.environ.get("INJECTWISE_DEBUG"):
            raise
        print(f"injectwise: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)

if __name__ == "__main__":
    main()
