"""Alembic environment: runs on the connection the store hands over (or the URL in alembic.ini)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from injectwise.adapters.storage import registry_tables  # noqa: F401  (registers the registry tables)
from injectwise.adapters.storage.tables import metadata

config = context.config
conn = config.attributes.get("connection")
if conn is not None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = engine_from_config(config.get_section(config.config_ini_section) or {}, prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as c:
        context.configure(connection=c, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
