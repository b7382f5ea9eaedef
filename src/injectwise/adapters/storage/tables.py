"""Table definitions, shared by the store and the Alembic migrations."""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

issued_cards = Table(
    "issued_cards", metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(100), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("hook_instance", String(100), nullable=False),
    Column("finding_id", String(200), nullable=False, index=True),
    Column("rule_version", String(32), nullable=False),
    Column("knowledge_version", String(32), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("issued_at", DateTime(timezone=False), nullable=False),
    Column("suggestion_ids", JSON, nullable=True),  # 0003: feedback may only accept these
)

feedback = Table(
    "feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(100), nullable=False),
    Column("card_uuid", String(64), nullable=False, index=True),
    Column("finding_id", String(200), nullable=True, index=True),  # null when the card is not ours
    Column("outcome", String(16), nullable=False),
    Column("accepted_suggestions", JSON, nullable=True),
    Column("override_system", String(200), nullable=True),
    Column("override_code", String(100), nullable=True),
    Column("override_display", Text, nullable=True),
    Column("user_comment", Text, nullable=True),
    Column("outcome_timestamp", DateTime(timezone=False), nullable=False),
    Column("received_at", DateTime(timezone=False), nullable=False),
)

# 0003: one row per card and outcome, so a repeated feedback post cannot inflate the summary.
Index("ux_feedback_card_outcome", feedback.c.card_uuid, feedback.c.outcome, unique=True)

# 0003: JWT ids already accepted, shared by every worker and kept across restarts until they expire.
used_tokens = Table(
    "used_tokens", metadata,
    Column("iss", String(300), primary_key=True),
    Column("jti", String(300), primary_key=True),
    Column("expires_at", Float, nullable=False, index=True),  # Unix time after which a replay is refused by exp
)
