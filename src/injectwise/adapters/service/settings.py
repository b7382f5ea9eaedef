"""Service configuration: one immutable object built by the CLI (or tests) and handed to the app."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Literal

Clock = Literal["system", "record"]
MissingPrefetch = Literal["refuse", "explain"]
CardScope = Literal["actionable", "all"]


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    public_base_url: str = "http://127.0.0.1:8000"
    trusted_issuers_file: Path | None = None
    api_keys_file: Path | None = None
    insecure_no_auth: bool = False
    database_url: str = "sqlite:///injectwise-feedback.db"
    policy_file: Path | None = None
    # How long a callback to the EHR's FHIR server may take, in total, before we give up on it.
    fhir_timeout_s: float = 2.0
    max_body_bytes: int = 5 * 1024 * 1024
    # JWT: allowed clock skew, and the longest exp - iat we accept (short-lived tokens only).
    jwt_leeway_s: int = 60
    jwt_max_lifetime_s: int = 3600
    jwks_cache_s: int = 3600
    # "system": evaluate as of today (UTC). "record": as of the newest event in the request's own data,
    # for replaying historic or synthetic records (sandbox, vignettes); never for live use.
    clock: Clock = "system"
    # What to do when a prefetch key is missing and there is no FHIR server to ask: "refuse" answers
    # 412 (the spec's default); "explain" evaluates what arrived and says which checks were not made.
    missing_prefetch: MissingPrefetch = "refuse"
    # "actionable": no card for education.* and monitor.* (they stay in the REST answer); "all": every finding.
    cards: CardScope = "actionable"
    # Browser-based CDS clients (e.g. the CDS Hooks sandbox) call from another origin and need CORS.
    cors_origins: tuple[str, ...] = ()
    # Longest a hook or REST call may take (gathering, engine, card log) before it answers 503 + Retry-After.
    time_budget_s: float = 10.0
    # Worker threads for evaluation, so a slow request never blocks the event loop.
    eval_threads: int = 4
    # Hook calls up to this size (the vignettes are 7-47 KiB, about 1 ms of CPU) are evaluated on the event
    # loop: a thread hop and GIL hand-offs cost more than they free. Larger ones go to the worker threads.
    inline_eval_max_bytes: int = 256 * 1024

    @property
    def base(self) -> str:
        return self.public_base_url.rstrip("/")

    def to_env(self) -> str:
        """The settings as JSON for worker processes (uvicorn --workers starts them from an import string)."""
        import orjson
        return orjson.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}).decode()

    @classmethod
    def from_env(cls, var: str = "INJECTWISE_SERVE_SETTINGS") -> ServiceSettings:
        import orjson
        raw = orjson.loads(os.environ[var])
        paths = {"trusted_issuers_file", "api_keys_file", "policy_file"}
        known = {f.name for f in fields(cls)}
        return cls(**{k: (Path(v) if k in paths and v is not None else tuple(v) if k == "cors_origins" else v)
                      for k, v in raw.items() if k in known})
