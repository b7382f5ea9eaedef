"""Service state for hardening: suggestion ids per issued card, one feedback row per card and outcome,
and the shared JWT replay cache.

Revision ID: 0003_service_state
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_service_state"
down_revision = "0002_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issued_cards") as b:
        b.add_column(sa.Column("suggestion_ids", sa.JSON, nullable=True))
    # Duplicates stored before this revision would block the unique index: keep the first of each.
    op.execute("DELETE FROM feedback WHERE id NOT IN (SELECT MIN(id) FROM feedback GROUP BY card_uuid, outcome)")
    op.create_index("ux_feedback_card_outcome", "feedback", ["card_uuid", "outcome"], unique=True)
    op.create_table(
        "used_tokens",
        sa.Column("iss", sa.String(300), primary_key=True),
        sa.Column("jti", sa.String(300), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_used_tokens_expires_at", "used_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_table("used_tokens")
    op.drop_index("ux_feedback_card_outcome", "feedback")
    with op.batch_alter_table("issued_cards") as b:
        b.drop_column("suggestion_ids")
