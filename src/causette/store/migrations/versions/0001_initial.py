"""Initial schema: sessions, streams, messages, memberships, conversations, blocks.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("ended_at IS NULL")
ENDED = sa.text("ended_at IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("pseudonym_key", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("gender", sa.String(length=1), nullable=False),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("commune", sa.String(), nullable=False),
        sa.Column("dep", sa.String(), nullable=False),
        sa.Column("region", sa.String(), nullable=False),
        sa.Column("postal_code", sa.String(), nullable=False),
        sa.Column("commune_code", sa.String(), nullable=False),
        sa.Column("lang", sa.String(), nullable=False),
        sa.Column("pm_policy", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("last_seen", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sessions_token_hash")),
    )
    op.create_index(
        "uq_sessions_live_pseudonym_key",
        "sessions",
        ["pseudonym_key"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index(
        "ix_sessions_live_last_seen",
        "sessions",
        ["last_seen"],
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index(
        "ix_sessions_ended_at",
        "sessions",
        ["ended_at"],
        sqlite_where=ENDED,
        postgresql_where=ENDED,
    )

    op.create_table(
        "streams",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("epoch", sa.String(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_streams")),
    )

    op.create_table(
        "messages",
        sa.Column("stream", sa.String(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("local_id", sa.String(), nullable=True),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("stream", "seq", name=op.f("pk_messages")),
        sa.UniqueConstraint("id", name=op.f("uq_messages_id")),
        sa.UniqueConstraint("author", "local_id", name=op.f("uq_messages_author_local_id")),
        sa.ForeignKeyConstraint(
            ["stream"], ["streams.id"], name=op.f("fk_messages_stream_streams")
        ),
    )
    op.create_index(op.f("ix_messages_expires_at"), "messages", ["expires_at"])

    op.create_table(
        "memberships",
        sa.Column("room", sa.String(), nullable=False),
        sa.Column("person_id", sa.String(), nullable=False),
        sa.Column("joined_at", sa.BigInteger(), nullable=False),
        sa.Column("join_order", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("room", "person_id", name=op.f("pk_memberships")),
    )
    op.create_index(
        op.f("ix_memberships_person_id_join_order"), "memberships", ["person_id", "join_order"]
    )

    op.create_table(
        "conversations",
        sa.Column("person_id", sa.String(), nullable=False),
        sa.Column("stream", sa.String(), nullable=False),
        sa.Column("other", sa.String(), nullable=False),
        sa.Column("opened_by", sa.String(), nullable=False),
        sa.Column("read_seq", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["stream"], ["streams.id"], name=op.f("fk_conversations_stream_streams")
        ),
        sa.PrimaryKeyConstraint("person_id", "stream", name=op.f("pk_conversations")),
    )

    op.create_table(
        "blocks",
        sa.Column("blocker", sa.String(), nullable=False),
        sa.Column("blocked", sa.String(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("blocker", "blocked", name=op.f("pk_blocks")),
    )
    op.create_index(op.f("ix_blocks_blocked"), "blocks", ["blocked"])


def downgrade() -> None:
    op.drop_table("blocks")
    op.drop_table("conversations")
    op.drop_table("memberships")
    op.drop_table("messages")
    op.drop_table("streams")
    op.drop_table("sessions")
