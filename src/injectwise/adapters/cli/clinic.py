"""`injectwise user add` and `injectwise demo --web`: the clinic's command-line entry points."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from injectwise.core.errors import InputError

user_app = typer.Typer(no_args_is_help=True, help="Clinic users (web app sign-in).")
DEFAULT_DB = "sqlite:///injectwise-feedback.db"


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="Sign-in name")],
    role: Annotated[str, typer.Option(help="clinician, analyst or admin")] = "clinician",
    database_url: Annotated[str, typer.Option(envvar="INJECTWISE_DATABASE_URL", help="Same URL as `serve`")] = DEFAULT_DB,
) -> None:
    """Add a user; prints a one-time password (changed at first sign-in). Only its argon2 hash is stored."""
    from injectwise.adapters.storage.registry import ROLES, Registry
    from injectwise.adapters.web.security import hash_password, new_password

    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    password = new_password()
    Registry(database_url).add_user(name, role, hash_password(password))
    print(f"user {name} ({role}) added; one-time password (shown once, changed at first sign-in): {password}")


def demo_web(host: str, port: int, database: Path) -> None:
    """Fresh demo database, demo patients with months of outcomes, one admin user; serve and print the URL."""
    import uvicorn

    from injectwise.adapters.service.app import create_app
    from injectwise.adapters.service.settings import ServiceSettings
    from injectwise.adapters.storage.registry import Registry
    from injectwise.adapters.web.demo import load_demo
    from injectwise.adapters.web.security import hash_password, new_password

    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{database}"
    reg = Registry(url)
    n = load_demo(reg, datetime.now(UTC).date())
    password = new_password()
    reg.add_user("demo", "admin", hash_password(password))
    from injectwise.adapters.service.trust import hash_key, new_api_key

    key = new_api_key()
    keys = database.with_suffix(".api-keys")
    keys.write_text(f"demo {hash_key(key)}\n")
    app = create_app(ServiceSettings(public_base_url=f"http://{host}:{port}", database_url=url, api_keys_file=keys))
    print(f"injectwise clinic demo: {n} patients loaded into {database}", file=sys.stderr)
    print(f"  open http://{host}:{port}/app/  and sign in as 'demo' with one-time password {password}", file=sys.stderr)
    print(f"  REST API key for this demo (X-API-Key): {key}", file=sys.stderr)
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
